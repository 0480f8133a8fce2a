"""The server's settings and request limits, with their defaults (the one home of `ner-fast serve`'s
defaults; imports nothing heavy, so the command line can read them)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ner_fast.cores import usable_cores


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; larger ones get 413 with the limit in the message."""

    max_body_bytes: int = 1 << 20
    max_texts: int = 256
    max_text_chars: int = 100_000


#: The longest `max_wait_ms`: a free worker holding a lone request back for more than 10 s only delays
#: answers (NaN, inf or 1e308 made the server accept requests and never answer them).
MAX_WAIT_MS = 10_000.0

#: The range of each setting, (lowest, highest), bounds included: the one home of these checks, read
#: by the `Batcher` and by `ner-fast serve`'s options.
RANGES: dict[str, tuple[float, float]] = {
    "threads": (1, math.inf),
    "onnx_threads": (1, math.inf),
    "max_batch_tokens": (0, math.inf),  # 0: no batching
    "max_wait_ms": (0.0, MAX_WAIT_MS),
    "max_body_bytes": (1, math.inf),
    "max_texts": (1, math.inf),
    "max_text_chars": (1, math.inf),
}


def check_setting(name: str, value: float) -> None:
    """ValueError naming the setting when `value` is outside its `RANGES` entry (NaN is outside every range)."""
    low, high = RANGES[name]
    if not low <= value <= high:
        bounds = f"at least {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
        raise ValueError(f"{name} must be {bounds}, got {value}")


@dataclass(frozen=True)
class Settings:
    """How the server batches (see `ner_fast.serve.batcher`) and what it accepts."""

    threads: int = 1
    max_batch_tokens: int = 4096
    max_wait_ms: float = 0.0
    #: onnxruntime intra-op threads of each worker; None: `onnx_threads_per_worker` decides.
    onnx_threads: int | None = None
    limits: Limits = field(default_factory=Limits)

    def onnx_threads_per_worker(self, cores: int | None = None) -> int:
        """`onnx_threads` when given. Else, with batching, the cores (default `cores.usable_cores()`) shared
        among the `threads` workers, at least 1: a batch of many sentences runs its matrix products
        on all of them (1.1-1.3x the requests/s of one thread on 2 cores, `benchmarks/serve.py`); without
        batching 1, since one sentence gains nothing from more threads and their spinning costs
        (0.85-0.9x measured)."""
        if self.onnx_threads is not None:
            return self.onnx_threads
        if self.max_batch_tokens == 0:
            return 1
        return max(1, (cores or usable_cores()) // self.threads)
