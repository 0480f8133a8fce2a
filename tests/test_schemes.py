"""The one chunker (`ner_fast.schemes`) against seqeval, for string tags in IOB1, IOB2 and IOBES, and what
uses it: the tagger's entities and the IOB1 -> IOB2 rewrite of the readers."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities

from ner_fast import Entity
from ner_fast.schemes import TagScheme, chunks, first_invalid, iob1_to_iob2
from ner_fast.doc import spans
from helpers import float_tol

TAGS = ["O", "B-geo", "I-geo", "E-geo", "S-geo", "B-per", "I-per", "E-per", "S-per"]
SENTENCE = st.lists(st.sampled_from(TAGS), max_size=14)


@settings(max_examples=300)
@given(SENTENCE)
def test_chunks_match_seqeval(tags: list[str]) -> None:
    expected = [(kind, start, end + 1) for kind, start, end in get_entities(tags)]
    assert sorted(chunks(tags)) == sorted(expected)
    assert sorted(chunks(tags, TagScheme(TAGS))) == sorted(expected)


@settings(max_examples=200)
@given(SENTENCE)
def test_tagger_spans_match_seqeval(tags: list[str]) -> None:
    tokens = [f"t{i}" for i in range(len(tags))]
    scores = np.linspace(0.5, 1.0, len(tags))
    found = spans(tokens, tags, scores)
    assert sorted((e.label, e.token_start, e.token_end) for e in found) == sorted((k, s, e + 1) for k, s, e in get_entities(tags))
    for e in found:
        assert e.text == " ".join(tokens[e.token_start : e.token_end])
        # float64 means of the same numbers: one rounding per term.
        assert e.score == pytest.approx(float(np.mean(scores[e.token_start : e.token_end])), rel=float_tol(e.token_end - e.token_start + 1, 1.0, np.float64))


def test_iobes_singletons_are_separate_entities() -> None:
    # Was one entity "a b": the tagger read only B/I prefixes.
    assert spans(["a", "b", "c"], ["S-per", "S-per", "O"], [1.0, 0.5, 1.0]) == [
        Entity("per", 0, 1, "a", 1.0, 0, 1),
        Entity("per", 2, 3, "b", 0.5, 1, 2),
    ]
    assert [(e.token_start, e.token_end) for e in spans(list("abcd"), ["B-geo", "E-geo", "B-geo", "E-geo"], np.ones(4))] == [(0, 2), (2, 4)]


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["O", "B-geo", "I-geo", "B-per", "I-per"]), max_size=14))
def test_iob1_to_iob2_keeps_the_entities_and_opens_each_with_b(tags: list[str]) -> None:
    rewritten = iob1_to_iob2(tags)
    assert sorted(get_entities(rewritten)) == sorted(get_entities(tags))
    starts = {s for _, s, _ in get_entities(rewritten)}
    for i, tag in enumerate(rewritten):
        assert tag.startswith("B-") == (i in starts)  # plain rule of IOB2: B- exactly where an entity opens


@settings(max_examples=100)
@given(st.lists(st.lists(st.sampled_from(["O", "B-geo", "I-geo", "I-per"]), max_size=6), max_size=6))
def test_iob1_to_iob2_of_many_sentences_equals_one_at_a_time(sentences: list[list[str]]) -> None:
    flat = [t for s in sentences for t in s]
    assert iob1_to_iob2(flat, [len(s) for s in sentences]) == [t for s in sentences for t in iob1_to_iob2(s)]


def _iobes_break(tags: list[str]) -> tuple[int, str] | None:
    """IOBES validity spelt out (the oracle of `first_invalid`): B-X and I-X go on with I-X or E-X of
    X, I-X and E-X come only after B-X or I-X of X; None for a valid sentence."""
    for i, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        before = tags[i - 1].partition("-") if i else ("O", "", "")
        if i and before[0] in ("B", "I") and not (prefix in ("I", "E") and kind == before[2]):
            return i, "follow"
        if prefix in ("I", "E"):
            if not i:
                return i, "first"
            if not (before[0] in ("B", "I") and before[2] == kind):
                return i, "follow"
        if i == len(tags) - 1 and prefix in ("B", "I"):
            return i, "last"
    return None


@settings(max_examples=300)
@given(st.lists(SENTENCE, max_size=4))
def test_first_invalid_finds_the_first_break_of_iobes(sentences: list[list[str]]) -> None:
    # A corpus whose tags include E- or S- is IOBES everywhere: the "bio" decoder forbids B-X O, so
    # the first token where a sentence stops being IOBES is what `prepare` reports.
    tags = sorted(set(TAGS))
    ids = np.array([tags.index(t) for s in sentences for t in s], dtype=np.int64)
    expected, base = None, 0
    for sentence in sentences:
        found = _iobes_break(sentence)
        if found is not None:
            expected = (base + found[0], found[1])
            break
        base += len(sentence)
    assert first_invalid(ids, np.array([len(s) for s in sentences], dtype=np.int64), tags) == expected


def test_first_invalid_of_iob2_tags_is_none() -> None:
    # Without E- or S- tags (IOB2, after the readers' IOB1 rewrite) every sequence is valid.
    tags = ["O", "B-per", "I-per"]
    assert first_invalid(np.array([1, 0, 1, 2, 1]), np.array([2, 3]), tags) is None
    assert first_invalid(np.array([2, 0], dtype=np.int64), np.array([2]), tags) == (0, "first")


def test_a_refused_tag_says_how_to_write_it_where_the_mistake_is_common() -> None:
    from ner_fast.schemes import not_a_tag

    assert not_a_tag("ORG").endswith("; a label without a prefix needs one: B-ORG on an entity's first token, I-ORG on the rest")
    assert not_a_tag("L-PER").endswith("; BILOU's L- and U- are IOBES's E- and S-")
    assert not_a_tag("U-PER").endswith("IOBES's E- and S-")
    assert not_a_tag("o").endswith("; the outside tag is a capital O")
    assert not_a_tag("b-per").endswith("; prefixes are capital letters: B-per")
    assert not_a_tag("NNP").endswith("; it reads as a part-of-speech tag: the entity tag is each line's last column")
    for plain in ("B-", "X-PER", "B_PER", "12"):  # no hint that would mislead
        assert not_a_tag(plain).endswith(")"), plain


def test_iob2_of_reads_iobes_prefixes_as_the_iob2_ones_they_refine() -> None:
    from ner_fast.schemes import iob2_of

    assert [iob2_of(t) for t in ("S-geo", "E-geo", "B-geo", "I-geo", "O", "S-a-b")] == ["B-geo", "I-geo", "B-geo", "I-geo", "O", "B-a-b"]
