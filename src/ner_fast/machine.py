"""What a measurement records about the machine that made it (the one home of that rule): the CPU model,
the flags that decide which kernels run (oneDNN's and onnxruntime's int8 paths differ between AVX2,
AVX-512, AVX-512 VNNI and AMX) and the core count. Read by every benchmark's JSON
(`benchmarks/_machine.py`) and by the speed a bundled package records (`training.bundle`)."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

FLAGS = ("avx2", "avx512f", "avx512_vnni", "amx")


def cpu_info(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU model, its FLAGS (amx: any of amx_tile, amx_int8, amx_bf16) and core counts, from
    /proc/cpuinfo (or the text `cpuinfo`, which tests pass); a machine without it gets `platform`'s name."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    model, flags = platform.processor() or platform.machine(), set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and value.strip():
            model = value.strip()
        elif key == "flags":
            flags.update(value.split())
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "model": model,
        "flags": {
            "avx2": "avx2" in flags,
            "avx512f": "avx512f" in flags,
            "avx512_vnni": "avx512_vnni" in flags,
            "amx": any(f.startswith("amx_") for f in flags),
        },
        "cores": usable,
        "logical_cpus": os.cpu_count(),
        "arch": platform.machine(),
    }
