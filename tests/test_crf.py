"""The CRF output layer: NumPy likelihood and Viterbi against brute force over every tag sequence,
the MXNet loss graph against the NumPy likelihood (value and gradient), and a CRF training run."""
from __future__ import annotations

import itertools
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner_fast.checkpoint import load_model
from ner_fast.decode import CRF, crf_nll, decode, viterbi
from ner_fast.evaluate import evaluate
from ner_fast.model import crf_loss_symbol
from ner_fast.prepare import prepare
from ner_fast.train import TrainConfig, train

IOB = ["O", "B-a", "I-a", "B-b", "I-b"]


def _random_crf(rng: np.random.Generator, n: int) -> CRF:
    return CRF(rng.normal(0, 1.5, (n, n)), rng.normal(0, 1, n), rng.normal(0, 1, n))


def _path_score(logp: np.ndarray, path: tuple[int, ...], crf: CRF) -> float:
    score = crf.start[path[0]] + crf.end[path[-1]] + sum(logp[t, k] for t, k in enumerate(path))
    return float(score + sum(crf.transitions[a, b] for a, b in zip(path, path[1:])))


def _valid_iob(path: tuple[int, ...]) -> bool:
    prev = "O"
    for tag in (IOB[k] for k in path):
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            return False
        prev = tag
    return True


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_crf_nll_and_viterbi_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_tags, batch, seq_len = len(IOB), 3, 4
    crf = _random_crf(rng, n_tags)
    proba = rng.dirichlet(np.full(n_tags, 0.5), size=(batch, seq_len))
    lengths = rng.integers(0, seq_len + 1, batch)
    labels = rng.integers(0, n_tags, (batch, seq_len))
    labels[np.arange(seq_len)[None, :] >= lengths[:, None]] = -1
    nll = crf_nll(proba, labels, crf)
    free = viterbi(proba, lengths, IOB, crf, constrained=False)
    bio = decode(proba, lengths, IOB, "bio", crf)
    for b, n in enumerate(lengths):
        if n == 0:
            assert nll[b] == 0 and (free[b] == -1).all()
            continue
        logp = np.log(proba[b, :n])
        paths = list(itertools.product(range(n_tags), repeat=int(n)))
        scores = np.array([_path_score(logp, p, crf) for p in paths])
        log_z = np.logaddexp.reduce(scores)
        assert nll[b] == pytest.approx(log_z - _path_score(logp, tuple(labels[b, :n]), crf), abs=1e-9)
        assert _path_score(logp, tuple(free[b, :n]), crf) == pytest.approx(scores.max(), abs=1e-9)
        valid = [s for p, s in zip(paths, scores) if _valid_iob(p)]
        assert _valid_iob(tuple(bio[b, :n]))
        assert _path_score(logp, tuple(bio[b, :n]), crf) == pytest.approx(max(valid), abs=1e-9)
        assert (free[b, n:] == -1).all() and (bio[b, n:] == -1).all()


def test_crf_scores_change_the_best_path() -> None:
    # Token-wise the argmax is "B-a B-a"; a strong B-a -> I-a transition makes "B-a I-a" best.
    proba = np.array([[[0.1, 0.6, 0.1, 0.1, 0.1], [0.1, 0.4, 0.3, 0.1, 0.1]]])
    crf = CRF(np.zeros((5, 5)), np.zeros(5), np.zeros(5))
    assert decode(proba, np.array([2]), IOB, "argmax", crf).tolist() == [[1, 1]]
    crf.transitions[1, 2] = 1.0
    assert decode(proba, np.array([2]), IOB, "argmax", crf).tolist() == [[1, 2]]
    assert CRF.from_json(crf.to_json()).transitions[1, 2] == 1.0


