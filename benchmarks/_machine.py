"""Every benchmark's JSON records the machine that measured it (`ner_fast.machine.cpu_info`: the CPU model,
its avx2/avx512f/avx512_vnni/amx flags and cores): `write_json` is how each benchmark writes its JSON, so
none can leave it out."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ner_fast.atomic import atomic_write_json
from ner_fast.machine import FLAGS, cpu_info  # noqa: F401  (both read through this module by the benchmarks and tests)


def plain(value: Any) -> Any:
    """`value` with every path in it (at any depth: `vars(args)` of `--package NAME=DIR` holds (str, Path)
    pairs) made a string and tuples lists, so that JSON takes it."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages, to two decimals: what a benchmark records before and after it
    measures (a busy machine's speeds are not a quiet one's)."""
    return [round(x, 2) for x in os.getloadavg()]


def write_json(path: str | os.PathLike[str], doc: dict[str, Any]) -> None:
    """Write a benchmark's result `doc` to `path` (written then renamed) with the CPU under "cpu"; paths in
    it are written as strings (`plain`), so a benchmark may record `vars(args)` as it is."""
    atomic_write_json(Path(path), plain({**doc, "cpu": cpu_info()}))
