"""Connections that misbehave: one that sends nothing, its headers or its body too slowly, or stays idle
is closed in bounded time; past the connection cap a request gets 503; a client that leaves mid-body
is not counted as an error answered; SIGTERM does not wait for a half-sent body; and a large request is
cut into pieces that a small request runs between, with the answer it would have had whole."""
from __future__ import annotations

import json
import logging
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import ner_fast.serve.app as app_module
from ner_fast.serve.app import create_app
from ner_fast.serve.settings import Limits, Settings, Timeouts
from ner_fast.tagger import Tagger
from serve.serving import LIMITS, running
from serve.test_endpoints import expected_docs, metric
from serve.test_serve_cli import start_server

SHORT = Timeouts(headers=0.5, keep_alive=0.3, body=0.5, graceful=5)
HALF_BODY = b"POST /v1/entities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"


@pytest.fixture(scope="module")
def url(tagger: Tagger) -> Iterator[str]:
    with running(create_app(tagger, Settings(limits=LIMITS, timeouts=SHORT, max_connections=3))) as base:
        yield base


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def closed_after(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and the seconds that took."""
    started, received = time.monotonic(), b""
    with sock:
        while chunk := sock.recv(4096):  # bounded by the socket's 10 s timeout
            received += chunk
    return received, time.monotonic() - started


@pytest.mark.parametrize("sends", [b"", b"GET /healthz HTTP/1.1\r\nHost:"], ids=["nothing", "half the headers"])
def test_a_connection_without_whole_headers_is_closed(url: str, sends: bytes) -> None:
    sock = connect(url)
    sock.sendall(sends)
    received, seconds = closed_after(sock)
    assert received == b"" and seconds < 5


def test_an_idle_keep_alive_connection_is_closed(url: str) -> None:
    sock = connect(url)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    received, seconds = closed_after(sock)
    assert received.startswith(b"HTTP/1.1 200") and seconds < 5


@pytest.mark.parametrize("trickle", [False, True], ids=["stalled", "a byte at a time"])
def test_a_slow_body_gets_408_and_the_connection_closes(url: str, trickle: bool) -> None:
    sock = connect(url)
    sock.sendall(HALF_BODY)
    if trickle:  # a byte every 50 ms: the deadline is the whole body's, not each chunk's
        sock.settimeout(0.05)
        for _ in range(60):
            try:
                first = sock.recv(4096)
                break
            except TimeoutError:
                sock.sendall(b" ")
        else:
            raise AssertionError("no answer within 3 s")
        sock.settimeout(10)
        rest, seconds = closed_after(sock)
        received = first + rest
    else:
        received, seconds = closed_after(sock)
    assert received.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.5 s" in received
    assert b"connection: close" in received.lower() and seconds < 5


def test_a_client_that_sends_all_of_a_body_declared_too_large_still_reads_the_413(url: str) -> None:
    """The server answers 413 from Content-Length alone and closes; a client such as curl sends the whole
    body before reading. Closing with the body unread made the kernel send a reset, and the client saw
    "connection reset" instead of the 413 (RFC 9112 9.6: a staged close, reading what still comes)."""
    body = b"{" + b" " * (4 << 20)
    head = f"POST /v1/entities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    sock, failures = connect(url), []

    def send_all() -> None:
        try:
            sock.sendall(head.encode() + body)
        except OSError as err:  # a reset or a broken pipe: the server dropped what was sent
            failures.append(err)

    sender = threading.Thread(target=send_all)
    sender.start()
    received = b""
    with sock:
        try:
            while chunk := sock.recv(4096):  # to the server's end of stream; bounded by the 10 s timeout
                received += chunk
        finally:
            sender.join(timeout=10)  # the socket stays open until the sender is done with it
    assert not sender.is_alive() and failures == []
    assert received.startswith(b"HTTP/1.1 413") and b"connection: close" in received.lower()


class Records(logging.Handler):
    """The log records of the server's loggers during a test (uvicorn's do not reach the root logger)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def server_log() -> Iterator[Records]:
    handler, loggers = Records(), [logging.getLogger(n) for n in ("uvicorn.error", "ner_fast")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def answers_in(received: bytes) -> list[tuple[int, bytes, bytes]]:
    """(status, head, body) of each HTTP/1.1 answer (with a Content-Length) in `received`, in order."""
    found, rest = [], received
    while rest:
        head, _, rest = rest.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        found.append((int(head.split()[1]), head.lower(), rest[:length]))
        rest = rest[length:]
    return found


@pytest.mark.parametrize("before", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                                    b"POST /v1/entities HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n"
                                    b'{"text": "Paris"}'], ids=["alone", "after a GET", "after a POST"])
