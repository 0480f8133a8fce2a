"""Metrics: entity-level scores against seqeval, token-level against a plain-Python reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities

from ner_fast.metrics import Accumulator, TagScheme, entity_spans, format_table, score

# pytest.approx's default tolerance (relative 1e-6) throughout: every score here is a float64 ratio of
# counts (or a mean of float64 logs) computed two ways, a few roundings apart (~1e-16 relative); any
# counting error moves a ratio by at least 1 / (its denominator) > 1e-6.

IOB_TAGS = ["O", "B-geo", "I-geo", "B-per", "I-per", "B-org", "I-org"]
IOBES_TAGS = IOB_TAGS + ["E-geo", "S-geo", "E-per", "S-per"]


def _flat(sentences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    flat = np.array([t for s in sentences for t in s], dtype=np.int64)
    return flat, np.array([len(s) for s in sentences], dtype=np.int64)


def _names(sentences: list[list[int]], tags: list[str]) -> list[list[str]]:
    return [[tags[t] for t in s] for s in sentences]


def _corpus(tags: list[str]) -> st.SearchStrategy[tuple[list[list[int]], list[list[int]]]]:
    """Pairs of gold/predicted tag-id sentences with equal lengths; empty sentences included."""
    tag = st.integers(0, len(tags) - 1)
    lengths = st.lists(st.integers(0, 12), min_size=1, max_size=8)
    return lengths.flatmap(
        lambda ls: st.tuples(
            st.tuples(*[st.lists(tag, min_size=n, max_size=n) for n in ls]),
            st.tuples(*[st.lists(tag, min_size=n, max_size=n) for n in ls]),
        )
    ).map(lambda gp: ([list(s) for s in gp[0]], [list(s) for s in gp[1]]))


@settings(max_examples=300, deadline=None)
@given(_corpus(IOBES_TAGS))
def test_entity_spans_match_seqeval(pair: tuple[list[list[int]], list[list[int]]]) -> None:
    gold, _ = pair
    scheme = TagScheme(IOBES_TAGS)
    flat, lengths = _flat(gold)
    starts, ends, kinds = entity_spans(flat, lengths, scheme)
    ours = sorted((scheme.types[k], int(s), int(e)) for s, e, k in zip(starts, ends, kinds))
    # seqeval joins sentences with an "O" between them: map its offsets back to flat positions.
    joined: list[str] = []
    position: list[int] = []
    offset = 0
    for sentence in _names(gold, IOBES_TAGS):
        joined += sentence + ["O"]
        position += list(range(offset, offset + len(sentence))) + [-1]
        offset += len(sentence)
    theirs = sorted((t, position[s], position[e]) for t, s, e in get_entities(joined))
    assert ours == theirs


@settings(max_examples=200, deadline=None)
@given(_corpus(IOB_TAGS))
def test_entity_scores_match_seqeval(pair: tuple[list[list[int]], list[list[int]]]) -> None:
    gold, pred = pair
    g_flat, lengths = _flat(gold)
    p_flat, _ = _flat(pred)
    s = score(g_flat, p_flat, lengths, TagScheme(IOB_TAGS))
    y_true, y_pred = _names(gold, IOB_TAGS), _names(pred, IOB_TAGS)
    if not any(t != "O" for sent in y_true + y_pred for t in sent):
        assert s.precision == s.recall == s.f1 == 0.0
        return
    assert s.precision == pytest.approx(precision_score(y_true, y_pred, zero_division=0))
    assert s.recall == pytest.approx(recall_score(y_true, y_pred, zero_division=0))
    assert s.f1 == pytest.approx(f1_score(y_true, y_pred, zero_division=0))
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    for name, row in s.per_type.items():
        if name in report:
            assert row["f1"] == pytest.approx(report[name]["f1-score"])
            assert row["support"] == report[name]["support"]
        else:
            assert row["support"] == 0 and row["predicted"] == 0


def test_iob_edge_cases() -> None:
    tags = IOB_TAGS
    scheme = TagScheme(tags)
    t = {name: i for i, name in enumerate(tags)}
    # I- without B- opens an entity; a type change inside a run splits it; sentences never merge.
    sentences = [
        ["I-geo", "I-geo", "O"],
        ["B-per", "I-geo"],
        ["I-per"],
        ["I-per", "B-per", "I-per"],
    ]
    flat, lengths = _flat([[t[x] for x in s] for s in sentences])
    starts, ends, kinds = entity_spans(flat, lengths, scheme)
    got = [(scheme.types[k], int(s), int(e)) for s, e, k in zip(starts, ends, kinds)]
    assert got == [("geo", 0, 1), ("per", 3, 3), ("geo", 4, 4), ("per", 5, 5), ("per", 6, 6), ("per", 7, 8)]
    # Predicting only the right boundary's half of an entity finds nothing.
    gold = np.array([t["B-geo"], t["I-geo"], t["O"]])
    pred = np.array([t["O"], t["I-geo"], t["O"]])
    s = score(gold, pred, np.array([3]), scheme)
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)
    assert s.accuracy == pytest.approx(2 / 3)


@settings(max_examples=100, deadline=None)
@given(_corpus(IOB_TAGS))
def test_token_metrics_match_reference(pair: tuple[list[list[int]], list[list[int]]]) -> None:
    gold, pred = pair
    g, lengths = _flat(gold)
    p, _ = _flat(pred)
    s = score(g, p, lengths, TagScheme(IOB_TAGS))
    # The tutorial's definition, in plain Python.
    predicted = [(a, b) for a, b in zip(g.tolist(), p.tolist()) if b != 0]
    right = sum(a == b for a, b in predicted)
    n_gold = sum(a != 0 for a in g.tolist())
    prec = right / len(predicted) if predicted else 0.0
    rec = right / n_gold if n_gold else 0.0
    assert s.token_precision == pytest.approx(prec)
    assert s.token_recall == pytest.approx(rec)
    assert s.token_f1 == pytest.approx(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    assert s.tokens == len(g)
    if len(g):
        assert s.accuracy == pytest.approx(float(np.mean(g == p)))


def test_accumulator_ignores_padding() -> None:
    scheme = TagScheme(IOB_TAGS)
    labels = np.array([[1, 2, 0, -1], [3, -1, -1, -1]])
    proba = np.full((2, 4, len(IOB_TAGS)), 0.01)
    # Right everywhere except the second sentence's token; padding positions predict B-geo.
    for b, row in enumerate([[1, 2, 0, 1], [5, 1, 1, 1]]):
        for i, tag in enumerate(row):
            proba[b, i, tag] = 0.9
    acc = Accumulator(scheme)
    acc.add(labels, proba)
    s = acc.result()
    assert s.tokens == 4 and s.sentences == 2
    assert s.accuracy == pytest.approx(3 / 4)
    assert s.loss == pytest.approx(-(3 * np.log(0.9) + np.log(0.01)) / 4)
    assert s.recall == pytest.approx(1 / 2) and s.precision == pytest.approx(1 / 2)
    assert "entity F1" in format_table({"valid": s})


def test_bad_tag_is_rejected() -> None:
    with pytest.raises(ValueError, match="X-geo"):
        TagScheme(["O", "X-geo"])


def test_table_shows_no_f1_for_a_type_without_entities() -> None:
    # geo has one gold entity, found; per has none in the data: its F1 is undefined, not 0.0.
    scheme = TagScheme(IOB_TAGS)
    gold = np.array([IOB_TAGS.index("B-geo"), scheme.o_index])
    s = score(gold, gold.copy(), np.array([2]), scheme)
    assert s.per_type["per"]["support"] == 0
    rows = {line.split()[1]: line.split()[2:] for line in format_table({"valid": s}).splitlines() if line.startswith("  F1 ")}
    assert rows["geo"] == ["1.0000", "(1)"]
    assert rows["per"] == ["-", "(0)"]


def test_pos_counts_score_only_tokens_with_a_gold_tag_and_none_without_any() -> None:
    from ner_fast.metrics import PosCounts

    counts = PosCounts()
    assert counts.accuracy is None  # not 0.0: nothing was scored (a corpus without POS tags)
    gold = np.array([[3, 4, 0, 0], [5, 0, 0, 0]])
    counts.add(np.array([[3, 2, 0, 9], [5, 7, 0, 0]]), gold, gold > 0, gold > 1)
    assert (counts.right, counts.total) == (2, 3) and counts.accuracy == 2 / 3
    # Gold tags the model does not know count as wrong (also where it predicts UNK), unless it knows under half
    # of them: another tag set (UPOS, chunk tags) is no score of the head (it read 0.0).
    unknown = np.array([[1, 1, 0, 0]])
    counts.add(np.array([[1, 2, 0, 0]]), unknown, unknown > 0, unknown > 1)
    assert (counts.right, counts.total) == (2, 5) and counts.accuracy == 2 / 5
    other = PosCounts()
    other.add(np.array([[3, 2, 0, 0]]), unknown, unknown > 0, unknown > 1)
    assert other.total == 2 and other.accuracy is None
    other.add(np.array([[3, 4, 5]]), np.array([[3, 9, 9]]), np.ones((1, 3), bool), np.array([[True, False, False]]))
    assert (other.right, other.total, other.known) == (1, 5, 1) and other.accuracy is None  # one shared tag of five


def test_the_loss_does_not_depend_on_how_the_tokens_were_batched() -> None:
    """`evaluate RUN --batch-size 1/7/50/500` printed four losses apart in their last digits: float32 sums of
    each batch added in float64. Each token's term is kept and summed exactly (`math.fsum`) at the end."""
    from ner_fast.metrics import Accumulator

    rng = np.random.default_rng(3)
    scheme = TagScheme(["O", "B-per", "I-per"])
    proba = rng.dirichlet(np.ones(3), size=(40, 9)).astype(np.float32)
    labels = rng.integers(0, 3, size=(40, 9))
    labels[:, 6:] = -1  # padding after six real tokens
    losses = []
    for size in (1, 7, 40):
        acc = Accumulator(scheme)
        for start in range(0, 40, size):
            acc.add(labels[start:start + size], proba[start:start + size])
        losses.append(acc.result().loss)
    picked = proba[:, :6][np.arange(40)[:, None], np.arange(6)[None, :], labels[:, :6]].astype(np.float64)
    assert losses[0] == losses[1] == losses[2] == pytest.approx(-np.log(picked).mean(), rel=1e-12)
