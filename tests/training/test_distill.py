"""Case robustness (`--recase`, `recase.py`) and distillation (`--teacher`, `training/distill.py`,
`model.distill_loss_symbol`).

The re-casing oracle is a plain loop written here; the distillation loss's oracle is NumPy's soft
cross-entropy over the network's own probabilities (`Predictor`, the inference graph, whose logits the
loss reads up to a constant per token that a softmax ignores). Every run is a tiny network on the first
sentences of the bundled corpus (tests/training/test_train.py's TINY).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import float_tol, network_terms
from ner_fast.checkpoint import init_params
from ner_fast.cli.train import train_command
from ner_fast.config import OptionError, TrainConfig
from ner_fast.corpus import read_corpus
from ner_fast.features import ROW_CASING, ROW_CHARS, ROW_WORD, featurize
from ner_fast.prepare import prepare
from ner_fast.recase import MODES, origin_of, recase_plan, with_recased_copies
from ner_fast.tagger import Tagger
from ner_fast.training.distill import resolve_teachers, soften, teacher_arrays, teacher_distributions
from ner_fast.training.train import train
from training.test_train import TINY, TINY_FLAGS

SENTENCES = 160
SMALL = {"max_sentences": SENTENCES, "buckets": [12, 20, 30], "batch_size": 16, "keep_long": False}


def _quiet(msg: str) -> None:
    pass


def _sentences(corpus: Any) -> list[list[str]]:
    return [corpus.words[a:b] for a, b in zip(corpus.offsets[:-1].tolist(), corpus.offsets[1:].tolist())]


def _plain_recase(word: str, mode: str) -> str:
    # The rule, written out again: title-casing upper-cases the first character and lower-cases the rest.
    if mode == "lower":
        return "".join(c.lower() for c in word)
    if mode == "upper":
        return "".join(c.upper() for c in word)
    return "".join(c.upper() if i == 0 else c.lower() for i, c in enumerate(word))


# --------------------------------------------------------------------------- re-casing


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.5, 1.0])
def test_the_recase_plan_is_deterministic_and_mixes_half_lower_a_quarter_upper_and_title(fraction: float) -> None:
    n = 203
    origins, modes = recase_plan(n, fraction)
    again = recase_plan(n, fraction)
    assert np.array_equal(origins, again[0]) and np.array_equal(modes, again[1])
    k = round(fraction * n)
    assert len(origins) == len(modes) == k and len(set(origins.tolist())) == k  # one copy a sentence at most
    assert np.all(np.diff(origins) > 0) and (k == 0 or (origins.min() >= 0 and origins.max() < n))
    counts = [int((modes == m).sum()) for m in range(len(MODES))]
    assert counts == [k // 2, k // 4, k - k // 2 - k // 4]
    if 0 < k < n:
        assert not np.array_equal(origins, recase_plan(n, fraction, seed=1)[0])  # the seed draws the sentences


def test_recased_copies_follow_the_sentences_with_their_tags_and_map_back() -> None:
    corpus = read_corpus(None)[:50]
    out = with_recased_copies(corpus, 0.5)
    origins, modes = recase_plan(50, 0.5)
    assert len(out) == 50 + len(origins) and len(origins) == 25
    assert out.words[: corpus.n_tokens] == corpus.words and out.tags[: corpus.n_tokens] == corpus.tags
    seen = set()
    for k, (i, m) in enumerate(zip(origins.tolist(), modes.tolist())):
        copy, original = out.sentence(50 + k), corpus.sentence(i)
        assert copy.words == [_plain_recase(w, MODES[m]) for w in original.words]
        assert copy.tags == original.tags and copy.pos == original.pos
        seen.add(MODES[m])
    assert seen == set(MODES)
    indices = np.array([3, 49, 50, 74])
    assert origin_of(indices, 50, 0.5).tolist() == [3, 49, origins[0], origins[24]]
    with pytest.raises(ValueError, match="beyond"):
        origin_of(np.array([75]), 50, 0.5)


def test_prepare_with_recase_adds_the_copies_features_and_keeps_the_vocabularies() -> None:
    plain = prepare(**SMALL)
    recased = prepare(**SMALL, recase=0.5)
    assert recased.vocabs == plain.vocabs  # built on the original sentences
    n = plain.settings["recase_of"]
    assert recased.settings["recase"] == 0.5 and recased.summary["splits"]["train"]["recased_copies"] == round(0.5 * n)
    copies = with_recased_copies(recased.corpora["train"], 0.5)
    expected = featurize(copies.words, None, plain.vocabs, 20).matrix
    checked = 0
    for bucket in recased.splits["train"]:
        for row, (i, length) in enumerate(zip(bucket.indices.tolist(), bucket.lengths.tolist())):
            a = int(copies.offsets[i])
            got = bucket.features[row, :, :length].T
            assert np.array_equal(got[:, [ROW_WORD, ROW_CASING]], expected[a : a + length, [ROW_WORD, ROW_CASING]])
            assert np.array_equal(got[:, ROW_CHARS:], expected[a : a + length, ROW_CHARS:])
            checked += i >= n
    assert checked == round(0.5 * n)
    # Lower-casing keeps the (lower-cased) word ids and changes casing classes.
    assert plain.vocabs.lowercase


# --------------------------------------------------------------------------- the loss


@pytest.mark.numeric
@pytest.mark.parametrize("crf", [True, False])
def test_the_distillation_loss_and_its_gradient_are_numpys_soft_cross_entropy(crf: bool) -> None:
    import mxnet as mx

    from ner_fast.training.epoch import make_module
    from ner_fast.training.iterators import BucketIter
    from ner_fast.training.model import Distill, Predictor
    from ner_fast.training.run_setup import model_config_for

    data = prepare(**SMALL)
    cfg = TrainConfig(out="", batch_size=16, arch={**TINY, "crf": crf, "dropout": 0.0})
    config = model_config_for(cfg, data.vocabs, 20)
    params = init_params(config, 3)
    params["fc_bias"] = np.random.default_rng(1).normal(0, 1, config.n_tags).astype(np.float32)  # not uniform
    rng = np.random.default_rng(0)
    buckets = data.splits["train"]
    teacher = []
    for b in buckets:
        q = rng.dirichlet(np.ones(config.n_tags), size=(len(b), b.length)).astype(np.float32)
        q[np.arange(b.length)[None, :] >= b.lengths[:, None]] = 0  # padding
        teacher.append(q)
    temperature = 2.0
    it = BucketIter(buckets, 16, teacher=teacher)
    batch = next(iter(it))
    features = batch.data[0].asnumpy()
    q = batch.label[1].asnumpy()
    labels = batch.label[0].asnumpy()
    real = labels >= 0
    # The oracle: NumPy, from the inference graph's probabilities.
    p = Predictor(config, params).predict_proba(features).astype(np.float64)
    log_pt = np.log(p) / temperature
    log_pt -= np.log(np.exp(log_pt - log_pt.max(-1, keepdims=True)).sum(-1, keepdims=True)) + log_pt.max(-1, keepdims=True)
    n = max(int(real.sum()), 1)
    loss = -(q * log_pt).sum() / n
    # d loss / d logits = (softmax(z / T) - q) / (T n) on real tokens, scaled by ALPHA T^2; fc_bias sums it.
    grad_bias = temperature * ((np.exp(log_pt) - q) * real[..., None]).sum(axis=(0, 1)) / n

    grads = {}
    for weight in (0.0, 1.0, 0.3):
        module = make_module(config, params, [mx.cpu()], 16, it.default_bucket_key, Distill(weight, temperature))
        module.forward(batch, is_train=True)
        module.backward()
        got = float(module.get_outputs()[-1].asnumpy()[0])
        assert got == pytest.approx(loss, rel=float_tol(4 * config.n_tags * 16 * batch.bucket_key, 10))
        grads[weight] = module._curr_module._exec_group.grad_arrays[
            module._curr_module._exec_group.param_names.index("fc_bias")][0].asnumpy()
    tol = float_tol(16 * batch.bucket_key * (config.n_tags + 4), 1)
    np.testing.assert_allclose(grads[1.0], grad_bias, atol=tol)
    assert np.abs(grads[0.0]).max() > 10 * tol  # the gold loss's own gradient
    # ALPHA weighs the two: (1 - ALPHA) gold + ALPHA distillation.
    np.testing.assert_allclose(grads[0.3], 0.7 * grads[0.0] + 0.3 * grads[1.0], atol=tol)


def _crf_expectations(logp: np.ndarray, crf: Any) -> tuple[np.ndarray, np.ndarray]:
    """One sentence's (L, T) log-probabilities under a CRF, by forward-backward in float64: each token's
    tag marginals (L, T) and each neighbouring pair's (L - 1, T, T), (from, to)."""
    def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
        return np.logaddexp.reduce(x, axis=axis)

    n = len(logp)
    alpha, beta = np.zeros_like(logp), np.zeros_like(logp)
    alpha[0], beta[-1] = crf.start + logp[0], crf.end
    for t in range(1, n):
        alpha[t] = logsumexp(alpha[t - 1][:, None] + crf.transitions, axis=0) + logp[t]
    for t in range(n - 2, -1, -1):
        beta[t] = logsumexp(crf.transitions + (logp[t + 1] + beta[t + 1])[None, :], axis=1)
    log_z = np.logaddexp.reduce(alpha[-1] + crf.end)
    pairs = np.exp(alpha[:-1, :, None] + crf.transitions[None] + (logp[1:] + beta[1:])[:, None, :] - log_z)
    return np.exp(alpha + beta - log_z), pairs


