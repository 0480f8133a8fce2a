"""Raw text that cannot be read is refused at the door and loses nothing (issue 18, item 4): `pipe` hands
out every document before a failing input, then raises; a lone surrogate (no character, no UTF-8 for
it) is a ValueError naming its position, before any tagging, in the API, and a line of a JSON lines
input read by a cluster run names its file and line. With the bundled package."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ner_fast import Tagger
from ner_fast.corpus import CorpusError
from ner_fast.partition import plan_partitions, read_partition

TEXTS = [f"Angela Merkel visited Paris on day {i}. She met Emmanuel Macron." for i in range(7)]


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger.load(device="cpu", threads=1)


def _failing_after(n: int) -> Iterator[str]:
    yield from TEXTS[:n]
    raise OSError("the input went away")


@pytest.mark.parametrize("batch_size", [1, 3, 2048])
def test_pipe_yields_every_document_before_a_failing_input_then_raises(tagger: Tagger, batch_size: int) -> None:
    docs = []
    with pytest.raises(OSError, match="the input went away"):
        for doc in tagger.pipe(_failing_after(5), batch_size=batch_size):
            docs.append(doc)
    assert [d.text for d in docs] == TEXTS[:5]
    # The documents are whole: the same as those of a pipe that did not fail.
    assert [d.to_json() for d in docs] == [d.to_json() for d in tagger.pipe(TEXTS[:5], batch_size=batch_size)]


def test_pipe_yields_the_documents_before_one_that_is_not_text(tagger: Tagger) -> None:
    docs = []
    with pytest.raises(TypeError, match=r"texts must be strings, got int \(text 3\)"):
        for doc in tagger.pipe([*TEXTS[:3], 17, TEXTS[4]], batch_size=2):
            docs.append(doc)
    assert [d.text for d in docs] == TEXTS[:3]


def test_a_lone_surrogate_is_refused_with_its_position(tagger: Tagger) -> None:
    with pytest.raises(ValueError, match=r"^character 6 is a lone surrogate \(U\+D800\)"):
        tagger("Paris \ud800 London")
    with pytest.raises(ValueError, match=r"^character 0 is a lone surrogate \(U\+DC80\)"):
        tagger("\udc80")
    docs = []
    with pytest.raises(ValueError, match=r"^text 2: character 10 is a lone surrogate \(U\+DFFF\)"):
        for doc in tagger.pipe([TEXTS[0], TEXTS[1], "Paris and \udfff", TEXTS[3]]):
            docs.append(doc)
    assert [d.text for d in docs] == TEXTS[:2]
    # A surrogate pair written as two escapes is one character (JSON decodes it whole): tagged.
    emoji = json.loads('"Paris \\ud83d\\ude00 London"')
    assert [t.text for t in tagger(emoji).tokens] == ["Paris", "\U0001f600", "London"]
    assert json.loads(tagger(emoji).to_json())["text"] == emoji


def test_a_json_line_holding_a_lone_surrogate_names_its_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in [*TEXTS[:4], "Paris \ud800", TEXTS[5]]),
                    encoding="utf-8")
    assert "\\ud800" in path.read_text(encoding="utf-8")  # a valid JSON escape
    plan = plan_partitions([path], "jsonl", size=2)
    assert read_partition(plan[0]) == TEXTS[:2]
    with pytest.raises(CorpusError, match=rf"^{path}:5: 'text': character 6 is a lone surrogate \(U\+D800\)"):
        read_partition(plan[2])


def test_text_with_invisible_format_characters_is_tagged_as_the_text_without_them(tagger: Tagger) -> None:
    # Zero-width spaces, bidi marks and joiners (Unicode category Cf) in raw text: no token is made of them
    # alone (the tagger would refuse it, `text.blank_token`); the words around them get the tags they get
    # without them, at offsets into the text as given.
    plain = "Angela Merkel visited Paris on Monday ."
    marked = "Angela Merkel\u200e visited \u200bParis \u2060 on\u200d Monday \u202a."
    doc, ref = tagger(marked), tagger(plain)
    assert [t.tag for t in doc.tokens] == [t.tag for t in ref.tokens] and len(doc.tokens) == len(plain.split())
    assert all(marked[t.start:t.end] == t.text for t in doc.tokens)
    assert [e.label for e in doc.entities] == [e.label for e in ref.entities] and doc.entities
