"""How a training process uses the processor, set before MXNet is imported: flush-to-zero
(`flush_denormals`), OpenMP threads for MXNet's operators (`omp_threads`, `set_mxnet_threads`) and
their spinning (`spin_openmp_threads`). `train.py`'s set-up (`run_setup.set_up`), the parameter-server
launcher (`distributed.py`) and the training benchmarks call them.
"""
from __future__ import annotations

import os
from typing import MutableMapping

from ner_fast.cores import cores_each


def flush_denormals() -> bool:
    """Switch this process to flush-to-zero before MXNet starts its threads (`_kernels.flush_denormals`).

    Without it training slows down epoch after epoch (denormal Adam moments); with it nothing
    changes but the speed. Returns False where the processor has no such mode.
    """
    import warnings

    from ner_fast.training import _kernels

    if not _kernels.flush_denormals():
        return False
    # NumPy's finfo notices the mode and warns that the smallest subnormal is now zero: expected.
    warnings.filterwarnings("ignore", message="The value of the smallest subnormal", category=UserWarning)
    return True


def omp_threads(processes: int = 1) -> int:
    """OpenMP threads for MXNet's operators in each of `processes` training processes sharing this
    machine: the cores this process may run on, shared out evenly (at least 1)."""
    return cores_each(processes)


def set_mxnet_threads(env: MutableMapping[str, str] | None = None, processes: int = 1, cpu_contexts: int = 1) -> str:
    """Set `OMP_NUM_THREADS` in `env` (default: this process's environment) to
    `omp_threads(processes * cpu_contexts)`, and with several CPU contexts (`--context cpu:0,cpu:1`)
    `MXNET_CPU_WORKER_NTHREADS` to their number, each unless set already (a user's value wins);
    returns the OpenMP value in effect.

    Why: when OMP_NUM_THREADS is unset, MXNet 1.x sizes its operators' OpenMP pool at half the
    processors (it assumes two hyper-threads a core), so on 2 cores every operator ran on one
    thread and `ner-fast train` used one core of two. And MXNet runs the operators of every CPU
    context on one engine thread unless told otherwise, so CPU contexts would take turns instead of
    working on their shares of a batch at once. Must run before MXNet is imported, as libgomp and
    MXNet read the variables once.
    """
    target = os.environ if env is None else env
    if cpu_contexts > 1:
        target.setdefault("MXNET_CPU_WORKER_NTHREADS", str(cpu_contexts))
    return target.setdefault("OMP_NUM_THREADS", str(omp_threads(processes * max(1, cpu_contexts))))


def spin_openmp_threads(env: MutableMapping[str, str] | None = None) -> str:
    """Set `OMP_WAIT_POLICY=ACTIVE` in `env` (default: this process's environment) unless set (a
    user's value wins); returns the value in effect. For a process that only trains (`ner-fast
    train`): call it before MXNet is imported.

    Why: between MXNet's operators (hundreds a batch, many small) libgomp's threads go to sleep
    and must be woken for the next one: with more threads than cores (MXNet's engine thread, the
    OpenMP pool, Python) libgomp cuts its spin-wait to almost nothing. Spinning instead trained
    1.19x faster on 2 quiet cores (docs/TRAINING.md "Threads"), the same losses to the last digit.
    Not for a process that does other work after training, nor on a machine whose cores are busy
    with other jobs (set OMP_WAIT_POLICY=PASSIVE there): idle OpenMP threads keep spinning.
    """
    target = os.environ if env is None else env
    return target.setdefault("OMP_WAIT_POLICY", "ACTIVE")
