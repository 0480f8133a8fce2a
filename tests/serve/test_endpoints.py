"""The endpoints over real HTTP: /healthz, /v1/model, /metrics, the page's files, and /v1/entities
(raw text, several texts, pre-tokenized) against the in-process text API; concurrent clients get the
answers sequential ones get, and their requests share batches."""
from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy
import onnxruntime
import pytest

from ner_fast import __version__
from ner_fast.serve.app import create_app
from ner_fast.serve.settings import Settings
from ner_fast.tagger import Tagger
from serve.serving import PROVENANCE, running

TEXT = "Angela Merkel visited Paris on Monday. The UN met in New York. Prices rose 3.5 % in 2009."
TEXTS = [
    TEXT,
    "",
    "Ünïcödé: Zoë met 李 in Zürich 🙂 on Friday.\n\nA second paragraph about Berlin.",
    "Mr. Smith's U.S.-led talks didn't end.",
    "   ",
]
SENTENCES = [["Angela", "Merkel", "visited", "Paris", "."], ["The", "UN", "met", "in", "New", "York"], ["Zyxwv"]]


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as c:
        yield c


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" ([0-9.e+-]+)$"
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def test_healthz(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_model_describes_tags_provenance_and_versions(client: httpx.Client, tagger: Tagger, package: Path) -> None:
    response = client.get("/v1/model")
    assert response.status_code == 200
    info = response.json()
    model = json.loads((package / "model.json").read_text())
    assert info["tags"] == model["vocab"]["tags"]
    # A package outside the bundled ones has no name; its checksum is its manifest's.
    assert info["package"] == {"name": None, "checksum": hashlib.sha256((package / "manifest.json").read_bytes()).hexdigest()}
    assert info["labels"] == sorted({t[2:] for t in model["vocab"]["tags"] if t != "O"})
    # Each label's description, as the package records it (export writes the GMB ones).
    assert info["descriptions"] == {label: model["label_descriptions"][label] for label in info["labels"]}
    assert info["descriptions"]["geo"] == "geographical entity" and info["label_map"] == "package"
    assert info["uses_pos"] is False
    assert model["quantization"] is None and info["quantization"] == "none"  # float32, as `ner-fast info` says it
    assert info["source"] == model["source"]
    assert info["provenance"] == PROVENANCE
    assert info["validation_f1"] == PROVENANCE["validation"]["f1"]
    assert info["versions"]["package"] == json.loads((package / "manifest.json").read_text())["versions"]
    assert info["versions"]["runtime"]["ner_fast"] == __version__
    assert info["versions"]["runtime"]["onnxruntime"] == onnxruntime.__version__
    assert info["versions"]["runtime"]["numpy"] == numpy.__version__


def test_page_and_its_files_come_from_the_app(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js">' in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "/v1/entities" in script.text
    style = client.get("/static/app.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    for body in (page.text, script.text, style.text):
        assert "://" not in body  # nothing from another host (no CDN): the machines reach no network


def test_metrics_count_requests_errors_latency(client: httpx.Client) -> None:
    before = client.get("/metrics").text
    for _ in range(3):
        client.get("/healthz")
    client.post("/v1/entities", content=b"{")
    assert client.post("/v1/entities", json={"text": TEXT}).status_code == 200
    assert client.get("/v1/entities").status_code == 405  # not the POST shortcut: through the router
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert metric(text, "ner_fast_requests_total", endpoint="/healthz", status="200") == \
        metric(before, "ner_fast_requests_total", endpoint="/healthz", status="200") + 3
    assert metric(text, "ner_fast_errors_total", endpoint="/v1/entities", status="400") == \
        metric(before, "ner_fast_errors_total", endpoint="/v1/entities", status="400") + 1
    for status, added in (("200", 1), ("405", 1)):
        assert metric(text, "ner_fast_requests_total", endpoint="/v1/entities", status=status) == \
            metric(before, "ner_fast_requests_total", endpoint="/v1/entities", status=status) + added
    assert metric(text, "ner_fast_request_seconds_count", endpoint="/healthz") >= 3
    assert "ner_fast_request_seconds_bucket" in text
    assert "ner_fast_batch_requests_bucket" in text and "ner_fast_batch_tokens_bucket" in text


def test_two_apps_keep_their_own_metrics(tagger: Tagger) -> None:
    # One registry per app: creating a second app in the same process must not fail or share counts.
    first, second = create_app(tagger), create_app(tagger)
    first.state.metrics.requests.labels("/healthz", "200").inc()
    assert first.state.metrics.registry is not second.state.metrics.registry
    sample = {"endpoint": "/healthz", "status": "200"}
    assert first.state.metrics.registry.get_sample_value("ner_fast_requests_total", sample) == 1
    assert not second.state.metrics.registry.get_sample_value("ner_fast_requests_total", sample)


def expected_docs(tagger: Tagger, texts: list[str]) -> list[dict]:
    """The in-process text API's answers, through JSON as the server sends them."""
    return [json.loads(json.dumps(tagger(t).to_dict())) for t in texts]


def test_entities_of_one_text_equal_the_text_api(client: httpx.Client, tagger: Tagger) -> None:
    response = client.post("/v1/entities", json={"text": TEXT})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc == expected_docs(tagger, [TEXT])[0]
    assert doc["entities"], "the test model finds no entity in the sample text"
    for ent in doc["entities"]:
        assert TEXT[ent["start"] : ent["end"]] == ent["text"] == ent["word"]
        assert ent["label"] == ent["entity_group"]


def test_entities_of_several_texts_come_back_in_order(client: httpx.Client, tagger: Tagger) -> None:
    response = client.post("/v1/entities", json={"texts": TEXTS})
    assert response.status_code == 200
    docs = response.json()
    assert docs == expected_docs(tagger, TEXTS)
    assert [d["text"] for d in docs] == TEXTS
    assert docs[1]["tokens"] == [] and docs[1]["entities"] == []
    assert client.post("/v1/entities", json={"texts": []}).json() == []


def test_an_answer_is_the_bytes_ner_fast_tag_writes(client: httpx.Client, tagger: Tagger) -> None:
    # One encoding of a document: the body of a one-text answer is `Doc.to_json()`, the line of
    # `ner-fast tag`; a list is those lines joined by commas. U+2028 and U+0085 come back escaped.
    texts = [TEXT, "Zo\u00eb met Ange\u2028la in Z\u00fcrich\x85 on Friday.\u2029Then Paris \U0001f642."]
    lines = [tagger(t).to_json().encode("utf-8") for t in texts]
    assert lines
    for text, line in zip(texts, lines):
        response = client.post("/v1/entities", json={"text": text})
        assert response.status_code == 200 and response.content == line
    both = client.post("/v1/entities", json={"texts": texts})
    assert both.status_code == 200 and both.content == b"[" + b",".join(lines) + b"]"
    assert "\u2028" not in both.text and "\x85" not in both.text and both.json()[1]["text"] == texts[1]


def test_pre_tokenized_sentences_keep_their_tokens(client: httpx.Client, tagger: Tagger) -> None:
    # Whitespace inside a token is the token's, as in tag_batch (one rule, `text.blank_token`; it was
    # refused here and tagged there).
    sentences = [*SENTENCES, ["Flights", "to", "New York", "left", "at", "5\u00a0pm", "."]]
    response = client.post("/v1/entities", json={"tokens": sentences})
    assert response.status_code == 200
    docs = response.json()
    assert len(docs) == len(sentences)
    # The token API (tag_batch, entities: offsets into the space-joined tokens) is the reference.
    tags = tagger.tag_batch(sentences)
    for doc, tokens, sentence_tags in zip(docs, sentences, tags):
        assert doc["text"] == " ".join(tokens)
        assert [t["text"] for t in doc["tokens"]] == tokens
        assert [t["tag"] for t in doc["tokens"]] == sentence_tags
        assert all(doc["text"][t["start"] : t["end"]] == t["text"] for t in doc["tokens"])
        want = [(e.label, e.start, e.end, e.text, e.token_start, e.token_end) for e in tagger.entities(tokens)]
        got = [(e["label"], e["start"], e["end"], e["text"], e["token_start"], e["token_end"]) for e in doc["entities"]]
        assert got == want


def test_concurrent_clients_get_the_sequential_answers_and_share_batches(client: httpx.Client, tagger: Tagger) -> None:
    bodies = [{"text": t} for t in TEXTS] + [{"texts": TEXTS[:3]}, {"tokens": SENTENCES}] + [{"text": f"Visit {c} in May."} for c in "ABCDEFGH"]
    sequential = [client.post("/v1/entities", json=b).json() for b in bodies]
    # A long wait makes the coalescing certain: requests sent together must share a batch.
    app = create_app(tagger, Settings(max_wait_ms=200, max_batch_tokens=100_000))
    with running(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        batches_before = client.get("/metrics").text

        def post(body: dict) -> object:
            with httpx.Client(base_url=base, timeout=60) as own:
                response = own.post("/v1/entities", json=body)
                assert response.status_code == 200
                return response.json()

        with ThreadPoolExecutor(len(bodies)) as pool:
            concurrent = list(pool.map(post, bodies))
        batches_after = client.get("/metrics").text
    assert concurrent == sequential
    requests = len(bodies)
    batches = metric(batches_after, "ner_fast_batch_requests_count") - metric(batches_before, "ner_fast_batch_requests_count")
    coalesced = metric(batches_after, "ner_fast_batch_requests_sum") - metric(batches_before, "ner_fast_batch_requests_sum")
    assert coalesced == requests
    assert 1 <= batches < requests


def test_batching_off_gives_the_same_answers_one_request_a_batch(tagger: Tagger) -> None:
    app = create_app(tagger, Settings(max_batch_tokens=0))
    with running(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        docs = client.post("/v1/entities", json={"texts": TEXTS}).json()
        for text in TEXTS[:2]:
            client.post("/v1/entities", json={"text": text})
        text = client.get("/metrics").text
    assert docs == expected_docs(tagger, TEXTS)
    assert metric(text, "ner_fast_batch_requests_count") == 3 == metric(text, "ner_fast_batch_requests_sum")


def test_the_event_loop_answers_while_a_request_waits_for_its_batch(tagger: Tagger) -> None:
    # The first request waits up to 1.5 s for company; /healthz must not wait behind it.
    app = create_app(tagger, Settings(max_wait_ms=1500, max_batch_tokens=100_000))
    with running(app) as base, httpx.Client(base_url=base, timeout=60) as client, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(lambda: httpx.post(f"{base}/v1/entities", json={"text": TEXT}, timeout=60))
        deadline = time.monotonic() + 10
        while metric(client.get("/metrics").text, "ner_fast_requests_in_progress") < 2:  # it and /metrics
            assert time.monotonic() < deadline, "the entity request never arrived"
        assert client.get("/healthz").status_code == 200
        assert not pending.done()
        assert pending.result().json() == expected_docs(tagger, [TEXT])[0]


def test_odd_texts_are_answered_not_failed(client: httpx.Client, tagger: Tagger) -> None:
    odd = ["x" * 300, "\x00\x01\x7f", "🙂" * 40, "\u200b\ufeff", "....!!!???", "\n\n\n", "A. " * 90,
           "word " * 59 + "end", "\t\r\n café\u0301 naïve", "<script>alert(1)</script> & \"quotes\""]
    for part in (odd[:5], odd[5:]):  # the test server takes 8 texts a request
        response = client.post("/v1/entities", json={"texts": part})
        assert response.status_code == 200, response.text
        assert response.json() == expected_docs(tagger, part)


def test_a_fault_of_the_server_is_one_json_line_and_the_server_goes_on(tagger: Tagger, monkeypatch: pytest.MonkeyPatch) -> None:
    import ner_fast.serve.app as app_module

    real = app_module.annotate

    def failing(tagger: Tagger, jobs: list) -> list[bytes]:
        if any(job.texts == ["boom"] for job in jobs):
            raise RuntimeError("injected fault")
        return real(tagger, jobs)

    monkeypatch.setattr(app_module, "annotate", failing)
    app = create_app(tagger, Settings(max_batch_tokens=0))
    with running(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        failed = client.post("/v1/entities", json={"text": "boom"})
        assert failed.status_code == 500
        assert failed.json() == {"error": "internal error; the server log has the details"}
        assert "injected" not in failed.text and "Traceback" not in failed.text
        after = client.post("/v1/entities", json={"text": TEXT})
        assert after.status_code == 200 and after.json() == expected_docs(tagger, [TEXT])[0]


def test_the_bundled_model_is_served_with_its_provenance() -> None:
    bundled = Tagger.load(device="cpu", threads=1)  # what `ner-fast serve` without a package serves
    provenance = bundled.package.model["provenance"]
    with running(create_app(bundled)) as base, httpx.Client(base_url=base, timeout=60) as client:
        info = client.get("/v1/model").json()
        doc = client.post("/v1/entities", json={"text": "Angela Merkel visited Paris on Monday."}).json()
    assert info["provenance"] == provenance
    assert info["package"]["name"] == "default"
    assert info["validation_f1"] == provenance["validation"]["f1"] > 0.8
    found = {(e["label"], e["text"]) for e in doc["entities"]}
    assert {("per", "Angela Merkel"), ("geo", "Paris")} <= found
    assert all(t["pos"] for t in doc["tokens"]) == (bundled.pos_tags is not None)
