"""The CRF output layer: NumPy likelihood and Viterbi against brute force over every tag sequence; the
compiled loss kernel (`training._kernels.crf_nll_grad`) against the NumPy likelihood and its finite differences;
the MXNet loss operator (`crf_loss.crf_loss_symbol`) against the NumPy likelihood and against MXNet's
autograd of the forward algorithm unrolled into a graph (the loss training used before the operator,
kept here as the reference); the whole network's loss and gradients with the operator against those
with the unrolled graph; a CRF training run."""
from __future__ import annotations

import itertools
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ner_fast.training.model as model
from ner_fast.training import _kernels
from ner_fast.checkpoint import init_params, load_model
from ner_fast.training.crf_loss import crf_loss_symbol, soft_crf_nll_grad
from ner_fast.decode import CRF, CRF_PARAMS, crf_marginals, crf_nll, decode, viterbi
from ner_fast.training.evaluate import evaluate
from ner_fast.prepare import prepare
from ner_fast.training.epoch import make_module
from ner_fast.training.run_setup import model_config_for
from ner_fast.training.iterators import BucketIter
from ner_fast.training.train import TrainConfig, train
from helpers import float_tol

pytestmark = pytest.mark.numeric  # tolerances from helpers.float_tol; rerun under DNNL_MAX_CPU_ISA=AVX2

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
        # float64 on both sides: a log-sum-exp over every path against the forward algorithm's n steps of
        # n_tags + 2 operations, on values as large as the largest path score.
        tol = float_tol(len(paths) + int(n) * (n_tags + 2), np.abs(scores).max() + 1, np.float64)
        assert nll[b] == pytest.approx(log_z - _path_score(logp, tuple(labels[b, :n]), crf), abs=tol)
        assert _path_score(logp, tuple(free[b, :n]), crf) == pytest.approx(scores.max(), abs=tol)
        valid = [s for p, s in zip(paths, scores) if _valid_iob(p)]
        assert _valid_iob(tuple(bio[b, :n]))
        assert _path_score(logp, tuple(bio[b, :n]), crf) == pytest.approx(max(valid), abs=tol)
        assert (free[b, n:] == -1).all() and (bio[b, n:] == -1).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_crf_marginals_match_brute_force(seed: int, length: int) -> None:
    # P(y_t = k | x): the probability mass of every path through tag k at t, enumerated path by path.
    rng = np.random.default_rng(seed)
    n_tags = len(IOB)
    crf = _random_crf(rng, n_tags)
    proba = rng.dirichlet(np.full(n_tags, 0.5), size=length)
    got = crf_marginals(proba, crf)
    logp = np.log(proba)
    paths = list(itertools.product(range(n_tags), repeat=length))
    scores = np.array([_path_score(logp, p, crf) for p in paths])
    weights = np.exp(scores - np.logaddexp.reduce(scores))
    expected = np.zeros((length, n_tags))
    for path, w in zip(paths, weights):
        expected[np.arange(length), path] += w
    assert got.shape == (length, n_tags) and got.dtype == np.float32
    # float32 output of float64 sums: its rounding (a relative 2**-24 of values at most 1) dominates.
    np.testing.assert_allclose(got, expected, rtol=0, atol=float_tol(1) + float_tol(len(paths), 1, np.float64))
    np.testing.assert_allclose(got.sum(axis=1), 1, rtol=0, atol=float_tol(n_tags))


def test_crf_marginals_without_crf_scores_are_the_probabilities() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4), size=6)
    flat = CRF(np.zeros((4, 4)), np.zeros(4), np.zeros(4))
    np.testing.assert_allclose(crf_marginals(proba, flat), proba, rtol=0, atol=float_tol(4 * 6))
    assert crf_marginals(np.zeros((0, 4)), flat).shape == (0, 4)


def test_crf_scores_change_the_best_path() -> None:
    # Token-wise the argmax is "B-a B-a"; a strong B-a -> I-a transition makes "B-a I-a" best.
    proba = np.array([[[0.1, 0.6, 0.1, 0.1, 0.1], [0.1, 0.4, 0.3, 0.1, 0.1]]])
    crf = CRF(np.zeros((5, 5)), np.zeros(5), np.zeros(5))
    assert decode(proba, np.array([2]), IOB, "argmax", crf).tolist() == [[1, 1]]
    crf.transitions[1, 2] = 1.0
    assert decode(proba, np.array([2]), IOB, "argmax", crf).tolist() == [[1, 2]]
    assert CRF.from_json(crf.to_json()).transitions[1, 2] == 1.0


