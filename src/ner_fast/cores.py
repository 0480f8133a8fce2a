"""How many cores this process may use: the one home of that count (training's OpenMP threads, the
server's onnxruntime threads); and how much memory (`usable_memory`, training's check before it allocates a
network). Imports nothing heavy."""
from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under `taskset` or a container's
    cpuset, where `os.cpu_count()` counts every core of the machine); `os.cpu_count()` where the
    platform has no affinity call; at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def usable_memory() -> int | None:
    """Bytes of memory this process may use: the machine's physical memory, or its control group's limit where
    that is lower (a container); None where neither can be read."""
    limits = []
    if hasattr(os, "sysconf"):
        try:
            limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    for path in _cgroup_memory_limits():
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            limits.append(int(text))
    return min(limits) if limits else None


def _cgroup_memory_limits() -> list[str]:
    """The files that may hold this process's memory limit: its own control group's (from /proc/self/cgroup:
    v2 `memory.max`, v1 `memory.limit_in_bytes`) and the root's (a container sees its own as the root)."""
    paths = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, group = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if group in ("", "/"):
            continue
        if controllers == "":  # cgroup v2's one hierarchy
            paths.append(f"/sys/fs/cgroup{group}/memory.max")
        elif "memory" in controllers.split(","):
            paths.append(f"/sys/fs/cgroup/memory{group}/memory.limit_in_bytes")
    return paths


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
