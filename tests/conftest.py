"""Shared fixtures: the bundled corpus (read once per session) and small corpus files."""
from __future__ import annotations

from pathlib import Path

import pytest

from ner_fast.corpus import Corpus, read_corpus

# A GMB-style CSV with the shipped file's quirks: CRLF, quoted fields, the sentence number only on
# a sentence's first row, the word "None", a token with a non-breaking space, a cp1252 quote.
GMB_SAMPLE = (
    "Sentence #,Word,POS,Tag\r\n"
    "Sentence: 1,Thousands,NNS,O\r\n"
    ",of,IN,O\r\n"
    ",London,NNP,B-geo\r\n"
    ',"10,000",CD,O\r\n'
    ',"""",``,O\r\n'
    ",None,NN,O\r\n"
    "Sentence: 2,5\xa0storm,NN,O\r\n"
    ",It\u2019s,PRP,O\r\n"
    ",NA,NNP,B-org\r\n"
    ",null,NN,O\r\n"
).encode("cp1252")

CONLL_SAMPLE = """-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
"""


@pytest.fixture(scope="session")
def bundled() -> Corpus:
    """The full bundled GMB corpus."""
    return read_corpus()


@pytest.fixture
def gmb_file(tmp_path: Path) -> Path:
    path = tmp_path / "sample.csv"
    path.write_bytes(GMB_SAMPLE)
    return path


@pytest.fixture
def conll_file(tmp_path: Path) -> Path:
    path = tmp_path / "sample.conll"
    path.write_text(CONLL_SAMPLE, encoding="utf-8")
    return path


def write_conll(path: Path, sentences: list[list[tuple[str, ...]]]) -> Path:
    """Write sentences of column tuples as a CoNLL file (tab separated, blank line between)."""
    text = "\n\n".join("\n".join("\t".join(cols) for cols in sent) for sent in sentences)
    path.write_text(text + "\n", encoding="utf-8")
    return path