# --------------------------------------------------------------------------- the reference loss graph


def _sym_logsumexp(x: mx.sym.Symbol, axis: int) -> mx.sym.Symbol:
    top = mx.sym.BlockGrad(mx.sym.max(x, axis=axis, keepdims=True))
    return mx.sym.log(mx.sym.sum(mx.sym.exp(mx.sym.broadcast_sub(x, top)), axis=axis)) + mx.sym.squeeze(top, axis=axis)


def unrolled_crf_loss(scores: mx.sym.Symbol, label: mx.sym.Symbol, seq_len: int, n_tags: int) -> mx.sym.Symbol:
    """The loss as training computed it before the compiled operator: the forward algorithm unrolled
    over the bucket's steps in MXNet operators, differentiated by MXNet's autograd (the same
    quantity: the batch's summed NLL over its real tokens)."""
    shapes = [(n_tags, n_tags), (n_tags,), (n_tags,)]
    trans, start, end = (mx.sym.Variable(name, shape=shape) for name, shape in zip(CRF_PARAMS, shapes))
    mask = label >= 0
    y = mx.sym.maximum(label, 0)
    lengths = mx.sym.sum(mask, axis=1)
    gold = mx.sym.sum(mx.sym.pick(scores, y, axis=2) * mask, axis=1)
    if seq_len > 1:
        prev = mx.sym.slice_axis(y, axis=1, begin=0, end=seq_len - 1)
        cur = mx.sym.slice_axis(y, axis=1, begin=1, end=seq_len)
        pair = mx.sym.take(mx.sym.reshape(trans, shape=(-1,)), prev * n_tags + cur)
        gold = gold + mx.sym.sum(pair * mx.sym.slice_axis(mask, axis=1, begin=1, end=seq_len), axis=1)
    gold = gold + mx.sym.reshape(mx.sym.take(start, mx.sym.slice_axis(y, axis=1, begin=0, end=1)), shape=(-1,))
    gold = gold + mx.sym.take(end, mx.sym.pick(y, mx.sym.maximum(lengths - 1, 0), axis=1))
    if seq_len > 1:
        emit = list(mx.sym.split(scores, num_outputs=seq_len, axis=1, squeeze_axis=True))
        steps = list(mx.sym.split(mask, num_outputs=seq_len, axis=1))
    else:
        emit, steps = [mx.sym.reshape(scores, shape=(-1, n_tags))], [mask]
    alpha = mx.sym.broadcast_add(emit[0], mx.sym.expand_dims(start, axis=0))
    if seq_len == 1:  # list crf_transitions in a one-token bucket too (gradient 0)
        alpha = mx.sym.broadcast_add(alpha, 0 * mx.sym.reshape(mx.sym.sum(trans), shape=(1, 1)))
    for t in range(1, seq_len):
        pairs = mx.sym.broadcast_add(mx.sym.expand_dims(alpha, axis=2), mx.sym.expand_dims(trans, axis=0))
        stepped = _sym_logsumexp(pairs, axis=1) + emit[t]
        alpha = alpha + mx.sym.broadcast_mul(steps[t], stepped - alpha)
    log_z = _sym_logsumexp(mx.sym.broadcast_add(alpha, mx.sym.expand_dims(end, axis=0)), axis=1)
    nll = mx.sym.sum((log_z - gold) * (lengths > 0))
    return nll / mx.sym.BlockGrad(mx.sym.maximum(mx.sym.sum(mask), 1))


def _softmax(scores: np.ndarray) -> np.ndarray:
    # Raw scores are log-probabilities up to one constant per token, which every path shares.
    return np.exp(scores - np.logaddexp.reduce(scores, axis=2, keepdims=True))


