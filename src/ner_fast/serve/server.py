"""Running the app on uvicorn: the listening socket, the graceful stop, and `serve` (what `ner-fast serve` calls).

SIGTERM (or Ctrl-C) stops accepting connections, lets every request already received finish (the
batcher runs what is queued), and returns normally, so the process exits 0. uvicorn re-raises the
signal it caught once it has shut down; `run` sets a no-op handler for that re-raise, so the stop that
was asked for is not reported as a death by signal.
"""
from __future__ import annotations

import signal
import socket
import sys
import threading
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, Iterator

import uvicorn

from ner_fast.serve.app import create_app
from ner_fast.serve.settings import Settings

# Seconds a graceful stop waits for requests in flight before cancelling them.
GRACE_SECONDS = 30.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` (port 0: a free ephemeral port; read it from `getsockname`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as err:
        sock.close()
        # The OS names neither (e.g. "[Errno 98] Address already in use"): the message says where.
        shown = f"[{host}]" if ":" in host else host
        failure = OSError(f"cannot listen on {shown}:{port}: {err.strerror or err}")
        failure.errno = err.errno
        raise failure from err
    return sock


def make_server(app: Any, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for `app` (uvloop and httptools when installed). What costs per request and
    serves nothing here is off: the access log, the `Server` header, and the proxy-headers middleware
    (the app reads no client address)."""
    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=GRACE_SECONDS,
        loop="auto", http="auto", proxy_headers=False, server_header=False,
    )
    return uvicorn.Server(config)


@contextmanager
def _quiet_reraise() -> Iterator[None]:
    """While serving in the main thread: the stop signals' handlers do nothing once uvicorn restores them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(server: uvicorn.Server, sock: socket.socket) -> None:
    """Serve on `sock` until a stop signal (main thread) or `server.should_exit = True`; return after the
    graceful shutdown. Raises RuntimeError when the app did not start."""
    with _quiet_reraise():
        server.run(sockets=[sock])
    if not server.started:
        raise RuntimeError("the server did not start (see the log above)")


def serve(
    tagger: Any,
    host: str = "127.0.0.1",
    port: int = 8080,
    settings: Settings = Settings(),
    log_level: str = "warning",
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve `tagger` (a `ner_fast.Tagger`, loaded with `threads=settings.onnx_threads_per_worker()`: each
    of `settings.threads` worker threads runs one batch at a time) over HTTP until SIGTERM. `announce` receives the address once the
    socket listens (default: printed to stderr). Raises OSError when the address cannot be bound (the
    message names it), ValueError for a model the API cannot serve."""
    app = create_app(tagger, settings)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    message = f"ner-fast serve: listening on http://{shown}:{bound_port}/ (SIGTERM or Ctrl-C stops)"
    if announce is None:
        print(message, file=sys.stderr, flush=True)
    else:
        announce(message)
    run(make_server(app, log_level), sock)
