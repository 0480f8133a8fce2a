"""The server's settings and request limits. Their defaults and ranges are the rows of `ner-fast serve`'s
options in the option table (`ner_fast.option_table`), checked by `check_setting`; imports nothing heavy."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ner_fast.cores import cores_each
from ner_fast.errors import OptionError
from ner_fast.option_table import row


def _default(name: str) -> Any:
    """The default of `ner-fast serve --name`: its row of the option table."""
    return row("serve", name).default


def check_setting(name: str, value: Any) -> Any:
    """`value` checked by the row of `ner-fast serve`'s option `name` (`Option.check`, the rule the command
    line applies too: the table is the one home of each setting's range, NaN refused); ValueError naming
    the setting as `Settings` and the `Batcher` call it otherwise."""
    try:
        return row("serve", name).check(value)
    except OptionError as err:
        raise ValueError(f"{name} {err.message}") from None


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; larger ones get 413 with the limit in the message."""

    max_body_bytes: int = _default("max_body_bytes")
    max_texts: int = _default("max_texts")
    max_text_chars: int = _default("max_text_chars")


@dataclass(frozen=True)
class Timeouts:
    """How long the server waits for a client, in seconds; a connection past one is closed. Without them
    connections that send nothing, or half a request, stay open for ever and, enough of them, lock every
    other client out (the process runs out of file descriptors)."""

    #: To the end of a request's headers, from the connection's start for its first request and from the
    #: first byte of each later one (slow or missing headers; an idle new connection).
    headers: float = _default("headers_timeout")
    #: An idle keep-alive connection between requests (uvicorn's `timeout_keep_alive`).
    keep_alive: float = _default("keep_alive_timeout")
    #: From the end of a request's headers to the end of its body (a slow or stalled body: 408); also the
    #: most an answer waits for its client to read any of it (`server.HeadersTimeoutProtocol.pause_writing`).
    body: float = _default("body_timeout")
    #: On SIGTERM, how long requests in flight may take to finish before they are cancelled (a
    #: request still sending its body is answered 503 at once).
    graceful: float = _default("graceful_timeout")

    def __post_init__(self) -> None:
        for f in fields(self):
            # Kept as the check made it (a float): the check takes "5" as 5.0, which uvicorn would not.
            object.__setattr__(self, f.name, check_setting(f"{f.name}_timeout", getattr(self, f.name)))


@dataclass(frozen=True)
class Settings:
    """How the server batches (see `ner_fast.serve.batcher`) and what it accepts."""

    threads: int = _default("threads")
    max_batch_tokens: int = _default("max_batch_tokens")
    max_wait_ms: float = _default("max_wait_ms")
    #: onnxruntime intra-op threads of each worker; None: `onnx_threads_per_worker` decides.
    onnx_threads: int | None = _default("onnx_threads")
    limits: Limits = field(default_factory=Limits)
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: Connections served at once; a request on a connection beyond them is answered 503 (uvicorn's
    #: `limit_concurrency`).
    max_connections: int = _default("max_connections")
    #: Tokens (estimated: words) above which a request goes to the batcher in pieces of about this many
    #: (`annotate.cut`), so that other requests run between them. A batch's worth: smaller pieces tag
    #: slower (three texts of 100,000 characters of GMB sentences, one worker thread: 1024-token pieces
    #: took 1.6x the time of the whole request, 4096-token pieces about the same, and a one-sentence
    #: request sent meanwhile waited 0.12 s instead of 4.2 s; Intel Xeon, 2 cores).
    piece_tokens: int = _default("piece_tokens")

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
        return cores_each(self.threads, cores)