def _random_batch(
    rng: np.random.Generator, batch: int, seq_len: int, n_tags: int, lengths: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = rng.normal(0, 2, (batch, seq_len, n_tags))
    if lengths is None:
        lengths = rng.integers(0, seq_len + 1, batch)
    labels = rng.integers(0, n_tags, (batch, seq_len))
    labels[np.arange(seq_len)[None, :] >= lengths[:, None]] = -1
    return scores, labels, lengths


# --------------------------------------------------------------------------- the compiled kernel


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(0, 7), st.sampled_from([np.float32, np.float64]))
def test_kernel_nll_matches_numpy(seed: int, n_tags: int, seq_len: int, dtype: type) -> None:
    # Lengths 0 and 1 and padded rows among them; the oracle is decode.crf_nll (NumPy, float64).
    rng = np.random.default_rng(seed)
    batch = 5
    crf = _random_crf(rng, n_tags)
    lengths = rng.integers(0, seq_len + 1, batch)
    lengths[: min(2, batch)] = [0, min(1, seq_len)]
    scores, labels, _ = _random_batch(rng, batch, seq_len, n_tags, lengths)
    scores = scores.astype(dtype)
    params = [a.astype(dtype) for a in (crf.transitions, crf.start, crf.end)]
    nll, d_scores, d_trans, d_start, d_end = _kernels.crf_nll_grad(scores, labels, *params)
    expected = crf_nll(_softmax(scores.astype(np.float64)), labels, CRF(*(p.astype(np.float64) for p in params)))
    assert nll.dtype == np.float64 and d_scores.dtype == dtype and d_scores.shape == scores.shape
    # Both in float64 on the same values (the kernel sums float32 scores in float64): seq_len steps of a
    # log-sum-exp over n_tags (n_tags + 2 operations) and a softmax, on values up to the sentence's
    # summed |scores|.
    scale = np.abs(scores.astype(np.float64)).sum(axis=(1, 2)) + np.abs(crf.transitions).max() * (seq_len + 2) + 1
    tol = float_tol(seq_len * (n_tags + 2) + n_tags, 1.0, np.float64) * scale
    np.testing.assert_array_less(np.abs(nll - expected), tol + 1e-300)
    assert (nll[lengths == 0] == 0).all() and (n_tags == 1 or (nll[lengths > 0] > 0).all())
    # Nothing beyond a sentence's end; each real token's marginals sum to 1, less its gold 1.
    padding = np.arange(seq_len)[None, :] >= lengths[:, None]
    assert (d_scores[padding] == 0).all()
    # n_tags marginals (each at most 1, summing to 1) from forward-backward in float64 (2 * seq_len steps
    # of n_tags + 2 operations), less the gold 1, each rounded to `dtype` and summed: n_tags + 1 roundings
    # on values of total magnitude 2.
    marginals_tol = float_tol(2 * seq_len * (n_tags + 2), 2.0, np.float64) + float_tol(n_tags + 1, 2.0, dtype)
    np.testing.assert_allclose(d_scores[~padding].sum(axis=-1), 0, atol=marginals_tol)
    # Each sentence opens and closes once, and has length - 1 transitions, in the model as in the gold path
    # (float64: marginals as above, summed over batch * n_tags**2 terms, of magnitude up to 2 per sentence
    # and step).
    np.testing.assert_allclose([d_start.sum(), d_end.sum(), d_trans.sum()], 0,
                               atol=float_tol(batch * (2 * seq_len * (n_tags + 2) + n_tags**2), 2.0 * (seq_len + 1), np.float64))


@pytest.mark.parametrize("seq_len", [1, 2, 6])
def test_kernel_gradients_match_finite_differences(seq_len: int) -> None:
    rng = np.random.default_rng(seq_len)
    n_tags = 4
    crf = _random_crf(rng, n_tags)
    scores, labels, _ = _random_batch(rng, 4, seq_len, n_tags, np.array([seq_len, max(seq_len - 1, 1), 1, 0]))

    def total(s: np.ndarray, c: CRF) -> float:
        return float(crf_nll(_softmax(s), labels, c).sum())

    _, *grads = _kernels.crf_nll_grad(scores, labels, crf.transitions, crf.start, crf.end)
    eps = 1e-6
    for k, (array, grad) in enumerate(zip((scores, crf.transitions, crf.start, crf.end), grads)):
        numeric = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            moved = []
            for step in (eps, -eps):
                copy = array.copy()
                copy[idx] += step
                parts = [scores, crf.transitions, crf.start, crf.end]
                parts[k] = copy
                moved.append(total(parts[0], CRF(*parts[1:])))
            numeric[idx] = (moved[0] - moved[1]) / (2 * eps)
        # Every argument moves the likelihood, but for transitions in one-token sentences.
        assert np.abs(numeric).max() > 0.01 or (k == 1 and seq_len == 1)
        # Central differences in float64 err by eps**2 / 6 * |f'''| (truncation, ~1e-13 here) plus the
        # rounding of f (a few hundred operations on the summed likelihood, under 100) divided by eps.
        f_rounding = float_tol(4 * seq_len * (n_tags + 2) * 10, 100.0, np.float64)
        np.testing.assert_allclose(grad, numeric, atol=f_rounding / eps + 1e-12)


