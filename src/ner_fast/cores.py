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