def test_bytes_that_are_not_http_get_a_json_400_after_the_answers_before_them(url: str, before: bytes,
                                                                            server_log: Records) -> None:
    """uvicorn answered text/plain, and first: the answer of a request sent just before in the same packet
    was lost ("write() after write_eof()", a traceback in the log)."""
    sock = connect(url)
    sock.sendall(before + b"GARBAGE\r\n\r\n")
    received, seconds = closed_after(sock)
    answers = answers_in(received)
    assert [status for status, _, _ in answers] == ([200] if before else []) + [400] and seconds < 5
    _, head, body = answers[-1]
    assert b"content-type: application/json" in head and b"connection: close" in head
    assert "not valid HTTP/1.1" in json.loads(body)["error"]
    assert not [r for r in server_log.records if r.levelno >= logging.ERROR], server_log.records


POST = b'POST /v1/entities HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n{"text": "Paris"}'


@pytest.mark.parametrize("requests", [1, 2])
def test_requests_before_a_half_close_are_answered(url: str, requests: int, server_log: Records) -> None:
    """A client that ends its side after its requests (`shutdown(SHUT_WR)`, as `nc -N` does) got no answer:
    uvicorn closed the connection at the end of stream. They are answered, then it closes."""
    sock = connect(url)
    sock.sendall(POST * requests)
    sock.shutdown(socket.SHUT_WR)
    received, seconds = closed_after(sock)
    answers = answers_in(received)
    assert [status for status, _, _ in answers] == [200] * requests and seconds < 5
    assert all(json.loads(body)["entities"] for _, _, body in answers)
    assert not [r for r in server_log.records if r.levelno >= logging.ERROR], server_log.records


def test_a_client_that_closes_after_pipelined_requests_leaves_no_error(url: str, server_log: Records) -> None:
    """Two requests in one packet, then a close: the answers were written to the closed connection, two
    tracebacks in the log each time ("the handler is closed"), which any client could repeat."""
    for _ in range(3):
        sock = connect(url)
        sock.sendall(POST * 2)
        sock.close()
    time.sleep(1.0)  # the answers are tagged and written (or dropped) meanwhile
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    assert not [r for r in server_log.records if r.levelno >= logging.ERROR], server_log.records


def test_connections_over_the_cap_get_503_and_the_others_go_on(url: str) -> None:
    held = [connect(url) for _ in range(3)]
    try:
        time.sleep(0.1)  # the server has accepted them
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{url}/healthz").status_code == 503
        held.pop().close()
        time.sleep(0.1)
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{url}/healthz").status_code == 200  # three at once are served
    finally:
        for sock in held:
            sock.close()


def test_connections_lingering_after_their_last_answer_do_not_count_toward_the_cap(url: str) -> None:
    # Three clients refused 413 by Content-Length keep their sockets open: the server reads and drops what
    # they send for 2 s (`StagedClose`), but they can bring no request, so a fourth is served.
    head = b"POST /v1/entities HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
    held = [connect(url) for _ in range(3)]
    try:
        for sock in held:
            sock.sendall(head)
        for sock in held:
            assert sock.recv(4096).startswith(b"HTTP/1.1 413")
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{url}/healthz").status_code == 200
    finally:
        for sock in held:
            sock.close()


def test_a_request_over_the_cap_gets_a_json_503_that_the_metrics_count(url: str) -> None:
    """uvicorn's own shedding answered text/plain and counted nothing: under overload /metrics showed only
    the requests served (and was itself answered 503), so nobody could tell that requests were turned away."""
    before = httpx.get(f"{url}/metrics", timeout=10).text
    held = [connect(url) for _ in range(3)]
    try:
        time.sleep(0.1)  # the server has accepted them
        with httpx.Client(timeout=10) as client:
            answer = client.post(f"{url}/v1/entities", json={"text": "Paris"})
        with httpx.Client(timeout=10) as client:  # the metrics are answered over the cap too
            reply = client.get(f"{url}/metrics")
            assert reply.status_code == 200
            after = reply.text
    finally:
        for sock in held:
            sock.close()
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    assert "limit of 3 connections" in answer.json()["error"]
    for name, labels in (("ner_fast_requests_shed_total", {}), ("ner_fast_requests_total", {"status": "503"}),
                         ("ner_fast_errors_total", {"status": "503"})):
        assert metric(after, name, endpoint="/v1/entities", **labels) == \
            metric(before, name, endpoint="/v1/entities", **labels) + 1, name


