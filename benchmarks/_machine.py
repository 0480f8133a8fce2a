"""Every benchmark's JSON records the machine that measured it (`ner_fast.machine.cpu_info`: the CPU model,
its avx2/avx512f/avx512_vnni/amx flags and cores): `write_json` is how each benchmark writes its JSON, so
none can leave it out."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ner_fast.atomic import atomic_write_json
from ner_fast.machine import FLAGS, cpu_info  # noqa: F401  (both read through this module by the benchmarks and tests)


def write_json(path: str | os.PathLike[str], doc: dict[str, Any]) -> None:
    """Write a benchmark's result `doc` to `path` (written then renamed) with the CPU under "cpu"."""
    atomic_write_json(Path(path), {**doc, "cpu": cpu_info()})
