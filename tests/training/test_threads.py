"""MXNet's thread count for training: every usable core unless the user chose (issue 12, part 4)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ner_fast.training.distributed import Cluster
from ner_fast.training.cpu import omp_threads, set_mxnet_threads


def test_omp_threads_share_out_the_usable_cores() -> None:
    cores = len(os.sched_getaffinity(0))
    assert omp_threads() == cores
    assert omp_threads(2) == max(1, cores // 2)
    assert omp_threads(cores + 5) == 1  # never 0 threads
    assert omp_threads(0) == cores


def test_set_mxnet_threads_fills_in_a_missing_value_and_keeps_the_users() -> None:
    env: dict[str, str] = {}
    assert set_mxnet_threads(env) == str(omp_threads())
    assert env == {"OMP_NUM_THREADS": str(omp_threads())}
    mine = {"OMP_NUM_THREADS": "7"}
    assert set_mxnet_threads(mine, processes=4) == "7"
    assert mine == {"OMP_NUM_THREADS": "7"}


def test_set_mxnet_threads_defaults_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert set_mxnet_threads() == str(omp_threads())
    assert os.environ["OMP_NUM_THREADS"] == str(omp_threads())


def test_local_workers_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cluster = Cluster("127.0.0.1", 9000, workers=2, servers=1)
    assert cluster.env("worker", "127.0.0.1", "lo")["OMP_NUM_THREADS"] == str(omp_threads(2))
    assert "OMP_NUM_THREADS" not in cluster.env("server", "127.0.0.1", "lo")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cluster.env("worker", "127.0.0.1", "lo")["OMP_NUM_THREADS"] == "3"


def test_several_cpu_contexts_get_an_engine_thread_each_and_share_the_cores() -> None:
    env: dict[str, str] = {}
    assert set_mxnet_threads(env, cpu_contexts=2) == str(omp_threads(2))
    assert env == {"OMP_NUM_THREADS": str(omp_threads(2)), "MXNET_CPU_WORKER_NTHREADS": "2"}
    one: dict[str, str] = {}
    set_mxnet_threads(one, cpu_contexts=1)
    assert "MXNET_CPU_WORKER_NTHREADS" not in one  # MXNet's own default for one context
    mine = {"MXNET_CPU_WORKER_NTHREADS": "5"}
    set_mxnet_threads(mine, cpu_contexts=2)
    assert mine["MXNET_CPU_WORKER_NTHREADS"] == "5"


def test_spinning_openmp_threads_is_a_default_the_user_overrides() -> None:
    from ner_fast.training.cpu import spin_openmp_threads

    env: dict[str, str] = {}
    assert spin_openmp_threads(env) == "ACTIVE" and env == {"OMP_WAIT_POLICY": "ACTIVE"}
    mine = {"OMP_WAIT_POLICY": "PASSIVE"}
    assert spin_openmp_threads(mine) == "PASSIVE" and mine == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_usable_memory_is_the_lowest_of_physical_memory_and_the_control_groups_limits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import ner_fast.cores as cores

    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    here = cores.usable_memory()
    assert here is not None and 0 < here <= physical
    # Which files: the root's, then the process's own groups' from /proc/self/cgroup (v2's one hierarchy, v1's
    # memory controller; a group at the root adds nothing).
    real_open = open

    def fake_open(path: str, *args: Any, **kwargs: Any) -> Any:
        if path == "/proc/self/cgroup":
            return io.StringIO("0::/user.slice/job.scope\n5:memory,cpu:/docker/abc\n3:pids:/x\n2:memory:/\n")
        return real_open(path, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr("builtins.open", fake_open)
        assert cores._cgroup_memory_limits() == [
            "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/user.slice/job.scope/memory.max", "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"]
    # The lowest limit wins; "max" (v2's no limit) and a missing file count for nothing.
    own, root = tmp_path / "own.max", tmp_path / "root.max"
    own.write_text("1073741824\n")
    root.write_text("max\n")
    monkeypatch.setattr(cores, "_cgroup_memory_limits", lambda: [str(root), str(own), str(tmp_path / "missing")])
    assert cores.usable_memory() == min(physical, 2**30)