@pytest.mark.numeric
def test_the_crf_target_moves_the_students_crf_marginals_towards_the_teachers() -> None:
    """`--distill-target crf`: at ALPHA 1 each logit's gradient is the student's CRF marginal minus the
    teacher's, each transition's the student's pair marginal minus the product of the teacher's two, start's
    and end's those of the first and last tokens (NumPy's forward-backward over the inference graph's
    probabilities and the CRF's scores), over the batch's real tokens: the bias sums the logits', and the
    CRF's parameters, shared with the gold loss, get them whole. ALPHA mixes it with the gold loss."""
    import mxnet as mx

    from ner_fast.decode import CRF, crf_marginals
    from ner_fast.training.epoch import make_module
    from ner_fast.training.iterators import BucketIter
    from ner_fast.training.model import Distill, Predictor
    from ner_fast.training.run_setup import model_config_for

    data = prepare(**SMALL)
    cfg = TrainConfig(out="", batch_size=16, arch={**TINY, "crf": True, "dropout": 0.0, "pos_aux_weight": 0.0})
    config = model_config_for(cfg, data.vocabs, 20)
    params = init_params(config, 3)
    rng = np.random.default_rng(2)
    for name in ("crf_transitions", "crf_start", "crf_end"):  # the CRF's own scores must count
        params[name] = rng.normal(0, 1, params[name].shape).astype(np.float32)
    teacher = []
    for b in data.splits["train"]:
        q = rng.dirichlet(np.ones(config.n_tags), size=(len(b), b.length)).astype(np.float32)
        q[np.arange(b.length)[None, :] >= b.lengths[:, None]] = 0
        teacher.append(q)
    it = BucketIter(data.splits["train"], 16, teacher=teacher)
    batch = next(iter(it))
    q, labels = batch.label[1].asnumpy().astype(np.float64), batch.label[0].asnumpy()
    lengths = (labels >= 0).sum(axis=1)
    p = Predictor(config, params).predict_proba(batch.data[0].asnumpy()).astype(np.float64)
    crf = CRF.from_params(params)
    expected = dict.fromkeys(("fc_bias", "crf_transitions", "crf_start", "crf_end"), 0.0)
    for b, n in enumerate(lengths[lengths > 0]):
        marginals, pairs = _crf_expectations(np.log(p[b, :n]), crf)
        assert np.allclose(marginals, crf_marginals(p[b, :n], crf), atol=1e-6)  # the two references agree
        expected["fc_bias"] += (marginals - q[b, :n]).sum(axis=0)
        expected["crf_transitions"] += pairs.sum(axis=0) - np.einsum("li,lj->ij", q[b, : n - 1], q[b, 1:n])
        expected["crf_start"] += marginals[0] - q[b, 0]
        expected["crf_end"] += marginals[-1] - q[b, n - 1]
    expected = {k: v / max(int(lengths.sum()), 1) for k, v in expected.items()}

    grads = {}
    for weight in (0.0, 1.0, 0.3):
        module = make_module(config, params, [mx.cpu()], 16, it.default_bucket_key, Distill(weight, 1.0, through_crf=True))
        module.forward(batch, is_train=True)
        module.backward()
        assert float(module.get_outputs()[-1].asnumpy()[0]) > 0  # log Z above any expected path score
        group = module._curr_module._exec_group
        grads[weight] = {k: group.grad_arrays[group.param_names.index(k)][0].asnumpy() for k in expected}
    # The probabilities through the float32 network (network_terms), then float64 marginals, summed over the tokens.
    tol = float_tol(16 * batch.bucket_key * (network_terms(config, batch.bucket_key) + config.n_tags + 4), 1)
    for name, want in expected.items():
        np.testing.assert_allclose(grads[1.0][name], want, atol=tol, err_msg=name)
        assert np.abs(grads[1.0][name] - grads[0.0][name]).max() > 2 * tol, name  # the teacher is not the gold tags
        np.testing.assert_allclose(grads[0.3][name], 0.7 * grads[0.0][name] + 0.3 * grads[1.0][name], atol=tol, err_msg=name)
    with pytest.raises(ValueError, match="needs a network with a CRF"):
        make_module(model_config_for(TrainConfig(out="", arch={**TINY, "crf": False}), data.vocabs, 20), params,
                    [mx.cpu()], 16, it.default_bucket_key, Distill(1.0, 1.0, through_crf=True))


