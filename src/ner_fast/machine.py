"""What a measurement records about the machine that made it (the one home of that rule): the CPU model,
the flags that decide which kernels run (oneDNN's and onnxruntime's int8 paths differ between AVX2,
AVX-512, AVX-512 VNNI and AMX) and the core count. Read by every benchmark's JSON
(`benchmarks/_machine.py`) and by the speed a bundled package records (`training.bundle`).

A process run in `benchmarks/cpuid_view.py`'s view sees an AVX2-only CPU through CPUID while /proc/cpuinfo
still lists the real flags: its record gives the flags the kernels saw, the real ones beside them, and
`cpuid_view`, so that no figure measured there passes for one of the real CPU's kernels."""
from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path
from typing import Any

from ner_fast.cores import usable_cores

FLAGS = ("avx2", "avx512f", "avx512_vnni", "amx")


def view_hides() -> frozenset[str] | None:
    """The FLAGS this process's CPUID hides, if it runs with benchmarks/cpuid_view.c loaded (which exports
    them, beside its bit masks, as `cpuid_view_hidden_flags`); None outside the view."""
    try:
        hidden = ctypes.CDLL(None).cpuid_view_hidden_flags
    except (OSError, AttributeError):
        return None
    hidden.restype = ctypes.c_char_p
    return frozenset(hidden().decode().split())


def cpu_info(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU model, its FLAGS (amx: any of amx_tile, amx_int8, amx_bf16) and core counts, from
    /proc/cpuinfo (or the text `cpuinfo`, which tests pass); a machine without it gets `platform`'s name."""
    cpuinfo_given = cpuinfo
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
    usable = usable_cores()
    real = {
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "amx": any(f.startswith("amx_") for f in flags),
    }
    info: dict[str, Any] = {
        "model": model,
        "flags": real,
        "cores": usable,
        "logical_cpus": os.cpu_count(),
        "arch": platform.machine(),
    }
    hides = view_hides() if cpuinfo_given is None else None
    if hides is not None:
        info["flags"] = {flag: on and flag not in hides for flag, on in real.items()}
        info["real_flags"] = real
        info["cpuid_view"] = f"avx2: CPUID without {', '.join(sorted(hides))} (benchmarks/cpuid_view.py), this CPU's cores"
    return info
