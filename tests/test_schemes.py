"""The one chunker (`ner_fast.schemes`) against seqeval, for string tags in IOB1, IOB2 and IOBES, and what
uses it: the tagger's entities and the IOB1 -> IOB2 rewrite of the readers."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities

from ner_fast import Entity
from ner_fast.schemes import TagScheme, chunks, iob1_to_iob2
from ner_fast.tagger import spans
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