def test_the_crf_target_needs_a_crf_student() -> None:
    with pytest.raises(OptionError, match="--distill-target: crf trains the student's CRF.*without --crf"):
        TrainConfig(out="x", teacher="default", distill_target="crf", arch={"crf": False})
    assert TrainConfig(out="x", teacher="default", distill_target="crf").distill_target == "crf"


def test_soften_is_the_softmax_of_log_probabilities_over_t() -> None:
    p = np.array([[0.7, 0.2, 0.1], [1.0, 0.0, 0.0]], dtype=np.float32)
    assert np.array_equal(soften(p, 1.0), p)
    q = soften(p, 2.0)
    plain = np.sqrt([0.7, 0.2, 0.1]) / np.sqrt([0.7, 0.2, 0.1]).sum()
    np.testing.assert_allclose(q[0], plain, rtol=1e-6)
    np.testing.assert_allclose(q.sum(axis=1), 1, rtol=1e-6)
    assert q[1, 0] == pytest.approx(1.0) and q[1, 1] < 1e-6


# --------------------------------------------------------------------------- training runs


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("teacher") / "run"
    train(TrainConfig(out=str(out), epochs=1, patience=0, arch=TINY, **SMALL), progress=False, echo=_quiet)
    return str(out)


def _cfg(out: Path, **kw: Any) -> TrainConfig:
    return TrainConfig(out=str(out), epochs=2, patience=0, arch=dict(TINY), **{**SMALL, **kw})


