"""Every client mistake gets a 400, 413 or 422 with a JSON message naming the problem (and the limit,
where one was passed), never a 500 or a traceback; the server keeps answering afterwards."""
from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from serve.serving import LIMITS

CASES = [
    # (name, body bytes, expected status, words the message must contain)
    ("invalid UTF-8", b'{"text": "caf\xe9"}', 400, ["UTF-8", "0xe9"]),
    ("invalid JSON", b'{"text": "Paris"', 400, ["not valid JSON"]),
    ("empty body", b"", 400, ["not valid JSON"]),
    # json's "Unterminated string starting at" read on into ours: "starting at at line 1 column 10".
    ("unterminated string", b'{"text": "Paris', 400, ["not valid JSON (line 1, column 10: Unterminated string starting at)"]),
    ("not an object", b'["Paris"]', 422, ["JSON object", "array"]),
    ("nested too deeply", b"[" * 2000 + b"]" * 2000, 400, ["nested too deeply"]),
    ("a 4400-digit number", b'{"text": ' + b"7" * 4400 + b"}", 400, ["not usable JSON", "4300"]),
    ("unknown field", b'{"txt": "Paris"}', 422, ["unknown field", "'txt'"]),
    ("two fields", b'{"text": "a", "texts": ["b"]}', 422, ["exactly one", "text, texts"]),
    ("no field", b"{}", 422, ["exactly one"]),
    ("text not a string", b'{"text": 42}', 422, ["'text' must be a string", "number"]),
    ("texts not a list", b'{"texts": "Paris"}', 422, ["'texts' must be a list", "string"]),
    ("texts item not a string", b'{"texts": ["a", null]}', 422, ["'texts'[1] must be a string", "null"]),
    ("tokens item not a list", b'{"tokens": ["Paris"]}', 422, ["'tokens'[0] must be a list"]),
    ("token not a string", b'{"tokens": [["Paris", 3]]}', 422, ["'tokens'[0][1] must be a string"]),
    ("empty token", b'{"tokens": [["Paris", ""]]}', 422, ["'tokens'[0][1] is ''", "neither whitespace nor"]),
    ("whitespace token", b'{"tokens": [["Paris"], ["\\u00a0", "is"]]}', 422, ["'tokens'[1][0] is '\\xa0'", "neither whitespace nor"]),
    ("zero-width token", b'{"tokens": [["Paris", "\\u200b"]]}', 422, ["'tokens'[0][1] is '\\u200b'", "invisible format character"]),
    ("lone surrogate", b'{"text": "Paris \\ud800"}', 422, ["'text': character 6 is a lone surrogate (U+D800), which is not text"]),
    ("too many texts", json.dumps({"texts": ["a"] * (LIMITS.max_texts + 1)}).encode(), 413,
     [f"{LIMITS.max_texts + 1} entries", f"limit is {LIMITS.max_texts}"]),
    ("too many sentences", json.dumps({"tokens": [["a"]] * (LIMITS.max_texts + 1)}).encode(), 413, [f"limit is {LIMITS.max_texts}"]),
    ("text too long", json.dumps({"text": "x" * (LIMITS.max_text_chars + 1)}).encode(), 413,
     [f"{LIMITS.max_text_chars + 1} characters", f"limit is {LIMITS.max_text_chars}"]),
    ("one of the texts too long", json.dumps({"texts": ["a", "y" * (LIMITS.max_text_chars + 1)]}).encode(), 413,
     ["'texts'[1]", f"limit is {LIMITS.max_text_chars}"]),
    ("sentence too long", json.dumps({"tokens": [["abcd"] * LIMITS.max_text_chars]}).encode(), 413,
     ["'tokens'[0]", f"limit is {LIMITS.max_text_chars}"]),
    ("body too large", json.dumps({"text": "z" * (LIMITS.max_body_bytes + 10)}).encode(), 413,
     [f"limit is {LIMITS.max_body_bytes}"]),
]


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as c:
        yield c


def assert_clean_error(response: httpx.Response, status: int, words: list[str]) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    assert "Traceback" not in response.text
    for word in words:
        assert word in message


@pytest.mark.parametrize("name, body, status, words", CASES, ids=[c[0] for c in CASES])
def test_bad_request_gets_a_clear_error(client: httpx.Client, name: str, body: bytes, status: int, words: list[str]) -> None:
    response = client.post("/v1/entities", content=body, headers={"content-type": "application/json"})
    assert_clean_error(response, status, words)
    assert "sys." not in response.json()["error"]  # no advice about the server's Python


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(client: httpx.Client) -> None:
    # No Content-Length: the server counts the bytes as they arrive.
    chunks = iter([b'{"text": "', b"w" * LIMITS.max_body_bytes, b'"}'])
    response = client.post("/v1/entities", content=chunks)
    assert "content-length" not in response.request.headers
    assert_clean_error(response, 413, [f"over the limit of {LIMITS.max_body_bytes} bytes"])
    # The rest of the body was never read: the server closes the connection rather than keep it alive.
    assert response.headers.get("connection") == "close"