def test_kernel_is_exact_where_float32_scores_are_large() -> None:
    # Long sentences with large scores: the likelihood is in the thousands, yet it must match NumPy's
    # float64 forward algorithm to 1e-9 and each token's marginals still sum to 1.
    rng = np.random.default_rng(3)
    n_tags, seq_len = 9, 200
    crf = _random_crf(rng, n_tags)
    scores = (rng.normal(0, 8, (2, seq_len, n_tags))).astype(np.float32)
    labels = rng.integers(0, n_tags, (2, seq_len))
    nll, d_scores, *_ = _kernels.crf_nll_grad(scores, labels, *(a.astype(np.float32) for a in (crf.transitions, crf.start, crf.end)))
    params32 = CRF(*(a.astype(np.float32).astype(np.float64) for a in (crf.transitions, crf.start, crf.end)))
    # float64 on both sides: seq_len steps of n_tags + 2 operations and a softmax, relative to the
    # likelihood (in the thousands, of the same size as the sums of |scores| involved).
    np.testing.assert_allclose(nll, crf_nll(_softmax(scores.astype(np.float64)), labels, params32),
                               rtol=float_tol(seq_len * (n_tags + 2) + n_tags, 10.0, np.float64))
    assert nll.min() > 1000
    # Marginals from float64 forward-backward, rounded to float32 and summed (as in the kernel test above).
    marginals_tol = float_tol(2 * seq_len * (n_tags + 2), 2.0, np.float64) + float_tol(n_tags + 1, 2.0)
    np.testing.assert_allclose(d_scores.sum(axis=-1), 0, atol=marginals_tol)


def test_kernel_rejects_malformed_input() -> None:
    z3, z33 = np.zeros(3), np.zeros((3, 3))
    scores = np.zeros((2, 4, 3))
    with pytest.raises(ValueError, match="labels are"):
        _kernels.crf_nll_grad(scores, np.zeros((2, 3), dtype=np.int64), z33, z3, z3)
    with pytest.raises(ValueError, match="CRF parameters"):
        _kernels.crf_nll_grad(scores, np.zeros((2, 4), dtype=np.int64), np.zeros((3, 4)), z3, z3)
    with pytest.raises(ValueError, match="row 1"):  # a tag id out of range
        _kernels.crf_nll_grad(scores, np.array([[0, 1, 2, -1], [0, 3, -1, -1]]), z33, z3, z3)
    with pytest.raises(ValueError, match="row 0"):  # a tag after the padding started
        _kernels.crf_nll_grad(scores, np.array([[0, -1, 2, -1], [0, 1, -1, -1]]), z33, z3, z3)


# --------------------------------------------------------------------------- the teacher's likelihood (--distill-target crf)


