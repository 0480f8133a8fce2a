"""The server's settings and request limits, with their defaults (the one home of `ner-fast serve`'s
defaults; imports nothing heavy, so the command line can read them)."""
from __future__ import annotations

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