def test_a_body_declared_over_the_limit_closes_the_connection_and_a_read_one_does_not(client: httpx.Client) -> None:
    big = json.dumps({"text": "z" * (LIMITS.max_body_bytes + 10)}).encode()
    response = client.post("/v1/entities", content=big, headers={"content-type": "application/json"})
    assert_clean_error(response, 413, [f"limit is {LIMITS.max_body_bytes}"])
    assert response.headers.get("connection") == "close"
    # A 413 for what a body that was read asks (too many texts) keeps the connection.
    many = json.dumps({"texts": ["a"] * (LIMITS.max_texts + 1)}).encode()
    response = client.post("/v1/entities", content=many, headers={"content-type": "application/json"})
    assert_clean_error(response, 413, [f"limit is {LIMITS.max_texts}"])
    assert response.headers.get("connection") != "close"


def test_a_compressed_body_is_refused_with_415_saying_so(client: httpx.Client) -> None:
    # It read as "not valid UTF-8" (the gzip bytes), which sent the client looking in the wrong place.
    import gzip

    body = gzip.compress(b'{"text": "Paris"}')
    response = client.post("/v1/entities", content=body, headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert_clean_error(response, 415, ["Content-Encoding gzip is not accepted", "uncompressed"])
    plain = client.post("/v1/entities", content=b'{"text": "Paris"}', headers={"content-encoding": "identity"})
    assert plain.status_code == 200


def test_a_body_compressed_in_its_transfer_coding_is_refused_with_415(client: httpx.Client) -> None:
    # "Transfer-Encoding: gzip, chunked": the HTTP layer undid the chunks only and the gzip bytes read as
    # "not valid UTF-8". httpx sends chunked alone, so the request is written by hand.
    import gzip
    import socket

    body = gzip.compress(b'{"text": "Paris"}')
    for coding, status in ((b"gzip, chunked", b"415"), (b"chunked", b"200")):
        data = body if coding != b"chunked" else b'{"text": "Paris"}'
        request = (b"POST /v1/entities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                   b"Transfer-Encoding: " + coding + b"\r\n\r\n" + b"%x\r\n" % len(data) + data + b"\r\n0\r\n\r\n")
        with socket.create_connection((client.base_url.host, client.base_url.port), timeout=10) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):  # bounded by the 10 s timeout; the server closes (Connection: close)
                answer += chunk
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.split()[1] == status, answer
        if status == b"415":
            assert b"Transfer-Encoding gzip, chunked is not accepted" in payload, payload
        else:
            assert json.loads(payload)["entities"], payload  # the plain chunked request is tagged


def test_a_leading_byte_order_mark_is_skipped_and_nothing_else(client: httpx.Client) -> None:
    """PowerShell and Windows editors write UTF-8 with a byte order mark; RFC 8259 lets a parser skip it.
    It was a 400."""
    body = json.dumps({"text": "Angela Merkel visited Paris."}).encode()
    headers = {"content-type": "application/json"}
    plain = client.post("/v1/entities", content=body, headers=headers)
    marked = client.post("/v1/entities", content=b"\xef\xbb\xbf" + body, headers=headers)
    assert plain.status_code == marked.status_code == 200 and marked.json() == plain.json()
    assert plain.json()["entities"]  # a text with entities: the answers compared are not empty
    twice = client.post("/v1/entities", content=b"\xef\xbb\xbf" * 2 + body, headers=headers)
    assert_clean_error(twice, 400, ["not valid JSON"])


def test_unknown_paths_and_methods(client: httpx.Client) -> None:
    assert_clean_error(client.get("/v1/nothing"), 404, ["Not Found"])
    assert_clean_error(client.get("/v1/entities"), 405, ["Method Not Allowed"])
    assert_clean_error(client.post("/healthz"), 405, ["Method Not Allowed"])
    # A 405 says which methods the path takes (RFC 9110: the Allow header is required).
    assert client.get("/v1/entities").headers.get("allow") == "POST"
    assert set(client.post("/healthz").headers.get("allow", "").split(", ")) == {"GET", "HEAD"}
    # Paths that try to leave a folder reach no file: there is no route that reads one.
    assert_clean_error(client.get("/static/../../etc/passwd"), 404, ["Not Found"])
    assert_clean_error(client.get("/static/%2e%2e/app.py"), 404, ["Not Found"])
    # A trailing slash is another path: it was a 307 to a URL built from the client's Host header.
    slashed = client.post("/v1/entities/", json={"text": "Paris"}, headers={"Host": "elsewhere.example"})
    assert_clean_error(slashed, 404, ["Not Found"])
    assert "location" not in slashed.headers


def test_the_server_still_answers_after_the_errors(client: httpx.Client) -> None:
    for _, body, _, _ in CASES:
        client.post("/v1/entities", content=body)
    assert client.get("/healthz").json() == {"status": "ok"}
    metrics = client.get("/metrics").text
    assert 'ner_fast_errors_total{endpoint="/v1/entities",status="422"}' in metrics
    assert 'ner_fast_errors_total{endpoint="/v1/entities",status="413"}' in metrics
    assert 'status="500"' not in metrics