def _enumerated_soft(scores: np.ndarray, q: np.ndarray, crf: CRF) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One sentence of scores (L, T) by enumerating every path: log Z minus the expected score of a path
    drawn from `q` (L, T) tag by tag independently, and its gradients, each the student's marginal (by
    summing path probabilities) minus the teacher's (q's, or for transitions q's outer products)."""
    length, n_tags = scores.shape
    paths = list(itertools.product(range(n_tags), repeat=length))
    score = np.array([_path_score(scores, path, crf) for path in paths])
    log_z = np.logaddexp.reduce(score)
    p_path = np.exp(score - log_z)
    q_path = np.array([np.prod([q[t, k] for t, k in enumerate(path)]) for path in paths])
    d_scores, d_trans = np.zeros((length, n_tags)), np.zeros((n_tags, n_tags))
    d_start, d_end = np.zeros(n_tags), np.zeros(n_tags)
    for path, p, w in zip(paths, p_path, q_path):
        for t, k in enumerate(path):
            d_scores[t, k] += p - w
        for a, b in zip(path, path[1:]):
            d_trans[a, b] += p - w
        d_start[path[0]] += p - w
        d_end[path[-1]] += p - w
    return float(log_z - (q_path * score).sum()), d_scores, d_trans, d_start, d_end


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 4), st.integers(1, 4))
def test_the_teachers_likelihood_is_the_expectation_over_paths(seed: int, n_tags: int, seq_len: int) -> None:
    # The oracle enumerates every path (at most 4**4); the code under test is linear in the indicators.
    rng = np.random.default_rng(seed)
    crf = _random_crf(rng, n_tags)
    lengths = np.array([seq_len, 1, 0, rng.integers(1, seq_len + 1)])
    scores, labels, _ = _random_batch(rng, len(lengths), seq_len, n_tags, lengths)
    q = rng.dirichlet(np.full(n_tags, 0.7), size=(len(lengths), seq_len))
    q[labels < 0] = 0
    nll, d_scores, d_trans, d_start, d_end = soft_crf_nll_grad(scores, q, labels, crf.transitions, crf.start, crf.end)
    expected = [(0.0, np.zeros((0, n_tags)), 0, 0, 0) if n == 0 else _enumerated_soft(scores[b, :n], q[b, :n], crf)
                for b, n in enumerate(lengths)]
    # float64 throughout: each path's score (seq_len * 2 + 2 terms) weighed and summed over n_tags**seq_len
    # paths, on values up to the sentence's summed |scores| and transitions.
    n_paths = n_tags**seq_len
    scale = np.abs(scores).sum(axis=(1, 2)) + np.abs(crf.transitions).max() * (seq_len + 2) + 1
    tol = float_tol(n_paths * (2 * seq_len + 2) + seq_len * (n_tags + 2), 1.0, np.float64) * scale
    np.testing.assert_array_less(np.abs(nll - [e[0] for e in expected]), tol + 1e-300)
    assert nll[2] == 0 and np.abs(nll).max() > 0
    grad_tol = float_tol(n_paths * seq_len + 2 * seq_len * (n_tags + 2), 2.0 * (seq_len + 1), np.float64) * len(lengths)
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(d_scores[b, :n], expected[b][1], atol=grad_tol)
        assert (d_scores[b, n:] == 0).all()
    for got, k in ((d_trans, 2), (d_start, 3), (d_end, 4)):
        np.testing.assert_allclose(got, sum(e[k] for e in expected), atol=grad_tol)


def test_the_teachers_likelihood_of_gold_one_hots_is_the_gold_likelihood() -> None:
    # float32 as training gives it: the swapped indicators differ by exact zeros, so nothing moves.
    rng = np.random.default_rng(7)
    n_tags = 5
    crf = _random_crf(rng, n_tags)
    scores, labels, _ = _random_batch(rng, 6, 7, n_tags, np.array([7, 3, 1, 0, 7, 5]))
    scores = scores.astype(np.float32)
    params = [a.astype(np.float32) for a in (crf.transitions, crf.start, crf.end)]
    onehots = np.eye(n_tags, dtype=np.float32)[np.maximum(labels, 0)] * (labels >= 0)[:, :, None]
    soft = soft_crf_nll_grad(scores, onehots, labels, *params)
    gold = _kernels.crf_nll_grad(scores, labels, *params)
    for got, want in zip(soft, gold):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert np.abs(gold[1]).max() > 0.1


# --------------------------------------------------------------------------- the MXNet operator


def _loss_symbol(kind: str, seq_len: int, n_tags: int) -> mx.sym.Symbol:
    scores, label = mx.sym.Variable("scores"), mx.sym.Variable("label")
    if kind == "operator":
        return crf_loss_symbol(scores, label, n_tags)
    return unrolled_crf_loss(scores, label, seq_len, n_tags)


def _mx_loss(scores: np.ndarray, labels: np.ndarray, crf: CRF, kind: str = "operator") -> tuple[float, dict[str, np.ndarray]]:
    batch, seq_len, n_tags = scores.shape
    # Under MakeLoss, as in training: the head gradient is 1.
    sym = mx.sym.MakeLoss(_loss_symbol(kind, seq_len, n_tags))
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