def test_weight_0_trains_exactly_as_without_a_teacher(teacher_run: str, tmp_path: Path) -> None:
    plain = train(_cfg(tmp_path / "plain"), progress=False, echo=_quiet)
    zero = train(_cfg(tmp_path / "zero", teacher=teacher_run, distill_weight=0.0), progress=False, echo=_quiet)
    some = train(_cfg(tmp_path / "some", teacher=teacher_run, distill_weight=0.5), progress=False, echo=_quiet)
    assert zero.params_sha256 == plain.params_sha256
    assert some.params_sha256 != plain.params_sha256  # the teacher does reach the student


def test_a_run_teacher_gives_its_own_probabilities_and_teacher_rows_follow_the_origins(teacher_run: str) -> None:
    from ner_fast.checkpoint import load_model
    from ner_fast.training.model import predict_proba

    data = prepare(**SMALL, recase=0.5)
    sentences = _sentences(data.corpora["train"])
    tags = data.vocabs.tags.itos[::-1]  # another column order: the teacher's are put in it
    dists = teacher_distributions(resolve_teachers(teacher_run), sentences, tags)
    config, params, vocabs, _ = load_model(teacher_run, "best")
    order = [vocabs.tags.itos.index(t) for t in tags]
    for i in (0, 7, 100):
        words = sentences[i]
        features = featurize(words, None, vocabs, 20).matrix.T[None]
        expected = predict_proba(params, config, features)[0][:, order]
        np.testing.assert_allclose(dists[i], expected, atol=1e-6)
    arrays = teacher_arrays(data.splits["train"], dists, 0.5, 1.0)
    n = len(sentences)
    origins, _ = recase_plan(n, 0.5)
    checked = 0
    for bucket, array in zip(data.splits["train"], arrays):
        for row, (i, length) in enumerate(zip(bucket.indices.tolist(), bucket.lengths.tolist())):
            source = i if i < n else int(origins[i - n])
            assert np.array_equal(array[row, :length], dists[source][:length])
            assert not array[row, length:].any()
            checked += i >= n
    assert checked == len(origins) > 0