def test_a_client_that_leaves_mid_body_is_not_an_error_answered(url: str) -> None:
    before = httpx.get(f"{url}/metrics", timeout=10).text
    with connect(url) as sock:
        sock.sendall(HALF_BODY)
        time.sleep(0.1)
    deadline = time.monotonic() + 10
    while True:
        after = httpx.get(f"{url}/metrics", timeout=10).text
        left = metric(after, "ner_fast_client_disconnects_total", endpoint="/v1/entities")
        if left > metric(before, "ner_fast_client_disconnects_total", endpoint="/v1/entities"):
            break
        assert time.monotonic() < deadline, "the disconnect was never counted"
        time.sleep(0.05)
    for status in ("400", "408"):
        assert metric(after, "ner_fast_errors_total", endpoint="/v1/entities", status=status) == \
            metric(before, "ner_fast_errors_total", endpoint="/v1/entities", status=status)


@pytest.mark.slow  # a server process
def test_sigterm_does_not_wait_for_a_half_sent_body(package: Path) -> None:
    process, url = start_server(package, "--body-timeout", "600")
    try:
        with connect(url) as sock:
            sock.sendall(HALF_BODY)
            time.sleep(0.3)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
            assert time.monotonic() - started < 5  # not the body timeout, nor the graceful one (30 s)
            assert sock.recv(4096).startswith(b"HTTP/1.1 503")
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_a_large_request_is_cut_into_pieces_that_a_small_one_runs_between(tagger: Tagger,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[list[str]] = []
    started = threading.Event()
    real = app_module.annotate

    def recording(tagger: Tagger, items: list) -> list:  # type: ignore[type-arg]
        batches.append([type(item).__name__ for item in items])
        started.set()
        time.sleep(0.2)  # a batch takes a while: the small request arrives while the pieces run
        return real(tagger, items)

    monkeypatch.setattr(app_module, "annotate", recording)
    # Texts of several sentences, one over the piece size: cut between texts and inside it.
    texts = ["Angela Merkel visited Paris on Monday. The UN met in New York. Prices rose 3.5 % in 2009."] * 5 + \
            ["Talks in Berlin ended. " * 12, "Zoë met 李 in Zürich.", ""]
    settings = Settings(threads=1, limits=LIMITS, piece_tokens=10)
    with running(create_app(tagger, settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        answer: list[httpx.Response] = []
        large = threading.Thread(target=lambda: answer.append(client.post("/v1/entities", json={"texts": texts})))
        large.start()
        try:
            assert started.wait(30)
            small = client.post("/v1/entities", json={"text": "Paris."})
        finally:
            large.join(timeout=60)
    assert small.status_code == 200 and small.json() == expected_docs(tagger, ["Paris."])[0]
    assert answer and answer[0].status_code == 200
    assert answer[0].json() == expected_docs(tagger, texts)  # the documents whole, as if uncut
    pieces = [i for i, batch in enumerate(batches) if "Piece" in batch]
    job = next(i for i, batch in enumerate(batches) if "Job" in batch)
    assert len(pieces) >= 6  # cut: 5 texts of 19 tokens, a text of 48 cut between its sentences, ...
    assert pieces[0] < job < pieces[-1]  # the small request did not wait for the whole large one


def test_cut_and_assemble_give_the_uncut_answer(tagger: Tagger) -> None:
    from ner_fast.serve.annotate import Job, annotate, assemble, cut

    text = " ".join(f"Talks number {i} in Berlin ended on Monday." for i in range(30))
    for job in (Job([text], None, True, 1), Job([text, "", "Paris."], None, False, 1),
                Job(None, [["Angela", "Merkel"], ["Paris"], ["a"] * 30], False, 1)):
        pieces = cut(job, 16)
        assert len(pieces) > 1
        answers = [annotate(tagger, [piece])[0] for piece in pieces]
        assert assemble(job, answers, pieces) == annotate(tagger, [job])[0]


def test_a_client_that_never_reads_its_answer_is_cut_off_in_bounded_time(tagger: Tagger) -> None:
    """asyncio's close waits for the buffer to drain: a client that read 12 bytes of a large answer and then
    nothing kept its connection, and the answer's memory, after every timeout (breaker trial: 20 of them,
    +214 MB, still open 35 s later). Now the linger ends once the client reads nothing for a while."""
    limits = Limits(max_body_bytes=1_000_000, max_texts=8, max_text_chars=200_000)
    with running(create_app(tagger, Settings(limits=limits, timeouts=SHORT))) as base:
        sock = connect(base)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        body = json.dumps({"texts": ["Paris and Berlin . " * 2500] * 4}).encode()  # an answer of some 1.4 MB
        sock.sendall(b"POST /v1/entities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        assert sock.recv(12).startswith(b"HTTP/1.1 200")
        time.sleep(SHORT.keep_alive + 2 * 2.0 + 1.5)  # the keep-alive timeout, then a linger (2 s) or two
        received = b""
        with pytest.raises(ConnectionResetError):  # cut off: the rest of the answer dropped, the connection reset
            with sock:
                while chunk := sock.recv(65536):
                    received += chunk
        assert len(received) < 1_000_000  # (had it not been cut, the whole answer would have come now)


def test_headers_longer_than_the_limit_get_a_counted_json_431(url: str) -> None:
    from ner_fast.serve.server import MAX_HEADER_BYTES

    before = httpx.get(url + "/metrics").text
    sock = connect(url)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * (MAX_HEADER_BYTES + 10))
    received, seconds = closed_after(sock)
    [(status, head, body)] = answers_in(received)
    assert status == 431 and seconds < 5 and b"date: " in head and b"content-type: application/json" in head
    assert "longer than 65536 bytes" in json.loads(body)["error"]
    after = httpx.get(url + "/metrics").text
    assert metric(after, "ner_fast_errors_total", endpoint="other", status="431") == \
        metric(before, "ner_fast_errors_total", endpoint="other", status="431") + 1


@pytest.mark.parametrize("size", [66_000, 100_000, 120_000])
def test_complete_headers_past_the_limit_get_the_431_too(url: str, size: int) -> None:
    """Headers that completed within the read crossing the limit were let through (65-128 KiB answered 200):
    the count ran after the parser had finished them."""
    before = httpx.get(url + "/metrics").text
    sock = connect(url)
    sock.sendall(b"GET /nothing HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * size + b"\r\n\r\n")
    received, seconds = closed_after(sock)
    [(status, head, body)] = answers_in(received)
    assert status == 431 and seconds < 5 and b"content-type: application/json" in head
    assert "longer than 65536 bytes; the connection is closed" in json.loads(body)["error"]
    after = httpx.get(url + "/metrics").text
    assert metric(after, "ner_fast_errors_total", endpoint="other", status="431") == \
        metric(before, "ner_fast_errors_total", endpoint="other", status="431") + 1
    sock = connect(url)  # just under the limit: answered
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Long: " + b"a" * 65_000 + b"\r\n\r\n")
    [(status, _, _)] = answers_in(closed_after(sock)[0])
    assert status == 200


def test_a_websocket_upgrade_is_an_http_request_like_another(url: str) -> None:
    # With wsproto installed, uvicorn took the upgrade and answered a bare 403 (no JSON, not in the metrics).
    sock = connect(url)
    sock.sendall(b"GET /v1/entities HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                 b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    sock.settimeout(5)
    received = sock.recv(65536)
    sock.close()
    [(status, head, body)] = answers_in(received)
    assert status == 405 and b"content-type: application/json" in head and "error" in json.loads(body)


def test_a_text_without_spaces_is_estimated_by_its_tokens_and_cut_into_pieces() -> None:
    # Estimated as its words, "Hi!" * 33,000 (some 66,000 tokens) counted 1: never cut, one 44 s batch.
    # Then ASCII punctuation alone: "«" * 100,000 (as many tokens) counted 1, and held every request for 12 s.
    from ner_fast.text import estimate_tokens, segment

    texts = ("Hi!" * 300, "a,b;c" * 100, "Angela Merkel visited Paris .", "東京" * 50, "", "«" * 500, "😀" * 400,
             "a—b¿c。d،" * 100, "«Paris» — 👍 ok." * 50, "e\u0301t\u00e9" * 60)
    for text in texts:
        words = segment(text)[0]
        assert estimate_tokens(text) >= len(words) * 0.5 and estimate_tokens(text) <= max(1, 2 * len(words)), text[:20]