@pytest.mark.parametrize("kind", ["operator", "unrolled"])
@pytest.mark.parametrize("seq_len", [1, 5])
def test_mxnet_crf_loss_matches_numpy_value_and_gradient(seq_len: int, kind: str) -> None:
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

    value, grads = _mx_loss(scores, labels, crf, kind)
    # MXNet in float32 against NumPy in float64: the scores rounded to float32, then seq_len steps of
    # n_tags + 2 operations on log-sum-exps up to 10x the per-token loss (|scores| ~ N(0, 2) summed).
    rounding = float_tol(seq_len * (n_tags + 2) + n_tags, 10.0)
    assert value == pytest.approx(reference(scores, crf), rel=rounding)
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
        # float32 gradients (rounding relative to their largest, at most 1) against float64 central
        # differences (truncation eps**2 / 6 * |f'''|, |f'''| < 10 here; rounding negligible in float64).
        np.testing.assert_allclose(grads[name], numeric, atol=rounding + eps**2 / 6 * 10)
    # The padding row gets no gradient at all.
    assert np.abs(grads["scores"][2]).max() == 0


@pytest.mark.parametrize("seq_len", [1, 2, 9, 30])
def test_operator_matches_the_unrolled_graph_autograd(seq_len: int) -> None:
    rng = np.random.default_rng(10 + seq_len)
    n_tags, batch = 7, 12
    crf = _random_crf(rng, n_tags)
    lengths = rng.integers(0, seq_len + 1, batch)
    lengths[:3] = [seq_len, 1, 0]
    scores, labels, _ = _random_batch(rng, batch, seq_len, n_tags, lengths)
    value, grads = _mx_loss(scores, labels.astype(np.float64), crf, "operator")
    expected, reference = _mx_loss(scores, labels.astype(np.float64), crf, "unrolled")
    # Both float32, in different orders: seq_len steps of a log-sum-exp over n_tags (n_tags + 2
    # operations), the loss relative to itself, each gradient relative to its largest element.
    rtol = float_tol(seq_len * (n_tags + 2) + n_tags)
    assert value == pytest.approx(expected, rel=rtol)
    assert set(grads) == set(reference) == {"scores", *CRF_PARAMS}
    for name, grad in reference.items():
        assert np.abs(grad).max() > 0 or (name == "crf_transitions" and seq_len == 1)
        np.testing.assert_allclose(grads[name], grad, atol=rtol * np.abs(grad).max(), err_msg=name)


def test_operator_scales_its_gradient_by_the_head_gradient() -> None:
    # Outside MakeLoss, the incoming gradient scales every gradient (the chain rule).
    rng = np.random.default_rng(5)
    crf = _random_crf(rng, 3)
    scores, labels, _ = _random_batch(rng, 4, 5, 3, np.array([5, 3, 1, 0]))
    args = {"scores": mx.nd.array(scores), "label": mx.nd.array(labels)}
    args.update({name: mx.nd.array(getattr(crf, name[4:])) for name in CRF_PARAMS})
    grads = {}
    for head in (1.0, -2.5):
        g = {name: mx.nd.zeros(a.shape) for name, a in args.items() if name != "label"}
        exe = crf_loss_symbol(mx.sym.Variable("scores"), mx.sym.Variable("label"), 3).bind(
            mx.cpu(), args, args_grad=g, grad_req={n: "write" if n in g else "null" for n in args}
        )
        exe.forward(is_train=True)
        exe.backward(mx.nd.array([head]))
        grads[head] = {n: a.asnumpy() for n, a in g.items()}
    for name, grad in grads[1.0].items():
        assert np.abs(grad).max() > 0
        # The head gradient is one more factor in each element's product of a few float32 roundings
        # (marginal - gold, / tokens, * head, and -2.5 * here): 4 roundings relative to the largest.
        np.testing.assert_allclose(grads[-2.5][name], -2.5 * grad, atol=float_tol(4, 2.5 * np.abs(grad).max()))


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

    sym = crf_loss_symbol(mx.sym.Variable("scores"), mx.sym.Variable("label"), n_tags)
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

    exe.forward(is_train=True)
    final = float(exe.outputs[0].asnumpy()[0])  # the loss at the learned parameters
    # float32 forward algorithm: seq_len steps of n_tags + 2 operations on log-sum-exps up to seq_len
    # times the per-token loss, and a mean over the batch's tokens.
    rtol = float_tol(seq_len * (n_tags + 2) + batch * seq_len, seq_len)
    assert losses[0] == pytest.approx(np.log(n_tags), rel=rtol)  # zero CRF, uniform scores
    assert np.all(np.diff(losses) <= rtol * losses[0]) and losses[-1] < 0.6 * losses[0]  # descends, up to rounding
    learned = CRF(*(args[name].asnumpy().astype(np.float64) for name in names))
    uniform = np.full((batch, seq_len, n_tags), 1.0 / n_tags)
    zero = CRF(np.zeros((n_tags, n_tags)), np.zeros(n_tags), np.zeros(n_tags))
    assert crf_nll(uniform, labels, learned).mean() / seq_len == pytest.approx(final, rel=rtol)
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
    assert scores.f1 == logged["f1"]  # a ratio of entity counts: equal unless a prediction changed
    # The same float32 network in other batches: each logit passes through at most 30 steps of the LSTM's
    # dot products (inputs and state: hidden + word_dim + filters + casing terms) and the CRF's forward
    # algorithm (30 steps of n_tags + 2 operations), on values of order 1; the loss is their mean.
    terms = 30 * (2 * arch["hidden"] + arch["word_dim"] + arch["filters"] + 8) + 30 * (n_tags + 2)
    assert scores.loss == pytest.approx(logged["loss"], rel=float_tol(terms))