def test_the_bundled_ensemble_teacher_is_the_taggers_probabilities() -> None:
    from ner_fast.tagger import Tagger

    sentences = _sentences(read_corpus(None)[:20])
    tagger = Tagger.load("ensemble")
    _, probs = tagger.tag_batch(sentences, proba=True)
    dists = teacher_distributions(resolve_teachers("ensemble"), sentences, tagger.tags)
    assert len(dists) == 20 and all(np.array_equal(a, b) for a, b in zip(dists, probs))


def test_marginals_are_each_teachers_crf_marginals_in_the_students_tag_order(teacher_run: str) -> None:
    # --distill-target marginals: a CRF teacher's distributions go through its CRF scores (checked against
    # brute force in tests/test_crf.py) before the columns are put in the student's order.
    from ner_fast.checkpoint import load_model
    from ner_fast.decode import CRF, crf_marginals
    from ner_fast.tagger import Tagger

    sentences = _sentences(read_corpus(None)[:12])
    tagger = Tagger.load("ensemble")
    _, probs = tagger.tag_batch(sentences, proba=True)
    crf = CRF.from_json(tagger.package.model["crf"])
    tags = list(tagger.tags)[::-1]
    order = [list(tagger.tags).index(t) for t in tags]
    dists = teacher_distributions(resolve_teachers("ensemble"), sentences, tags, target="marginals")
    assert len(dists) == 12
    for got, p in zip(dists, probs):
        assert np.array_equal(got, crf_marginals(p, crf)[:, order])
    assert any(not np.allclose(got, p[:, order], atol=1e-3) for got, p in zip(dists, probs))  # the scores count
    config, params, vocabs, _ = load_model(teacher_run, "best")
    assert config.crf
    run_tags = list(vocabs.tags.itos)
    tags = run_tags[::-1]
    back = [run_tags.index(t) for t in tags]
    plain = teacher_distributions(resolve_teachers(teacher_run), sentences, tags)
    marginal = teacher_distributions(resolve_teachers(teacher_run), sentences, tags, target="marginals")
    for m, p in zip(marginal, plain):
        assert np.array_equal(m, crf_marginals(p[:, np.argsort(back)], CRF.from_params(params))[:, back])