def _mx_loss(scores: np.ndarray, labels: np.ndarray, crf: CRF) -> tuple[float, dict[str, np.ndarray]]:
    batch, seq_len, n_tags = scores.shape
    sym = crf_loss_symbol(mx.sym.Variable("scores"), mx.sym.Variable("label"), seq_len, n_tags)
    args = {
        "scores": mx.nd.array(scores),
        "label": mx.nd.array(labels),
        "crf_transitions": mx.nd.array(crf.transitions),
        "crf_start": mx.nd.array(crf.start),
        "crf_end": mx.nd.array(crf.end),
    }
    grads = {name: mx.nd.zeros(a.shape) for name, a in args.items() if name != "label"}
    exe = sym.bind(mx.cpu(), args, args_grad=grads, grad_req={n: "write" if n in grads else "null" for n in args})
    exe.forward(is_train=True)
    exe.backward(mx.nd.ones((1,)))
    return float(exe.outputs[0].asnumpy()[0]), {n: g.asnumpy() for n, g in grads.items()}


@pytest.mark.parametrize("seq_len", [1, 5])
def test_mxnet_crf_loss_matches_numpy_value_and_gradient(seq_len: int) -> None:
    rng = np.random.default_rng(seq_len)
    n_tags, batch = 4, 3
    crf = _random_crf(rng, n_tags)
    scores = rng.normal(0, 2, (batch, seq_len, n_tags))
    labels = rng.integers(0, n_tags, (batch, seq_len)).astype(np.float64)
    lengths = np.array([seq_len, max(seq_len - 2, 1), 0])  # a full row, a shorter one, a padding row
    labels[np.arange(seq_len)[None, :] >= lengths[:, None]] = -1

    def reference(s: np.ndarray, c: CRF) -> float:
        # The raw scores are log-probabilities up to one constant per token: softmax them first.
        proba = np.exp(s - np.logaddexp.reduce(s, axis=2, keepdims=True))
        return float(crf_nll(proba, labels, c).sum() / (labels >= 0).sum())

    value, grads = _mx_loss(scores, labels, crf)
    assert value == pytest.approx(reference(scores, crf), rel=1e-4)
    eps = 1e-4
    for name, array in (("scores", scores), ("crf_transitions", crf.transitions), ("crf_start", crf.start), ("crf_end", crf.end)):
        numeric = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            plus, minus = array.copy(), array.copy()
            plus[idx] += eps
            minus[idx] -= eps

            def at(a: np.ndarray) -> float:
                if name == "scores":
                    return reference(a, crf)
                parts = {"crf_transitions": crf.transitions, "crf_start": crf.start, "crf_end": crf.end, name: a}
                return reference(scores, CRF(parts["crf_transitions"], parts["crf_start"], parts["crf_end"]))

            numeric[idx] = (at(plus) - at(minus)) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, atol=2e-3)
    # The padding row gets no gradient at all.
    assert np.abs(grads["scores"][2]).max() == 0


