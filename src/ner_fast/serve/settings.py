"""The server's settings and request limits, with their defaults and ranges (the one home of `ner-fast
serve`'s defaults, and of the checks of its connection timeouts; imports nothing heavy, so the command
line can read them)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

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
    "max_connections": (1, math.inf),
    "piece_tokens": (1, math.inf),
}


def check_setting(name: str, value: float) -> None:
    """ValueError naming the setting when `value` is outside its `RANGES` entry (NaN is outside every range)."""
    low, high = RANGES[name]
    if not low <= value <= high:
        bounds = f"at least {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
        raise ValueError(f"{name} must be {bounds}, got {value}")


#: The longest any connection timeout may be: an hour (NaN and infinity are refused).
MAX_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class Timeouts:
    """How long the server waits for a client, in seconds; a connection past one is closed. Without them
    connections that send nothing, or half a request, stay open for ever and, enough of them, lock every
    other client out (the process runs out of file descriptors)."""

    #: From a connection's start, or the end of its previous answer, to the end of the next request's
    #: headers (slow or missing headers; an idle new connection).
    headers: float = 10.0
    #: An idle keep-alive connection between requests (uvicorn's `timeout_keep_alive`).
    keep_alive: float = 5.0
    #: From the end of a request's headers to the end of its body (a slow or stalled body: 408).
    body: float = 15.0
    #: On SIGTERM, how long requests in flight may take to finish before they are cancelled (a
    #: request still sending its body is answered 503 at once).
    graceful: float = 30.0

    def __post_init__(self) -> None:
        for f in fields(self):
            check_seconds(getattr(self, f.name), f"{f.name} timeout")


def check_seconds(value: float, what: str) -> float:
    """`value` if it is a number of seconds in (0, MAX_TIMEOUT_SECONDS], else ValueError naming `what`:
    the one range check of a timeout (the command line's options call it too)."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= MAX_TIMEOUT_SECONDS):
        raise ValueError(f"{what} must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds, got {value}")
    return float(value)


@dataclass(frozen=True)
class Settings:
    """How the server batches (see `ner_fast.serve.batcher`) and what it accepts."""

    threads: int = 1
    max_batch_tokens: int = 4096
    max_wait_ms: float = 0.0
    #: onnxruntime intra-op threads of each worker; None: `onnx_threads_per_worker` decides.
    onnx_threads: int | None = None
    limits: Limits = field(default_factory=Limits)
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: Connections served at once; a request on a connection beyond them is answered 503 (uvicorn's
    #: `limit_concurrency`).
    max_connections: int = 1000
    #: Tokens (estimated: words) above which a request goes to the batcher in pieces of about this many
    #: (`annotate.cut`), so that other requests run between them. A batch's worth: smaller pieces tag
    #: slower (three texts of 100,000 characters of GMB sentences, one worker thread: 1024-token pieces
    #: took 1.6x the time of the whole request, 4096-token pieces about the same, and a one-sentence
    #: request sent meanwhile waited 0.12 s instead of 4.2 s; Intel Xeon, 2 cores).
    piece_tokens: int = 4096

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