@pytest.mark.numeric
def test_a_teacher_of_gold_one_hots_gives_the_gold_gradient() -> None:
    """With a softmax output, T = 1 and ALPHA = 1, the soft cross-entropy against one-hot gold is the gold
    cross-entropy itself. Checked on the path training takes: the one-hot distributions go through
    `teacher_arrays` into a shuffled `BucketIter` as `set_up` builds it; every batch of an epoch carries, exactly,
    the one-hot of its own gold labels (zeros on padding), and on the first batch of each bucket length a
    module distilling at ALPHA 1 gives every parameter the gradient the gold loss gives (ALPHA 0), within
    float32 rounding. Whole runs are not compared: Adam turns rounding-sized gradients of either sign into
    steps of the learning rate, and `max`'s gradient goes whole to every tied position (the character CNN's
    fully padded windows tie), ties that other kernels break by rounding, so two such runs drift apart
    further on AVX2 (oneDNN's AVX2 kernels: 40-66% of the distance to a run with misplaced teacher rows)."""
    import mxnet as mx

    from ner_fast.training.distill import teacher_arrays
    from ner_fast.training.epoch import make_module
    from ner_fast.training.iterators import BucketIter
    from ner_fast.training.model import Distill
    from ner_fast.training.run_setup import model_config_for

    data = prepare(**SMALL)
    corpus = data.corpora["train"]
    tags = data.vocabs.tags.itos
    eye = np.eye(len(tags), dtype=np.float32)
    ids = np.array([tags.index(t) for t in corpus.tags])
    onehots = [eye[ids[a:b]] for a, b in zip(corpus.offsets[:-1].tolist(), corpus.offsets[1:].tolist())]
    it = BucketIter(data.splits["train"], 16, shuffle=True, seed=5, teacher=teacher_arrays(data.splits["train"], onehots, 0.0, 1.0))
    cfg = TrainConfig(out="", batch_size=16, arch={**TINY, "crf": False, "dropout": 0.0, "pos_aux_weight": 0.0})
    config = model_config_for(cfg, data.vocabs, 20)
    params = init_params(config, 3)
    modules = {}
    checked, compared = 0, set()
    for batch in it:
        labels = batch.label[0].asnumpy().astype(int)
        real = labels >= 0
        expected = np.zeros((*labels.shape, len(tags)), np.float32)
        expected[real] = eye[labels[real]]
        assert np.array_equal(batch.label[1].asnumpy(), expected)
        checked += int(real.sum())
        if batch.bucket_key in compared:
            continue
        compared.add(batch.bucket_key)
        grads = {}
        for alpha in (0.0, 1.0):
            if alpha not in modules:
                modules[alpha] = make_module(config, params, [mx.cpu()], 16, it.default_bucket_key, Distill(alpha, 1.0))
            module = modules[alpha]
            module.forward(batch, is_train=True)
            module.backward()
            group = module._curr_module._exec_group
            grads[alpha] = {name: group.grad_arrays[i][0].asnumpy() for i, name in enumerate(group.param_names)}
        # The two differ in d loss / d logits by the rounding of softmax - q (a few operations over n_tags);
        # the same backward carries that through the network, summed over the batch's positions.
        terms = 16 * batch.bucket_key * (network_terms(config, batch.bucket_key) + config.n_tags + 4)
        for name, gold in grads[0.0].items():
            assert np.abs(gold).max() > 0, name
            np.testing.assert_allclose(grads[1.0][name], gold, rtol=0, atol=float_tol(terms, float(np.abs(gold).max())), err_msg=name)
    lengths = np.diff(corpus.offsets)
    assert checked == int(np.minimum(lengths, max(SMALL["buckets"])).sum()) and len(compared) >= 2  # (cut to the largest bucket)


