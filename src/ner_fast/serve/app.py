"""The ASGI application of `ner-fast serve` (Starlette): routes, request checks, limits and metrics.

Endpoints:
- `POST /v1/entities`: `{"text": "..."}` -> one document (`Doc.to_dict()`), `{"texts": [...]}` or
  pre-tokenized `{"tokens": [["Angela", "Merkel", ...], ...]}` -> a JSON list, one document per entry;
- `GET /v1/model`: which package (its bundled name, its checksum), the model's tags, entity labels and their
  descriptions, provenance, validation F1, versions;
- `GET /healthz`: `{"status": "ok"}` once the model is loaded;
- `GET /metrics`: Prometheus text format (requests, errors, latency, batch sizes);
- `GET /`: a page to paste text into and see its entities (`static/`, served by the app itself).

Client mistakes get a JSON `{"error": "..."}` naming the problem: 400 for a body that is not UTF-8 or
not JSON, 415 for a compressed one (a Content-Encoding, or a coding beside chunked), 422 for a JSON document of the wrong shape, 413
for a body, a text or a list over its limit (the limit is in the message), 408 for a body that does not
arrive within `Timeouts.body` (503 once the server is stopping); a client that leaves mid-body is answered nothing and counted apart
(`ner_fast_client_disconnects_total`), not as an error answered. The network never runs in the event
loop: the `Batcher` runs it in worker threads, coalescing concurrent requests into one tagger batch;
a large request goes to it in pieces (`annotate.cut`), so small requests run between them. No endpoint reads a path a client
sends: the page's files are read from the package once, at start.
"""
from __future__ import annotations

import asyncio
import json
import logging
import platform
import time
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ner_fast import __version__
from ner_fast.corpus import UTF8_BOM
from ner_fast.engine import check_reads_no_pos
from ner_fast.errors import json_error
from ner_fast.package import bundled_name, package_checksum, quantization_scheme
from ner_fast.serve.annotate import Job, Piece, annotate, assemble, cut
from ner_fast.serve.batcher import SHUTTING_DOWN, Batcher, BatcherClosed, BatchStats
from ner_fast.serve.settings import Limits, Settings
from ner_fast.text import TOKEN_RULE, blank_token, estimate_tokens, lone_surrogate, surrogate_reason

log = logging.getLogger("ner_fast.serve")

JSON = "application/json"
FIELDS = ("text", "texts", "tokens")
INTERNAL_ERROR = "internal error; the server log has the details"
#: The ASGI scope key by which the endpoint tells the metrics that its client left mid-body.
CLIENT_LEFT = "ner_fast.client_left"
#: The ASGI scope key by which the server (`server.CappedProtocol`) marks a request that arrived over its
#: connection cap; its value is the cap. The app answers it 503 and counts it.
OVER_CAPACITY = "ner_fast.over_capacity"
#: The ASGI scope key by which the server (`server.HeadersTimeoutProtocol`) marks a request whose line and
#: headers, complete, are longer than its limit (the value); the app answers it 431 and closes the connection.
HEADERS_TOO_LONG = "ner_fast.headers_too_long"


def headers_too_long(limit: int) -> str:
    """The message of the 431 answered to a request whose line and headers pass `limit` bytes."""
    return f"the request's line and headers are longer than {limit} bytes; the connection is closed"

#: Seconds between two log lines about requests shed over the connection cap (the metrics count each).
SHED_LOG_PERIOD = 60.0
#: The metrics' path: answered over the connection cap too (its connection is open already, the answer
#: costs no tagging), so that overload can be watched while it lasts.
METRICS_PATH = "/metrics"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/static/app.css": ("app.css", "text/css; charset=utf-8")}


