"""A server whose tagger has a label map: /v1/model and /v1/entities speak the mapped labels."""
from __future__ import annotations

from pathlib import Path

import httpx

from ner_fast.serve.app import create_app
from ner_fast.serve.settings import Settings
from ner_fast.tagger import Tagger
from serve.serving import LIMITS, running

TEXT = "Angela Merkel visited Paris on Monday. The UN met in New York. Prices rose 3.5 % in 2009."


def test_a_label_map_renames_the_answers_and_the_model_description(package: Path, tagger: Tagger) -> None:
    own = [e.label for e in tagger(TEXT).entities]
    assert "tim" in own and {"geo", "org"} & set(own), "the test model should find time expressions and places here"
    conll = Tagger.load(package, device="cpu", threads=1, labels="conll")
    with running(create_app(conll, Settings(max_wait_ms=5, limits=LIMITS))) as url, httpx.Client(base_url=url, timeout=30) as client:
        info = client.get("/v1/model").json()
        assert info["label_map"] == "conll"
        assert info["labels"] == sorted({"per": "PER", "geo": "LOC", "org": "ORG"}[t] for t in ("per", "geo", "org")
                                        if any(tag.endswith("-" + t) for tag in tagger.tags))
        assert info["descriptions"]["LOC"] == "location" and info["descriptions"]["ORG"] == "organization"
        answer = client.post("/v1/entities", json={"text": TEXT}).json()
    expected = [({"geo": "LOC", "org": "ORG", "per": "PER"}[e.label], e.start, e.end)
                for e in tagger(TEXT).entities if e.label != "tim"]
    assert [(e["label"], e["start"], e["end"]) for e in answer["entities"]] == expected and expected