@pytest.mark.parametrize("target", ["probs", "marginals"])
def test_a_teachers_tags_the_student_lacks_count_as_o(target: str) -> None:
    # A GMB slice without `eve` or `art`, distilled from the bundled ensemble: those tags' probability goes to O,
    # every other column is the teacher's own (its marginals over all its tags, for `marginals`).
    from ner_fast.decode import crf_marginals

    sentences = _sentences(read_corpus(None)[:12])
    tagger = Tagger.load("ensemble")
    student = [t for t in tagger.tags if not t.endswith(("-eve", "-art"))][::-1]
    said: list[str] = []
    dists = teacher_distributions(resolve_teachers("ensemble"), sentences, student, say=said.append, target=target)
    dropped = [i for i, t in enumerate(tagger.tags) if t not in student]
    assert said[-1] == f"--teacher ensemble: its tags the training data lacks ({', '.join(tagger.tags[i] for i in dropped)}) count as O"
    _, probs = tagger.tag_batch(sentences, proba=True)
    if target == "marginals":
        probs = [crf_marginals(p, tagger.crf) for p in probs]
    moved = 0.0
    for got, p in zip(dists, probs):
        p = np.asarray(p, np.float64)
        expected = p[:, [tagger.tags.index(t) for t in student]]
        expected[:, student.index("O")] += p[:, dropped].sum(axis=1)
        np.testing.assert_allclose(got, expected, atol=float_tol(len(tagger.tags), 1.0))
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=float_tol(len(tagger.tags), 1.0))
        moved += float(p[:, dropped].sum())
    assert len(dists) == 12 and moved > 0  # the teacher did put some probability on the dropped tags


def test_an_iobes_teachers_s_and_e_go_to_b_and_i_of_an_iob2_student(tmp_path: Path) -> None:
    # IOBES refines IOB2: S-X is B-X there, E-X is I-X. The oracle: the teacher run's own probabilities.
    from helpers import make_checkpoint
    from ner_fast.checkpoint import load_model
    from ner_fast.corpus import Corpus
    from ner_fast.training.model import predict_proba

    iobes = [(["Angela", "Merkel", "visited", "Paris", "."], ["B-per", "E-per", "O", "S-geo", "O"]),
             (["The", "UN", "met", "in", "New", "York", "."], ["O", "S-org", "O", "O", "B-geo", "E-geo", "O"])]
    make_checkpoint(tmp_path / "iobes", with_pos=False, corpus=Corpus.from_sentences([w for w, _ in iobes], None, [t for _, t in iobes]))
    student = ["O", "B-geo", "I-geo", "B-per", "I-per"]  # no org: its S-org goes to O
    sentences = [w for w, _ in iobes]
    said: list[str] = []
    dists = teacher_distributions(resolve_teachers(str(tmp_path / "iobes")), sentences, student, say=said.append)
    assert said[-1].endswith("its tags the training data lacks (S-org) count as O")
    config, params, vocabs, _ = load_model(tmp_path / "iobes", "best")
    names = vocabs.tags.itos
    into = {"O": ["O", "S-org"], "B-geo": ["B-geo", "S-geo"], "I-geo": ["E-geo"], "B-per": ["B-per"], "I-per": ["E-per"]}
    assert sorted(sum(into.values(), [])) == sorted(names)  # every teacher tag lands once
    for words, got in zip(sentences, dists):
        p = predict_proba(params, config, featurize(words, None, vocabs, config.max_token_chars).matrix.T[None])[0].astype(np.float64)
        expected = np.stack([p[:, [names.index(t) for t in into[s]]].sum(axis=1) for s in student], axis=1)
        np.testing.assert_allclose(got, expected, atol=float_tol(len(names), 1.0))
        assert (expected[:, student.index("I-geo")] > 0).all()  # E-geo's share is there
    # The other way an IOB2 teacher cannot say where an IOBES entity ends: refused before tagging.
    said.clear()
    with pytest.raises(OptionError, match="ensemble tags in IOB2, the training data in IOBES: .*E-, S-"):
        teacher_distributions(resolve_teachers("ensemble"), sentences, ["O", "B-geo", "E-geo", "S-geo"], say=said.append)
    assert said == []