class ClientError(Exception):
    """A request the server will not run: `status` and a message for the client."""

    def __init__(self, status: int, message: str, unread: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        #: Refused before its body was read to the end: the connection is closed after the answer.
        self.unread = unread


def error(status: int, message: str, unread: bool = False) -> JSONResponse:
    """The JSON body of every error answer; after a 408 or 503, or a refusal before the body was read to
    its end (`unread`: a 413 by Content-Length or while the body streams in), the connection is closed
    (the rest of its body, if it ever comes, is not read)."""
    answer = JSONResponse({"error": message}, status_code=status)
    if status in (408, 503) or unread:
        answer.headers["connection"] = "close"
    return answer


# --------------------------------------------------------------------------- request checks


def parse_job(body: bytes, limits: Limits) -> Job:
    """Check a `/v1/entities` body and turn it into a `Job`; raises `ClientError` naming the problem."""
    if body.startswith(UTF8_BOM):  # RFC 8259 lets a parser skip it
        body = body[len(UTF8_BOM):]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ClientError(400, f"the request body is not valid UTF-8 (byte 0x{body[err.start]:02x} at offset {err.start})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ClientError(400, f"the request body is not valid JSON ({json_error(err)})") from None
    except RecursionError:
        raise ClientError(400, "the request body is not usable JSON: nested too deeply") from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        # Python's advice ("use sys.set_int_max_str_digits() to increase the limit") is for the server's code, not the client.
        reason = str(err).split("; use sys.set_int_max_str_digits()")[0]
        raise ClientError(400, f"the request body is not usable JSON: {reason}") from None
    if not isinstance(doc, dict):
        raise ClientError(422, f"the body must be a JSON object with one of the fields {', '.join(FIELDS)}; got a JSON {_kind(doc)}")
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise ClientError(422, f"unknown field {', '.join(map(repr, unknown))}: give one of {', '.join(FIELDS)}")
    given = [f for f in FIELDS if f in doc]
    if len(given) != 1:
        raise ClientError(422, f"give exactly one of the fields {', '.join(FIELDS)}" + (f"; got {', '.join(given)}" if given else ""))
    field = given[0]
    value = doc[field]
    if field == "text":
        if not isinstance(value, str):
            raise ClientError(422, f"'text' must be a string; got a JSON {_kind(value)}")
        _check_text(value, "'text'", limits)
        return Job([value], None, True, estimate_tokens(value))
    if not isinstance(value, list):
        raise ClientError(422, f"'{field}' must be a list; got a JSON {_kind(value)}")
    if len(value) > limits.max_texts:
        raise ClientError(413, f"'{field}' has {len(value)} entries; the limit is {limits.max_texts} a request")
    if field == "texts":
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ClientError(422, f"'texts'[{i}] must be a string; got a JSON {_kind(item)}")
            _check_text(item, f"'texts'[{i}]", limits)
        return Job(value, None, False, sum(estimate_tokens(t) for t in value))
    tokens = 0
    for i, sentence in enumerate(value):
        if not isinstance(sentence, list):
            raise ClientError(422, f"'tokens'[{i}] must be a list of token strings; got a JSON {_kind(sentence)}")
        chars = max(len(sentence) - 1, 0)  # the joining spaces
        for j, token in enumerate(sentence):
            where = f"'tokens'[{i}][{j}]"
            if not isinstance(token, str):
                raise ClientError(422, f"{where} must be a string; got a JSON {_kind(token)}")
            if blank_token([token]) is not None:
                raise ClientError(422, f"{where} is {token!r}: {TOKEN_RULE}")
            chars += len(token)
            _check_unicode(token, where)
        if chars > limits.max_text_chars:
            raise ClientError(413, f"'tokens'[{i}] joined by spaces has {chars} characters; the limit is {limits.max_text_chars}")
        tokens += len(sentence)
    return Job(None, value, False, tokens)


def _check_text(text: str, where: str, limits: Limits) -> None:
    if len(text) > limits.max_text_chars:
        raise ClientError(413, f"{where} has {len(text)} characters; the limit is {limits.max_text_chars} a text")
    _check_unicode(text, where)


def _check_unicode(text: str, where: str) -> None:
    """JSON escapes can spell lone surrogates (\\ud800), which are not text and cannot be encoded back
    (`text.lone_surrogate`)."""
    at = lone_surrogate(text)
    if at is not None:
        raise ClientError(422, f"{where}: {surrogate_reason(text, at)}")


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


class BodyDeadlines:
    """The deadline of every request body being read: `seconds` from the start of its reading (408
    after it), and the graceful stop (`stop`), which ends every such wait at once (503): a client
    holding half a body must not hold the server's exit.

    One timer sweeps the reads in progress (every tenth of `seconds`, at most every second, only while
    there are any) and cancels the overdue ones; a read itself costs a dict entry. (`asyncio.timeout`
    around each read made a timer per request: some 15-25 us of the event loop's time, measured.)
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.stopping = False
        self._period = max(0.05, min(1.0, seconds / 10))
        self._reading: dict[asyncio.Task[Any], float] = {}  # the task reading a body -> its deadline (loop time)
        self._given_up: set[asyncio.Task[Any]] = set()  # cancelled by `_sweep`, not by anyone else
        self._sweeper: asyncio.TimerHandle | None = None

    async def read(self, receive: Receive, scope: Scope, limit: int) -> bytes:
        """`read_body` within the deadline; ClientError 408 past it, 503 once stopping."""
        if self.stopping:
            raise ClientError(503, SHUTTING_DOWN)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._reading[task] = loop.time() + self.seconds
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._period, self._sweep)
        try:
            return await read_body(receive, scope, limit)
        except asyncio.CancelledError:
            if task not in self._given_up:
                raise  # not ours (uvicorn past the graceful timeout): goes on
            self._given_up.discard(task)
            task.uncancel()
            if self.stopping:
                raise ClientError(503, SHUTTING_DOWN) from None
            raise ClientError(408, f"the request body did not arrive within {self.seconds:g} s") from None
        finally:
            del self._reading[task]

    def stop(self) -> None:
        """The server is stopping: every body still being read is given up now, and none is read after."""
        self.stopping = True
        self._sweep()

    def _sweep(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if not self._reading:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in self._reading.items():
            if (self.stopping or deadline <= now) and task not in self._given_up:
                self._given_up.add(task)
                task.cancel()
        self._sweeper = loop.call_later(self._period, self._sweep)


async def read_body(receive: Receive, scope: Scope, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to be over `limit` bytes: from its
    Content-Length before reading anything, else while it streams in (chunked); with 415 when it is
    compressed (a Content-Encoding other than identity, or a Transfer-Encoding coding besides chunked)."""
    for name, value in scope["headers"]:
        # A compressed body would read as bytes that are not UTF-8: say what the server takes instead. The
        # HTTP layer undoes chunked alone and passes "Transfer-Encoding: gzip, chunked" bodies on as gzip.
        if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            raise ClientError(415, f"Content-Encoding {value.decode('latin-1')} is not accepted: send the JSON body uncompressed")
        if name == b"transfer-encoding" and {c.strip().lower() for c in value.split(b",")} - {b"", b"chunked", b"identity"}:
            raise ClientError(415, f"Transfer-Encoding {value.decode('latin-1')} is not accepted: send the JSON body "
                                   "uncompressed (chunked alone)")
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise ClientError(400, "the Content-Length header is not a number") from None
            if declared > limit:
                raise ClientError(413, f"the request body has {declared} bytes; the limit is {limit}", unread=True)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ClientError(413, f"the request body is over the limit of {limit} bytes", unread=True)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


# --------------------------------------------------------------------------- metrics


class Metrics:
    """The app's Prometheus metrics, in a registry of its own (two apps in one process do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("ner_fast_requests", "HTTP requests answered.", ["endpoint", "status"], registry=r)
        self.errors = Counter("ner_fast_errors", "HTTP requests answered with a 4xx or 5xx status.", ["endpoint", "status"], registry=r)
        self.latency = Histogram(
            "ner_fast_request_seconds", "Time from a request's start to its answer.", ["endpoint"], registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.in_progress = Gauge("ner_fast_requests_in_progress", "HTTP requests being answered now.", registry=r)
        self.shed = Counter("ner_fast_requests_shed", "Requests answered 503 because the server was at its "
                            "connection cap (--max-connections); also in ner_fast_requests_total.", ["endpoint"], registry=r)
        self.client_disconnects = Counter("ner_fast_client_disconnects", "Requests whose client left before sending "
                                          "the whole body (answered nothing).", ["endpoint"], registry=r)
        self.batch_requests = Histogram(
            "ner_fast_batch_requests", "Requests coalesced into one tagger batch.", registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.batch_tokens = Histogram(
            "ner_fast_batch_tokens", "Tokens (estimated for raw text) in one tagger batch.", registry=r,
            buckets=(10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000),
        )
        self.batch_seconds = Histogram(
            "ner_fast_batch_seconds", "Time one batch spent in a worker thread.", registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5),
        )

        # Labelled children, made once each: `labels()` costs a lock and a dict lookup per call.
        self._latency: dict[str, Any] = {}
        self._counts: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        latency = self._latency.get(endpoint)
        if latency is None:
            latency = self._latency[endpoint] = self.latency.labels(endpoint)
        counts = self._counts.get((endpoint, status))
        if counts is None:
            labels = (endpoint, str(status))
            counts = self._counts[endpoint, status] = (self.requests.labels(*labels), self.errors.labels(*labels) if status >= 400 else None)
        latency.observe(seconds)
        counts[0].inc()
        if counts[1] is not None:
            counts[1].inc()

    def rejected(self, status: int) -> None:
        """Count an answer the server wrote before any request could be made of the bytes (not HTTP/1.1,
        headers too long: `server.HeadersTimeoutProtocol`), under the endpoint "other"."""
        self.requests.labels("other", str(status)).inc()
        self.errors.labels("other", str(status)).inc()

    def on_batch(self, stats: BatchStats) -> None:
        self.batch_requests.observe(stats.items)
        self.batch_tokens.observe(stats.tokens)
        self.batch_seconds.observe(stats.seconds)


class MetricsMiddleware:
    """Counts every request by endpoint and status and times it (plain ASGI: cheaper than Starlette's
    BaseHTTPMiddleware on the hot path). `endpoints`: the app's route paths; any other path counts as
    "other", so clients cannot grow the label set.

    `shortcuts` maps `(method, path)` to an ASGI app that answers every request itself, errors included
    (`EntitiesEndpoint`): such a request goes straight to it, not through Starlette's exception
    middleware, router and route (a tenth of the server's CPU per request under load, measured by
    `benchmarks/serve.py`); anything else, e.g. the same path with another method, goes to `app`.

    A request the server marked over its connection cap (`OVER_CAPACITY`) is answered a JSON 503 here,
    counted (`ner_fast_requests_shed_total` and the requests by status) and logged at most once every
    `SHED_LOG_PERIOD` seconds: shedding is what overload looks like, and the metrics must show it.
    `/metrics` itself is answered (a scraper must see the overload while it lasts)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, endpoints: frozenset[str],
                 shortcuts: dict[tuple[str, str], ASGIApp] | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints
        self.shortcuts = shortcuts or {}
        self._shed_logged = -SHED_LOG_PERIOD  # perf_counter time of the last log line about shedding

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = path if path in self.endpoints else "other"
        status = 500  # if the app raises before answering, the server answers 500
        started = False

        async def send_status(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        app = self.shortcuts.get((scope["method"], path), self.app)
        m = self.metrics
        start = time.perf_counter()
        cap = scope.get(OVER_CAPACITY)
        if cap is not None and path != METRICS_PATH:
            app = error(503, f"the server is at its limit of {cap} connections: retry later")
            m.shed.labels(endpoint).inc()
            if start - self._shed_logged >= SHED_LOG_PERIOD:
                self._shed_logged = start
                log.warning("at the limit of %d connections (--max-connections): answering 503; "
                            "ner_fast_requests_shed_total counts them", cap)
        too_long = scope.get(HEADERS_TOO_LONG)
        if too_long is not None:
            app = error(431, headers_too_long(too_long), unread=True)
        m.in_progress.inc()
        try:
            await app(scope, receive, send_status)
        except asyncio.CancelledError:
            # uvicorn cancels the requests still running when a stop's --graceful-timeout runs out (or at a
            # second Ctrl-C): a JSON 503 rather than its text/plain 500 and a traceback per request.
            if started:
                raise
            await error(503, f"{SHUTTING_DOWN}: the request was cut off before it finished (--graceful-timeout ran"
                        " out, or a second stop signal)")(scope, receive, send_status)
        finally:
            if scope.get(CLIENT_LEFT):
                m.client_disconnects.labels(endpoint).inc()
            else:
                m.observe(endpoint, status, time.perf_counter() - start)
            m.in_progress.dec()


# --------------------------------------------------------------------------- the app


def model_info(tagger: Any) -> dict[str, Any]:
    """What `GET /v1/model` answers: tags, entity labels, provenance and validation F1 (when the package
    records them), and the versions it was made with and runs on."""
    import numpy
    import onnxruntime

    model = tagger.package.model
    provenance = model.get("provenance")
    # Bundled packages record how they were built, and their validation scores, under "provenance".
    validation = (provenance or {}).get("validation") or {}
    # The entity labels the answers carry (after the tagger's label map, `ner_fast.labels`) and what each means.
    labels = sorted(tagger.entity_labels)
    return {
        # Which package answers: its bundled name (None for another folder) and the checksum naming its contents.
        "package": {"name": bundled_name(tagger.package.path), "checksum": package_checksum(tagger.package.path)},
        "tags": list(tagger.tags),
        "labels": labels,
        "descriptions": {label: tagger.label_map.describe(label) for label in labels},
        "label_map": tagger.label_map.name,
        "uses_pos": bool(tagger.uses_pos),
        "decode": tagger.decode,
        "crf": tagger.crf is not None,
        "quantization": quantization_scheme(model),
        "buckets": list(tagger.buckets),
        "architecture": model.get("architecture"),
        "source": model.get("source"),
        "provenance": provenance,
        "validation_f1": validation.get("f1"),
        "versions": {
            "package": tagger.package.manifest.get("versions", {}),
            "runtime": {"ner_fast": __version__, "onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__,
                        "python": platform.python_version()},
        },
        "providers": tagger.providers,
    }


def static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once from the package (path -> (bytes, media type))."""
    folder = resources.files("ner_fast.serve") / "static"
    return {route: (folder.joinpath(name).read_bytes(), media) for route, (name, media) in STATIC.items()}


class EntitiesEndpoint:
    """`POST /v1/entities` as a plain ASGI app (Starlette routes to it without Request and Response
    objects): check the body, queue the job in the batcher (a large one in pieces), send the JSON bytes
    the worker wrote."""

    def __init__(self, batcher: Batcher[Job | Piece, Any], settings: Settings, bodies: BodyDeadlines) -> None:
        self.batcher = batcher
        self.limits = settings.limits
        self.piece_tokens = settings.piece_tokens
        self.lanes = settings.threads
        self.bodies = bodies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self.bodies.read(receive, scope, self.limits.max_body_bytes)
            if len(body) > 65536:  # parsing a large body would hold up every other request
                job = await asyncio.get_running_loop().run_in_executor(None, parse_job, body, self.limits)
            else:
                job = parse_job(body, self.limits)
            if job.tokens > self.piece_tokens:
                answer = await self.in_pieces(job)
            else:
                answer = await self.batcher.submit(job, job.tokens)
        except ClientError as err:
            await error(err.status, err.message, err.unread)(scope, receive, send)
            return
        except ClientDisconnect:  # nobody to answer, and no answer to count
            scope[CLIENT_LEFT] = True
            return
        except BatcherClosed as err:
            await error(503, str(err))(scope, receive, send)
            return
        except Exception:  # a fault of the server: answered here (Starlette's handler would re-raise and drop the connection)
            log.exception("POST /v1/entities failed")
            await error(500, INTERNAL_ERROR)(scope, receive, send)
            return
        headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def in_pieces(self, job: Job) -> bytes:
        """A large job's answer, its pieces (`annotate.cut`, tokenized in a thread) submitted a few at a
        time (one per worker thread), so that what other requests queue meanwhile runs between them."""
        loop = asyncio.get_running_loop()
        pieces = await loop.run_in_executor(None, cut, job, self.piece_tokens)
        answers: list[Any] = [None] * len(pieces)
        todo = iter(enumerate(pieces))

        async def lane() -> None:
            for i, piece in todo:  # shared by the lanes: each takes the next piece when its last is done
                answers[i] = await self.batcher.submit(piece, piece.tokens)

        await asyncio.gather(*(lane() for _ in range(min(self.lanes, len(pieces)))))
        return await loop.run_in_executor(None, assemble, job, answers, pieces)


def create_app(tagger: Any, settings: Settings = Settings()) -> Starlette:
    """The ASGI app serving `tagger` (a loaded `ner_fast.Tagger`); a worker thread answers a batch of
    requests with `ner_fast.serve.annotate.annotate`. `app.state.metrics` holds the app's `Metrics`.

    Raises ValueError for a model that reads POS tags: raw text has none, and the API takes none."""
    check_reads_no_pos(tagger.uses_pos, "the HTTP API does not take", "serve a package trained without POS input")
    metrics = Metrics()
    batcher: Batcher[Job | Piece, Any] = Batcher(
        lambda jobs: annotate(tagger, jobs), settings.max_batch_tokens, settings.max_wait_ms, settings.threads, metrics.on_batch
    )
    model_body = json.dumps(model_info(tagger), ensure_ascii=False).encode("utf-8")
    files = static_files()

    async def model(request: Request) -> Response:
        return Response(model_body, media_type=JSON)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def page_route(path: str) -> Route:
        content, media = files[path]

        async def page(request: Request) -> Response:
            return Response(content, media_type=media)

        return Route(path, page, methods=["GET"])

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        answer = error(exc.status_code, exc.detail)
        answer.headers.update(exc.headers or {})  # e.g. a 405's Allow
        return answer

    async def server_error(request: Request, exc: Exception) -> Response:
        # A fault of the server, not the client's: logged with its traceback here, one line to the client.
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error(500, INTERNAL_ERROR)

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        await batcher.start()
        try:
            yield
        except asyncio.CancelledError:
            # A forced stop (a second Ctrl-C): uvicorn skips the graceful one and every task is being cancelled,
            # the batcher's too. Nothing is waited for, and no traceback is logged for what was asked.
            batcher.abandon()
            return
        await batcher.close()  # finishes the queued work first

    bodies = BodyDeadlines(settings.timeouts.body)
    entities = EntitiesEndpoint(batcher, settings, bodies)
    app = Starlette(
        routes=[
            Route("/v1/entities", entities, methods=["POST"]),
            Route("/v1/model", model, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route(METRICS_PATH, prometheus, methods=["GET"]),
            *(page_route(path) for path in STATIC),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics, endpoints=frozenset(route.path for route in app.routes),
                       shortcuts={("POST", "/v1/entities"): entities})
    app.state.metrics = metrics
    app.state.batcher = batcher
    app.state.settings = settings  # `server.make_server` reads its timeouts
    app.router.redirect_slashes = False  # /v1/entities/ is a 404, not a 307 to a URL from the client's Host header

    def stopping() -> None:  # `server.StoppingServer` calls it when the graceful stop begins
        bodies.stop()  # a body still coming is answered 503 at once
        batcher.hurry()  # no request will join a batch being gathered: it waits no longer

    app.state.stopping = stopping
    return app
