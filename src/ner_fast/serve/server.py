"""Running the app on uvicorn: the listening socket, the connection timeouts, the graceful stop, and
`serve` (what `ner-fast serve` calls).

SIGTERM (or Ctrl-C) stops accepting connections, lets every request already received finish (the
batcher runs what is queued), answers 503 to a request still sending its body, and returns normally,
so the process exits 0; requests still running after `Timeouts.graceful` are cancelled. `run` holds the
stop signals from before the address is announced until the server has returned (`_stop_signals`): a
signal in the moment before uvicorn installs its own handlers stops the server too (it was lost, and the
server kept serving), and uvicorn's re-raise of the signal it caught, once it has shut down, lands there
and is not reported as a death by signal.

Connections (`Settings.timeouts`, `Settings.max_connections`): uvicorn closes idle keep-alive
connections, but waits for ever for a request's headers; `HeadersTimeoutProtocol` closes a connection
whose headers are not complete in time. A slow body is the app's (`app.BodyDeadlines`). Past the
connection cap `CappedProtocol` hands the request to the app marked (`app.OVER_CAPACITY`), which answers
a JSON 503 and counts it: uvicorn's own `limit_concurrency` answered text/plain, uncounted, and logged a
line per request (17,000 lines a minute under overload, measured).
"""
from __future__ import annotations

