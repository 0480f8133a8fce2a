"""How many cores this process may use: the one home of that count (training's OpenMP threads, the
server's onnxruntime threads). Imports nothing heavy."""
from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under `taskset` or a container's
    cpuset, where `os.cpu_count()` counts every core of the machine); `os.cpu_count()` where the
    platform has no affinity call; at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


#: The most threads a count may ask for, per usable core. More only queue behind one another: a tagger
#: asked for 10,000 onnxruntime threads on 2 cores grew to 20 GB and had not loaded after minutes.
THREADS_PER_CORE = 4


def cores_each(sharers: int, cores: int | None = None) -> int:
    """The cores each of `sharers` (processes, threads) gets of `cores` (default `usable_cores()`), shared out
    evenly, at least 1: the one rule of training's OpenMP threads and the server's onnxruntime threads."""
    return max(1, (cores or usable_cores()) // max(1, sharers))


def threads_fault(count: int) -> str | None:
    """Why `count` (an int) is refused as a count of threads, in the words after its name ("must be at
    least 1, got 0"); None for 1 to `THREADS_PER_CORE` x `usable_cores()`. The one rule of every such
    count: a tagger's `threads` and `workers`, `pipe`'s `n_threads`, the options of `tag` and `serve`."""
    if count < 1:
        return f"must be at least 1, got {count}"
    most = THREADS_PER_CORE * usable_cores()
    if count > most:
        return f"must be at most {most} ({THREADS_PER_CORE} per usable core, of {usable_cores()}), got {count}"
    return None


def check_threads(name: str, value: object) -> int:
    """`value` checked as a count of threads called `name` in messages: an int (a NumPy integer too) that
    `threads_fault` accepts; TypeError for another type (a bool, a float, the string "2"), ValueError else."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    count = value.__index__()
    fault = threads_fault(count)
    if fault is not None:
        raise ValueError(f"{name} {fault}")
    return count