def test_crf_loss_graph_learns_a_markov_chain() -> None:
    # With uninformative per-token scores, only the CRF's own parameters can explain the labels:
    # gradient steps through the MXNet loss graph must lower the likelihood that crf_nll computes
    # and rank every bigram the data shows often above every bigram it never shows.
    rng = np.random.default_rng(0)
    chain = np.array([  # rows: previous tag (IOB order), columns: next tag
        [0.6, 0.25, 0.0, 0.15, 0.0],
        [0.3, 0.0, 0.7, 0.0, 0.0],
        [0.5, 0.1, 0.4, 0.0, 0.0],
        [0.8, 0.0, 0.0, 0.0, 0.2],
        [0.9, 0.0, 0.0, 0.1, 0.0],
    ])
    batch, seq_len, n_tags = 64, 6, len(IOB)
    labels = np.zeros((batch, seq_len), dtype=np.int64)
    for row in labels:
        row[0] = rng.choice([0, 1, 3])
        for t in range(1, seq_len):
            row[t] = rng.choice(n_tags, p=chain[row[t - 1]])
    counts = np.zeros((n_tags, n_tags), dtype=np.int64)
    np.add.at(counts, (labels[:, :-1], labels[:, 1:]), 1)
    assert (counts >= 5).sum() >= 6 and (counts == 0).sum() >= 6  # the draw has both kinds of bigram

    sym = crf_loss_symbol(mx.sym.Variable("scores"), mx.sym.Variable("label"), seq_len, n_tags)
    args = {
        "scores": mx.nd.zeros((batch, seq_len, n_tags)),
        "label": mx.nd.array(labels),
        "crf_transitions": mx.nd.zeros((n_tags, n_tags)),
        "crf_start": mx.nd.zeros(n_tags),
        "crf_end": mx.nd.zeros(n_tags),
    }
    names = ("crf_transitions", "crf_start", "crf_end")
    grads = {name: mx.nd.zeros(args[name].shape) for name in names}
    exe = sym.bind(mx.cpu(), args, args_grad=grads, grad_req={n: "write" if n in grads else "null" for n in args})
    losses = []
    for _ in range(100):
        exe.forward(is_train=True)
        losses.append(float(exe.outputs[0].asnumpy()[0]))
        exe.backward(mx.nd.ones((1,)))
        for name in names:
            args[name][:] = args[name] - 2.0 * grads[name]

    assert losses[0] == pytest.approx(np.log(n_tags), rel=1e-5)  # zero CRF, uniform scores
    assert np.all(np.diff(losses) <= 1e-6) and losses[-1] < 0.6 * losses[0]
    learned = CRF(*(args[name].asnumpy().astype(np.float64) for name in names))
    uniform = np.full((batch, seq_len, n_tags), 1.0 / n_tags)
    zero = CRF(np.zeros((n_tags, n_tags)), np.zeros(n_tags), np.zeros(n_tags))
    assert crf_nll(uniform, labels, learned).mean() / seq_len == pytest.approx(losses[-1], abs=0.01)
    assert crf_nll(uniform, labels, learned).sum() < 0.6 * crf_nll(uniform, labels, zero).sum()
    assert learned.transitions[counts >= 5].min() > learned.transitions[counts == 0].max()


def test_crf_training_learns_and_evaluate_reproduces_it(tmp_path: Path) -> None:
    data = tmp_path / "prepared"
    prepared = prepare(max_sentences=160, buckets=[12, 20, 30], batch_size=16)
    prepared.save(data)
    arch = {"hidden": 12, "word_dim": 12, "filters": 6, "char_dim": 8, "crf": True}
    cfg = TrainConfig(out=str(tmp_path / "run"), data=str(data), batch_size=16, epochs=3, patience=None,
                      learning_rate=0.02, arch=arch)
    result = train(cfg, progress=False, echo=lambda msg: None)
    losses = [h["train"]["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    # The transition scores start at zero; training must rank every tag bigram that the training
    # split shows often (B-per -> I-per, O -> B-geo, ...) above every bigram it never shows.
    n_tags = len(prepared.vocabs.tags)
    counts = np.zeros((n_tags, n_tags), dtype=np.int64)
    for bucket in prepared.splits["train"]:
        assert bucket.tags is not None
        for row, length in zip(bucket.tags, bucket.lengths):
            np.add.at(counts, (row[: length - 1], row[1:length]), 1)
    assert (counts >= 10).sum() >= 5 and (counts == 0).sum() >= 5
    config, params, _, _ = load_model(tmp_path / "run", "last")
    assert config.crf
    transitions = params["crf_transitions"]
    assert transitions[counts >= 10].min() > transitions[counts == 0].max()
    logged = result.history[result.best_epoch - 1]["valid"]
    scores = evaluate(tmp_path / "run", which="best")
    assert scores.f1 == pytest.approx(logged["f1"], abs=1e-9)
    assert scores.loss == pytest.approx(logged["loss"], rel=1e-4)