def test_refusals_are_one_line(teacher_run: str, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(train_command, ["--out", str(tmp_path / "a"), "--teacher", str(tmp_path / "nowhere"), "--no-progress",
                                        "--max-sentences", "160", *TINY_FLAGS])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"--teacher: {tmp_path / 'nowhere'}: no such file or folder" in res.output
    assert not (tmp_path / "a" / "config.json").exists()
    # The message names the difference, not two lists of 17 tags to compare by eye; and it comes before any
    # teacher tags (a mismatch of the second was found after the first had tagged the whole split).
    said: list[str] = []
    with pytest.raises(OptionError) as caught:
        teacher_distributions(resolve_teachers(f"ensemble,{teacher_run}"), [["A", "dog"]], ["O", "B-PER", "I-PER", "B-geo"],
                              say=said.append)
    assert str(caught.value) == ("--teacher: ensemble lacks tags of the training data (B-PER, I-PER): a teacher"
                                 " must know every tag of the student (the tags of DATA and --dev together)")
    assert said == []
    with pytest.raises(OptionError, match="knows tags the training data lacks .*no O tag"):
        teacher_distributions(resolve_teachers("ensemble"), [["A", "dog"]], [t for t in Tagger.load("ensemble").tags if t != "O"])
    folder = tmp_path / "prepared"
    prepare(**SMALL).save(folder)
    with pytest.raises(OptionError, match="--teacher: DATA is a prepared folder"):
        train(_cfg(tmp_path / "b", teacher=teacher_run, data=str(folder), max_sentences=None), progress=False, echo=_quiet)


def test_resume_refuses_a_teacher_that_changed_since_the_run_started(teacher_run: str, tmp_path: Path) -> None:
    # A resumed run tags with its teachers again; one whose files changed (re-trained, re-exported into the
    # same folder) would silently distil from another model mid-run. config.json records each teacher's
    # checksum: the resumed run compares it, refuses in one line, and leaves the run's files as they were.
    import shutil

    from ner_fast.config import resume_config

    teacher = tmp_path / "teacher"
    shutil.copytree(teacher_run, teacher)
    out = tmp_path / "student"
    train(_cfg(out, teacher=str(teacher)), progress=False, echo=_quiet)
    train(resume_config(out, epochs=3), resume=True, progress=False, echo=_quiet)  # the same teacher: goes on
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    train(_cfg(tmp_path / "other", seed=1), progress=False, echo=_quiet)
    shutil.copy(tmp_path / "other" / "best.params.npz", teacher / "best.params.npz")
    with pytest.raises(ValueError, match=f"--teacher {teacher}.*changed since the run started"):
        train(resume_config(out, epochs=4), resume=True, progress=False, echo=_quiet)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_teacher_that_reads_pos_is_refused_in_one_line(tmp_path: Path) -> None:
    # A teacher tags the training words alone. One that reads POS tags got none: a run teacher then tagged with
    # all-padding POS (distributions of a model fed what it never saw, silently), a package teacher failed
    # with the Python API's "pass pos=" message, naming no option.
    from ner_fast.training.export import export_model

    run = tmp_path / "pos-run"
    train(TrainConfig(out=str(run), epochs=1, patience=0, arch=dict(TINY, use_pos=True, pos_aux_weight=0.0), **SMALL),
          progress=False, echo=_quiet)
    package = export_model(run, tmp_path / "pos-package")
    for teacher in (run, package):
        with pytest.raises(OptionError, match=f"^--teacher: {teacher}: this model reads POS tags, which a teacher is not given"):
            resolve_teachers(str(teacher))


def test_a_teacher_run_without_best_parameters_says_why_as_load_model_does(tmp_path: Path) -> None:
    # "a training run without best.params.npz (it never finished an epoch)" was its own wording, and wrong for a
    # run stopped before its first epoch ended (it has last parameters): `checkpoint.check_has_params`, one rule.
    from helpers import make_checkpoint

    make_checkpoint(tmp_path / "run", with_pos=False)
    (tmp_path / "run" / "best.params.npz").rename(tmp_path / "run" / "last.params.npz")
    with pytest.raises(OptionError, match=r"^--teacher: .*run: a training run stopped before its first epoch ended, so"
                                          r" it has no best parameters yet: resume it"):
        resolve_teachers(str(tmp_path / "run"))
    (tmp_path / "run" / "last.params.npz").unlink()
    with pytest.raises(OptionError, match=r"^--teacher: .*run: a training run that has not finished an epoch yet"):
        resolve_teachers(str(tmp_path / "run"))