@pytest.mark.numeric
def test_the_network_with_the_operator_has_the_unrolled_graphs_loss_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    # Training with the operator follows training with the unrolled graph if, at the same parameters
    # and batch, the whole network (bucketed, as `train` builds it) has the same loss and the same
    # gradient of every parameter: the optimizer is the same function of them. Two whole seeded
    # training runs were compared before; Adam makes rounding-level differences into different
    # trajectories (losses 1.4e-3 apart on an AVX2 CPU), so no tolerance derived from float32 holds there.
    data = prepare(max_sentences=120, buckets=[1, 12, 20, 30], batch_size=16)
    cfg = TrainConfig(out="", batch_size=16, arch={"hidden": 8, "word_dim": 8, "filters": 4, "char_dim": 6, "crf": True,
                                                   "dropout": 0.0})  # no dropout: no random masks to pair
    config = model_config_for(cfg, data.vocabs, int(data.settings["max_token_chars"]))
    params = init_params(config, 0)
    rng = np.random.default_rng(0)
    for name in CRF_PARAMS:  # non-zero CRF scores, so every term of the forward algorithm counts
        params[name] = rng.normal(0, 1, params[name].shape).astype(np.float32)

    def run() -> list[tuple[int, float, dict[str, np.ndarray]]]:
        it = BucketIter(data.splits["train"], 16)
        module = make_module(config, params, [mx.cpu()], 16, it.default_bucket_key)
        out = []
        for batch in it:
            module.forward(batch, is_train=True)
            module.backward()
            group = module._curr_module._exec_group
            grads = {name: g[0].asnumpy().copy() for name, g in zip(group.param_names, group.grad_arrays)}
            out.append((batch.bucket_key, float(module.get_outputs()[1].asnumpy()[0]), grads))
        return out

    ours = run()
    real = model.make_sym_gen

    def with_unrolled_loss(config, distill=None):  # type: ignore[no-untyped-def]
        inner = real(config, distill)

        def sym_gen(seq_len: int):  # type: ignore[no-untyped-def]
            monkeypatch.setattr(model, "crf_loss_symbol", lambda s, l, n, params=None: unrolled_crf_loss(s, l, seq_len, n))
            return inner(seq_len)

        return sym_gen

    monkeypatch.setattr(model, "make_sym_gen", with_unrolled_loss)
    theirs = run()
    assert len(ours) == len(theirs) >= 5 and {key for key, _, _ in ours} >= {12, 30}
    # Both compute the forward algorithm in float32: per step a log-sum-exp over n_tags transitions
    # (n_tags + 2 rounded operations), over up to seq_len steps; the rest of the network is the same graph
    # on the same kernels. So the loss, and each gradient's norm-wise error, differ by at most
    # seq_len * (n_tags + 2) float32 roundings relative (30 * 15 * eps = 5.4e-5; measured: at most 4e-6).
    for (key, loss, grads), (their_key, their_loss, their_grads) in zip(ours, theirs):
        rtol = float_tol(key * (config.n_tags + 2))
        assert key == their_key and loss == pytest.approx(their_loss, rel=rtol)
        assert set(grads) == set(their_grads) >= set(CRF_PARAMS)
        for name, grad in their_grads.items():
            assert np.linalg.norm(grads[name] - grad) <= rtol * np.linalg.norm(grad), (key, name)
        assert all(np.abs(grads[name]).max() > 0 for name in CRF_PARAMS) or key == 1