import asyncio
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any, Iterator

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ner_fast.option_table import row
from ner_fast.serve.app import HEADERS_TOO_LONG, OVER_CAPACITY, create_app, error, headers_too_long
from ner_fast.serve.settings import Settings

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` (port 0: a free ephemeral port; read it from `getsockname`).
    An IPv6 address may come as URLs write it, in brackets (`[::1]`)."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
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


class StagedClose:
    """A transport whose `close` is staged (RFC 9112 9.6): the answer already written goes out followed by
    an end of stream, what the client still sends is read and dropped, and the connection is closed when
    the client ends its side or after `LINGER_SECONDS`. A plain close with bytes unread (the rest of a
    body answered 413 or 408) makes the kernel send a reset, and a client still sending, as curl does,
    reports "connection reset" instead of the answer. An answer still unsent then is waited for only while
    the client reads it: one that read nothing in `LINGER_SECONDS` is cut (asyncio's close waits for the
    buffer to drain, so a client that never read kept its connection and its answer's memory for ever).
    Everything else is the wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.raw, self.loop = transport, loop
        self.lingering = False
        self.stopping = False  # the server is stopping: close at once, without waiting for the client
        self.ended = False  # the client ended its side: nothing more can come to wait for
        self._timer: asyncio.TimerHandle | None = None
        self._unsent = 0  # bytes of the answer still buffered at the last look (`_linger_check`)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def is_closing(self) -> bool:
        return self.lingering or self.raw.is_closing()

    def write(self, data: bytes) -> None:
        # After our end of stream nothing more can be sent, nor once the client has gone (asyncio raises:
        # the answer of a request pipelined before the client closed, "the handler is closed").
        if not (self.lingering or self.raw.is_closing()):
            self.raw.write(data)

    def close(self) -> None:
        if self.is_closing():
            return
        if self.stopping or self.ended or not self.raw.can_write_eof():
            self.raw.close()
            return
        self.lingering = True
        self.raw.write_eof()  # sent after the buffered answer
        self.raw.resume_reading()  # uvicorn may have paused reading while the app was not reading the body
        self._unsent = self.raw.get_write_buffer_size()
        self._timer = self.loop.call_later(LINGER_SECONDS, self._linger_check)

    def _linger_check(self) -> None:
        """The linger's end: close; but while the client is still reading a large answer, look again later."""
        self._timer = None
        unsent = self.raw.get_write_buffer_size()
        if unsent and unsent < self._unsent:  # it read some since the last look
            self._unsent = unsent
            self._timer = self.loop.call_later(LINGER_SECONDS, self._linger_check)
            return
        self.abort_linger()

    def abort_linger(self) -> None:
        """Close now, lingering or not: an answer the client has stopped reading is dropped, not waited for."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.lingering and self.raw.get_write_buffer_size():
            self.cut()
        else:
            self.raw.close()

    def cut(self) -> None:
        """Close now, dropping what is unsent: a reset (SO_LINGER 0), so that neither the event loop nor the
        kernel goes on holding an answer for a client that does not read it (a plain `abort` left both
        buffers to drain to it)."""
        sock = self.raw.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass  # closed meanwhile: abort is all there is to do
        self.raw.abort()


#: How long a closed connection goes on reading (and dropping) what its client still sends.
LINGER_SECONDS = 2.0
#: The most bytes a request's line and headers may take (nginx's large_client_header_buffers: 4 x 8k, doubled);
#: past it the answer is 431 and the connection closes (a 50 MB header line was read whole).
MAX_HEADER_BYTES = 65536
#: The 400 answered to bytes that are not an HTTP/1.1 request.
MALFORMED = "the request is not valid HTTP/1.1 (a bad request line, header or Content-Length, or a body longer than" \
            " its Content-Length); the connection is closed"


class HeadersTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus a deadline for the headers of each request: `headers_timeout`
    seconds to the end of a request's headers, from the connection's start for its first request and from
    the first byte of each later one (idle time between requests is uvicorn's keep-alive timeout's); past it
    the connection is closed (a client that connects and sends nothing, or
    its headers a byte at a time, holds a connection and a file descriptor no longer). Every close is
    staged (`StagedClose`)."""

    headers_timeout = Settings().timeouts.headers
    send_timeout = Settings().timeouts.body  # an answer the client reads nothing of for this long is cut off
    _headers_timer: asyncio.TimerHandle | None = None
    _send_timer: asyncio.TimerHandle | None = None
    _send_progress: tuple[int, float] = (0, 0.0)  # (bytes unsent, when that was first seen)
    _awaiting_headers = True  # between requests: the next bytes are a request's line and headers
    _header_bytes = 0  # bytes received while awaiting headers
    _malformed = False  # bytes that are not HTTP/1.1 came: nothing after them is read
    transport: StagedClose  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(StagedClose(transport, self.loop))  # type: ignore[arg-type]
        self._arm_headers_timer()

    def data_received(self, data: bytes) -> None:
        # Lingering: the rest of a request already answered; malformed: what follows bytes that are not HTTP.
        if self.transport.lingering or self._malformed:
            return
        if self._awaiting_headers and self._headers_timer is None:  # the first byte of the next request
            self._arm_headers_timer()
        super().data_received(data)
        if self._awaiting_headers and not self._malformed:
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._malformed = True
                self._answer_malformed(431, headers_too_long(MAX_HEADER_BYTES))

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP/1.1 (its `msg` says no more), as JSON like every other
        error; after the answers of the requests before them on this connection, which uvicorn cut off
        (the 400 went first, then their own answers failed: "write() after write_eof()")."""
        self._malformed = True
        cycle = self.cycle
        if cycle is None or cycle.response_complete or cycle.more_body:  # none running, or its body is what broke
            self._answer_malformed()
        # else `on_response_complete` answers once the last request read is answered

    def _answer_malformed(self, status: int = 400, message: str = MALFORMED) -> None:
        # The app's error answer (`app.error`, the one shape of every error), written here by hand with
        # uvicorn's default headers (Date): no request can be made of these bytes. What follows them is
        # unread: the connection closes.
        answer = error(status, message, unread=True)
        headers = [*self.server_state.default_headers, *answer.raw_headers]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        reason = HTTPStatus(status).phrase.encode()
        self.transport.write(b"HTTP/1.1 %d %s\r\n" % (status, reason) + head + b"\r\n" + answer.body)
        self.transport.close()
        self.metrics_rejected(status)

    def metrics_rejected(self, status: int) -> None:
        """Count an answer of `_answer_malformed` in the app's metrics (`app.Metrics.rejected`)."""
        metrics = getattr(getattr(self.config.app, "state", None), "metrics", None)
        if metrics is not None:
            metrics.rejected(status)

    def shutdown(self) -> None:
        self.transport.stopping = True
        if self.transport.lingering:
            self.transport.abort_linger()
        else:
            super().shutdown()

    def on_headers_complete(self) -> None:
        self._disarm_headers_timer()
        self._awaiting_headers, self._header_bytes = False, 0
        # Headers that completed within the read that crossed the limit pass `data_received`'s count (which
        # runs after the parser): measured here, and answered 431 by the app.
        if len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers) > MAX_HEADER_BYTES:
            self.scope[HEADERS_TOO_LONG] = MAX_HEADER_BYTES  # type: ignore[literal-required]
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._malformed and not self.transport.is_closing() and self.cycle.response_complete:
            self._answer_malformed()  # the last request before the malformed bytes is answered
            return
        if self.transport.ended and self.cycle.response_complete and not self.transport.is_closing():
            self.transport.close()  # the client sent its last request (`eof_received`): all are answered
            return
        # Idle between requests (uvicorn armed its keep-alive timer: no pipelined request is waiting). Any
        # bytes now are the next request's headers (timed from their first byte: until then the idle
        # connection is uvicorn's keep-alive timeout's), or the rest of a body the app did not read.
        if self.timeout_keep_alive_task is not None:
            self._awaiting_headers = True

    def eof_received(self) -> bool:  # type: ignore[override]
        """The client ended its side after its requests (a half-close: `shutdown(SHUT_WR)`, `nc -N`). They
        are still answered, then the connection closes (`on_response_complete`); uvicorn's returned None,
        so the transport closed at once and they were lost. With no whole request to answer: close now."""
        self.transport.ended = True
        cycle = self.cycle
        return bool(self.pipeline) or (cycle is not None and not cycle.response_complete and not cycle.more_body)

    def pause_writing(self) -> None:
        """The answer fills the transport's buffer faster than the client reads it: from now on the client
        must read some of it every `send_timeout` seconds, else the connection is cut (the request's task
        waited for the buffer to drain for ever, holding the answer and the connection)."""
        super().pause_writing()
        self._send_progress = (self.transport.get_write_buffer_size(), self.loop.time())
        self._send_timer = self.loop.call_later(min(LINGER_SECONDS, self.send_timeout), self._check_send)

    def resume_writing(self) -> None:
        self._disarm_send_timer()
        super().resume_writing()

    def _check_send(self) -> None:
        self._send_timer = None
        unsent, since = self._send_progress
        now_unsent, now = self.transport.get_write_buffer_size(), self.loop.time()
        if now_unsent < unsent:
            self._send_progress = (now_unsent, now)
        elif now - since >= self.send_timeout:
            self.transport.cut()  # uvicorn's `connection_lost` then ends the request's wait
            return
        self._send_timer = self.loop.call_later(min(LINGER_SECONDS, self.send_timeout), self._check_send)

    def _disarm_send_timer(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_headers_timer()
        self._disarm_send_timer()
        super().connection_lost(exc)
        self.transport.abort_linger()

    def _arm_headers_timer(self) -> None:
        self._disarm_headers_timer()
        self._headers_timer = self.loop.call_later(self.headers_timeout, self._headers_too_slow)

    def _disarm_headers_timer(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _headers_too_slow(self) -> None:
        self._headers_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class CappedProtocol(HeadersTimeoutProtocol):
    """`HeadersTimeoutProtocol` plus the connection cap: a request whose headers complete while more than
    `max_connections` connections are open (lingering ones, `StagedClose`, not counted), or more than
    that many requests are running (uvicorn's rule for `limit_concurrency`), goes to the app marked
    `OVER_CAPACITY` (the app answers 503 and counts it) instead of being answered by uvicorn itself."""

    max_connections = Settings().max_connections

    def on_headers_complete(self) -> None:
        cap = self.max_connections
        if len(self.tasks) > cap or (len(self.connections) > cap and self._open_connections() > cap):
            self.scope[OVER_CAPACITY] = cap  # type: ignore[literal-required]
        super().on_headers_complete()

    def _open_connections(self) -> int:
        """The connections that can still bring a request: not those lingering after their last answer
        (`StagedClose`), which read only to drop. Counted only near the cap: a walk over all of them."""
        return sum(not c.transport.lingering for c in self.connections)


class StoppingServer(uvicorn.Server):
    """A uvicorn server that tells the app when its graceful stop begins (`before_stop`), so that the
    requests still sending their bodies are answered 503 at once rather than waited for, and a batch being
    gathered waits for no more requests."""

    def __init__(self, config: uvicorn.Config, before_stop: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.before_stop = before_stop

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.before_stop is not None:
            self.before_stop()
        await super().shutdown(sockets)


def make_server(app: Any, log_level: str = row("serve", "log_level").default, settings: Settings | None = None) -> uvicorn.Server:
    """A uvicorn server for `app` (uvloop when installed, httptools) with the timeouts and connection
    cap of `settings` (None: those `create_app` gave the app, else the defaults). What costs per
    request and serves nothing here is off: the access log, the `Server` header, and the proxy-headers
    middleware (the app reads no client address)."""
    state = getattr(app, "state", None)
    settings = settings or getattr(state, "settings", None) or Settings()
    timeouts = settings.timeouts
    protocol = type("CappedProtocol", (CappedProtocol,),
                    {"headers_timeout": timeouts.headers, "send_timeout": timeouts.body,
                     "max_connections": settings.max_connections})
    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=timeouts.graceful,
        # No `limit_concurrency`: `CappedProtocol` applies the cap, so that the app answers and counts the 503s.
        timeout_keep_alive=timeouts.keep_alive,
        loop="auto", http=protocol, proxy_headers=False, server_header=False,
        # No WebSocket route: an upgrade request is an HTTP request like any other (with wsproto installed,
        # uvicorn took it, then answered a bare 403 the metrics never saw).
        ws="none",
    )
    return StoppingServer(config, getattr(state, "stopping", None))


@contextmanager
def _stop_signals(server: uvicorn.Server) -> Iterator[None]:
    """While serving in the main thread: SIGTERM, SIGINT and SIGHUP (a closed terminal: as SIGTERM; uvicorn
    handles only the first two) stop `server` gracefully, before uvicorn installs its handlers and after it
    restores them (its re-raise of the signal it caught then finds the server stopped)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        server.handle_exit(signal.SIGTERM if signum == signal.SIGHUP else signum, frame)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(server: uvicorn.Server, sock: socket.socket, announce: Callable[[], None] | None = None) -> None:
    """Serve on `sock` until a stop signal (main thread) or `server.should_exit = True`; return after the
    graceful shutdown. `announce` is called once the stop signals are held (a client told the address may
    stop the server at once). Raises RuntimeError when the app did not start."""
    with _stop_signals(server):
        if announce is not None:
            announce()
        server.run(sockets=[sock])
    if not server.started:
        raise RuntimeError("the server did not start (see the log above)")


def serve(
    tagger: Any,
    host: str = row("serve", "host").default,
    port: int = row("serve", "port").default,
    settings: Settings = Settings(),
    log_level: str = row("serve", "log_level").default,
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
    say = announce or (lambda line: print(line, file=sys.stderr, flush=True))
    run(make_server(app, log_level, settings), sock, lambda: say(message))
