"""The README's example files (`examples/`): the CoNLL ones are the bundled corpus's sentences, as
examples/README.md says, and the raw-text ones tag as the README's commands say."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ner_fast.cli import cli
from ner_fast.corpus import read_corpus

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def bundled():
    return read_corpus(None)


@pytest.mark.parametrize(("name", "first", "count"), [("my-train.conll", 0, 400), ("my-dev.conll", 400, 100),
                                                       ("my-test.conll", -100, 100)])
def test_the_conll_examples_are_the_bundled_corpus_sentences(bundled, name: str, first: int, count: int) -> None:
    example = read_corpus(EXAMPLES / name)
    assert example.format == "conll" and len(example) == count
    start = first % len(bundled)
    for i in range(count):
        got, want = example.sentence(i), bundled.sentence(start + i)
        assert (got.words, got.pos, got.tags) == (want.words, want.pos, want.tags), (name, i)


def test_the_raw_text_examples_tag_one_document_a_line_or_one_in_all() -> None:
    lines = (EXAMPLES / "notes.txt").read_text(encoding="utf-8").splitlines()
    result = CliRunner().invoke(cli, ["tag", str(EXAMPLES / "notes.txt"), "--input-format", "text"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == len(lines) == 4 and "" in lines  # the blank line is a document
    result = CliRunner().invoke(cli, ["tag", str(EXAMPLES / "report.txt"), "--input-format", "text", "--document"])
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 1 and '"label":"per"' in result.stdout
