"""Vocabularies (reserved ids, unknowns, JSON) and per-token features against references."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner_fast.corpus import Corpus
from ner_fast.features import (
    CASING_CLASSES,
    ROW_CASING,
    ROW_CHARS,
    ROW_POS,
    ROW_WORD,
    featurize,
    n_features,
    tag_ids,
    tag_names,
)
from ner_fast.vocab import PAD, UNK, Vocab, Vocabularies
from test_kernels import TOKEN, reference_casing
from ner_fast.text import blank_token

TRAIN = Corpus.from_sentences(
    [["The", "cat", "sat", "."], ["the", "<pad>", "cat", "2024"]],
    pos=[["DT", "NN", "VBD", "."], ["DT", "NN", "NN", "CD"]],
    tags=[["O", "B-ANI", "O", "O"], ["O", "O", "B-ANI", "B-TIM"]],
)


def test_reserved_ids_and_frequency_order() -> None:
    vocabs = Vocabularies.build(TRAIN)
    assert vocabs.words.itos[:2] == ["<pad>", "<unk>"]
    assert vocabs.words.itos[2] == "cat"  # most frequent first, ties by string
    assert vocabs.words.itos[3:] == sorted(vocabs.words.itos[3:])
    # A real token spelled like a reserved one gets an id of its own, never padding.
    assert vocabs.words.lookup("<pad>") >= 2
    assert vocabs.words.lookup("unseen") == UNK
    assert vocabs.chars.itos[:2] == ["<pad>", "<unk>"] and "0" in vocabs.chars.itos[2:]
    assert vocabs.chars.lookup("0") not in (PAD, UNK)
    assert vocabs.pos is not None and vocabs.pos.lookup("XX") == UNK
    # Tags: no reserved ids, "O" first, then by type with B- before I-.
    assert vocabs.tags.itos == ["O", "B-ANI", "B-TIM"]
    with pytest.raises(KeyError):
        vocabs.tags.lookup("B-PER")


def test_lowercase_min_freq_and_extra_tags() -> None:
    vocabs = Vocabularies.build(TRAIN, lowercase=True, min_word_freq=2, extra_tags=["I-ANI"])
    assert vocabs.words.itos == ["<pad>", "<unk>", "cat", "the"]
    assert "T" in vocabs.chars.stoi  # characters are never lower-cased
    assert vocabs.tags.itos == ["O", "B-ANI", "I-ANI", "B-TIM"]
    features = featurize(["THE", "Cat", "sat"], None, vocabs, 4)
    assert features.matrix[:, ROW_WORD].tolist() == [vocabs.words.lookup("the"), vocabs.words.lookup("cat"), UNK]


def test_lookup_many_matches_lookup_and_rejects_unknown_tags() -> None:
    vocabs = Vocabularies.build(TRAIN)
    words = TRAIN.words + ["dog", "", "The"]
    assert vocabs.words.lookup_many(words).tolist() == [vocabs.words.lookup(w) for w in words]
    assert tag_names(tag_ids(TRAIN.tags, vocabs), vocabs) == TRAIN.tags
    with pytest.raises(KeyError, match="B-PER"):
        tag_ids(["O", "B-PER"], vocabs)


def test_json_round_trip_and_atomic_save(tmp_path: Path) -> None:
    vocabs = Vocabularies.build(TRAIN, lowercase=True)
    path = tmp_path / "vocab.json"
    vocabs.save(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert set(doc) == {"words", "chars", "pos", "tags", "lowercase"} and doc["lowercase"] is True
    assert Vocabularies.load(path) == vocabs
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temporary file left
    no_pos = Vocabularies.build(Corpus.from_sentences([["a"]], tags=[["O"]]))
    assert Vocabularies.from_json(no_pos.to_json()).pos is None


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"words": ["<pad>", "<unk>"], "chars": ["<pad>", "<unk>"], "pos": None, "tags": ["O"]},
        {"words": ["a"], "chars": ["<pad>", "<unk>"], "pos": None, "tags": ["O"], "lowercase": False},
        {"words": ["<pad>", "<unk>", "a", "a"], "chars": ["<pad>", "<unk>"], "pos": None, "tags": ["O"], "lowercase": False},
        {"words": ["<pad>", "<unk>"], "chars": ["<pad>", "<unk>"], "pos": None, "tags": [1], "lowercase": False},
        {"words": ["<pad>", "<unk>"], "chars": ["<pad>", "<unk>"], "pos": None, "tags": ["O"], "lowercase": "no"},
    ],
)
def test_invalid_vocab_json_is_refused(doc: object) -> None:
    with pytest.raises(ValueError):
        Vocabularies.from_json(doc)


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "vocab.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=str(path)):
        Vocabularies.load(path)


def test_a_missing_vocab_file_is_named_once(tmp_path: Path) -> None:
    # It read "PATH: [Errno 2] No such file or directory: 'PATH'" (an OSError's text after the path).
    path = tmp_path / "vocab.json"
    with pytest.raises(ValueError) as err:
        Vocabularies.load(path)
    assert str(err.value) == f"{path}: no such file (expected a vocabulary file)"


@settings(max_examples=100, deadline=None)
@given(
    # Training words a corpus can hold (`Corpus.from_sentences` refuses blank ones, as the readers do).
    st.lists(TOKEN.filter(lambda w: blank_token([w]) is None), min_size=1, max_size=30),
    st.lists(TOKEN.filter(bool), max_size=30),
    st.integers(1, 8),
    st.booleans(),
)
def test_featurize_matches_reference(train_words, words, max_chars, with_pos) -> None:
    pos_of = lambda ws: [f"P{len(w) % 3}" for w in ws]  # noqa: E731 - a deterministic fake tagger
    train = Corpus.from_sentences([train_words], pos=[pos_of(train_words)] if with_pos else None, tags=[["O"] * len(train_words)])
    vocabs = Vocabularies.build(train)
    words = words + train_words[:3]
    features = featurize(words, pos_of(words) if with_pos else None, vocabs, max_chars)
    m = features.matrix
    assert m.shape == (len(words), n_features(max_chars)) and m.dtype == np.int32
    words_stoi, chars_stoi = vocabs.words.stoi, vocabs.chars.stoi
    assert m[:, ROW_WORD].tolist() == [words_stoi.get(w, UNK) for w in words]
    assert [CASING_CLASSES[c] for c in m[:, ROW_CASING]] == [reference_casing(w) for w in words]
    if with_pos:
        assert vocabs.pos is not None
        assert m[:, ROW_POS].tolist() == [vocabs.pos.stoi.get(p, UNK) for p in pos_of(words)]
    else:
        assert not m[:, ROW_POS].any()
    expected_chars = [[chars_stoi.get(c, UNK) for c in w[:max_chars]] + [PAD] * max(0, max_chars - len(w)) for w in words]
    assert m[:, ROW_CHARS:].tolist() == expected_chars
    assert (m[:, ROW_WORD] > 0).all() and (m >= 0).all()


def test_featurize_rejects_bad_arguments() -> None:
    vocabs = Vocabularies.build(TRAIN)
    with pytest.raises(ValueError, match="max_token_chars"):
        featurize(["a"], None, vocabs, 0)
    with pytest.raises(ValueError, match="1 POS tags for 2 words"):
        featurize(["a", "b"], ["DT"], vocabs, 5)
    assert len(featurize([], None, vocabs, 5)) == 0


def test_vocab_requires_reserved_prefix() -> None:
    with pytest.raises(ValueError, match="reserved"):
        Vocab(["a", "b"])
    assert len(Vocab(["B-X", "O"], reserved=False)) == 2
