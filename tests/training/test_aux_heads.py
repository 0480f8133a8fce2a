"""Auxiliary training heads: the POS head (multi-task) and the language-model loss (Rei 2017).

Gradients are checked against NumPy written from the definition (weighted cross-entropy, mean over
the positions that have a label); the exported POS output against MXNet's graph; the tagger's POS
tags against MXNet's probabilities.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import mxnet as mx
import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from helpers import SENTENCES, PackageGraph, float_tol, make_checkpoint, network_terms, random_features
from ner_fast import Tagger
from ner_fast.checkpoint import ModelConfig, init_params, pack_params, param_shapes, unpack_params
from ner_fast.cli.train import train_command
from ner_fast.features import CASING_CLASSES, ROW_POS, ROW_WORD, featurize
from ner_fast.training.model import make_sym_gen, pos_output_index
from ner_fast.training.export import POS_OUTPUT_NAME, export_model
from ner_fast.package import load_package
from ner_fast.prepare import prepare
from ner_fast.config import TrainConfig
from ner_fast.training.train import train
from ner_fast.vocab import UNK

CONFIG = ModelConfig(
    n_words=40, n_chars=25, n_tags=5, max_token_chars=6, n_pos=9, n_casing=len(CASING_CLASSES) + 1,
    use_casing=True, use_pos=False, filter_widths=[2, 3], filters=4, word_dim=6, char_dim=5, casing_dim=3,
    hidden=7, num_layers=2, dropout=0.0, pos_aux_weight=0.7, lm_aux_weight=0.3, lm_vocab=12, lm_dim=4,
)  # fmt: skip
AUX_NAMES = {"pos_fc_weight", "pos_fc_bias"} | {
    f"lm_{d}_{part}_{kind}" for d in ("fwd", "bwd") for part in ("hidden", "out") for kind in ("weight", "bias")
}


def features(rng: np.random.Generator, lengths: list[int], seq_len: int, config: ModelConfig = CONFIG) -> np.ndarray:
    """Random features (B, F, seq_len) with POS ids as labels, zero beyond each length."""
    return random_features(rng, lengths, seq_len, config, first_pos=2)


def _module(config: ModelConfig, x: np.ndarray, label: np.ndarray, params: dict[str, np.ndarray]) -> mx.mod.Module:
    mod = mx.mod.Module(make_sym_gen(config)(x.shape[2])[0], data_names=("data",), label_names=("softmax_label",))
    mod.bind(data_shapes=[("data", x.shape)], label_shapes=[("softmax_label", label.shape)])
    mod.init_params(arg_params={n: mx.nd.array(a) for n, a in pack_params(config, params).items()})
    return mod


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _xent_bias_grad(proba: np.ndarray, target: np.ndarray, weight: float) -> np.ndarray:
    """d(weight * mean cross-entropy over positions with target > 0)/d(output bias), from the
    probabilities (N, C) and targets (N,)."""
    keep = target > 0
    onehot = np.eye(proba.shape[1])[target[keep]]
    return weight * (proba[keep] - onehot).sum(axis=0) / keep.sum()


def test_aux_parameters_are_in_every_bucket_graph_in_the_same_order() -> None:
    """BucketingModule shares one optimizer keyed by parameter position: every length, 1 included,
    must list the same parameters, heads included, in the same order."""
    for crf, fused in ((False, False), (True, False), (True, True)):
        config = dataclasses.replace(CONFIG, crf=crf, fused=fused)
        lists = {}
        for seq_len in (1, 2, 9):
            sym, _, _ = make_sym_gen(config)(seq_len)
            shapes, _, _ = sym.infer_shape(data=(3, config.n_features, seq_len), softmax_label=(3, seq_len))
            lists[seq_len] = [(n, tuple(s)) for n, s in zip(sym.list_arguments(), shapes) if n not in ("data", "softmax_label")]
        expected = param_shapes(config)
        if fused:
            expected = {n: a.shape for n, a in pack_params(config, init_params(config)).items()}
        assert AUX_NAMES <= set(expected)
        assert dict(lists[9]) == expected, (crf, fused)
        assert lists[1] == lists[2] == lists[9], (crf, fused)


@pytest.mark.parametrize("crf", [False, True])
@pytest.mark.numeric
def test_aux_losses_give_the_weighted_mean_cross_entropy_gradient(crf: bool) -> None:
    rng = np.random.default_rng(0)
    config = dataclasses.replace(CONFIG, crf=crf)
    params = {n: (a + rng.normal(0, 0.3, a.shape)).astype(np.float32) for n, a in init_params(config, 1).items()}
    x = features(rng, [6, 3, 1], 6)
    x[1, ROW_POS, 2] = 0  # an unlabelled real token: no POS loss there
    label = np.full((3, 6), -1, dtype=np.float32)
    for b, n in enumerate([6, 3, 1]):
        label[b, :n] = rng.integers(0, config.n_tags, n)
    mod = _module(config, x, label, params)
    mod.forward(mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(label)]), is_train=True)
    outputs = [o.asnumpy() for o in mod.get_outputs()]
    mod.backward()
    grads = unpack_params(
        config, {n: g[0].asnumpy() for n, g in zip(mod._exec_group.param_names, mod._exec_group.grad_arrays)}
    )

    pos_proba = outputs[pos_output_index(config)].transpose(0, 2, 1).reshape(-1, config.n_pos)
    np.testing.assert_allclose(pos_proba.sum(axis=1), 1, atol=float_tol(config.n_pos + 1))  # a float32 softmax
    # A bias gradient is a float32 sum over every position of (p - onehot) (each at most 1 in size) over
    # the count, times the weight: positions + 3 roundings on a total of 2 * weight.
    bias_tol = float_tol(pos_proba.shape[0] + 3, 2 * max(config.pos_aux_weight, config.lm_aux_weight))
    expected = _xent_bias_grad(pos_proba, x[:, ROW_POS].reshape(-1), config.pos_aux_weight)
    np.testing.assert_allclose(grads["pos_fc_bias"], expected, atol=bias_tol)

    # Next word (forward LSTM) and previous word (backward one); ids beyond lm_vocab count as UNK.
    words = x[:, ROW_WORD].astype(np.int64)
    nxt = np.zeros_like(words)
    nxt[:, :-1] = words[:, 1:]
    prev = np.zeros_like(words)
    prev[:, 1:] = words[:, :-1]
    assert (words >= config.lm_vocab).any()
    for d, target, out in (("fwd", nxt, outputs[-2]), ("bwd", prev, outputs[-1])):
        target = np.where(target >= config.lm_vocab, UNK, target).reshape(-1)
        proba = out.transpose(0, 2, 1).reshape(-1, config.lm_vocab)
        expected = _xent_bias_grad(proba, target, config.lm_aux_weight)
        np.testing.assert_allclose(grads[f"lm_{d}_out_bias"], expected, atol=bias_tol, err_msg=d)


@pytest.fixture(scope="module")
def head_model(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    folder = tmp_path_factory.mktemp("aux")
    config, params, vocabs = make_checkpoint(
        folder / "model", buckets=[3, 6], use_pos=False, pos_aux_weight=1.0, lm_aux_weight=0.1, lm_vocab=10, crf=True,
        decode="bio",
    )
    package = export_model(folder / "model", folder / "pkg", buckets="auto", quantize=None)
    return config, params, vocabs, package


def _mxnet_pos_proba(config: ModelConfig, params: dict, x: np.ndarray) -> np.ndarray:
    """The POS head's probabilities (B, L, n_pos) from MXNet's training graph, run for inference."""
    label = np.zeros(x[:, 0].shape, dtype=np.float32)
    mod = _module(config, x, label, params)
    mod.forward(mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(label)]), is_train=False)
    return mod.get_outputs()[pos_output_index(config)].asnumpy().transpose(0, 2, 1)


@pytest.mark.numeric
def test_exported_pos_output_matches_mxnet_and_drops_the_lm_head(head_model: tuple) -> None:
    config, params, vocabs, package = head_model
    pkg = load_package(package)
    assert pkg.model["pos_tags"] == vocabs.pos.itos
    assert pkg.model["pos_output"]["name"] == POS_OUTPUT_NAME
    graph = onnx.load(str(pkg.graph_path(None)), load_external_data=False)
    names = {t.name for t in graph.graph.initializer}
    assert "pos_fc_weight_t" in names and not any(n.startswith("lm_") for n in names)
    rng = np.random.default_rng(2)
    for seq_len in (3, 6, None):
        session = PackageGraph(pkg, seq_len)  # the character graph feeds a format-2 package's second input
        length = seq_len or 11
        x = features(rng, [length, 2, 1], length, config)
        x[:, ROW_POS] = 0  # what the tagger feeds: no POS input
        probs, pos_probs = session.run(None, {"features": x})
        expected = _mxnet_pos_proba(config, params, x)
        real = x[:, ROW_WORD] > 0
        assert pos_probs.shape == (3, length, config.n_pos) and probs.shape == (3, length, config.n_tags)
        # onnxruntime against MXNet, both float32: every operation of the network over the sentence.
        assert np.abs(pos_probs - expected)[real].max() <= float_tol(network_terms(config, length))


def test_tagger_returns_pos_tags_of_the_head(head_model: tuple) -> None:
    config, params, vocabs, package = head_model
    tagger = Tagger.load(package, device="cpu", threads=1)
    assert tagger.pos_tags == vocabs.pos.itos and not tagger.uses_pos
    sentences = [SENTENCES[0], SENTENCES[1][:2], ["Zyxwv"] * 9, []]
    tags, pos = tagger.tag_batch(sentences, batch_size=2, return_pos=True)
    assert tags == tagger.tag_batch(sentences, batch_size=2)
    tags3, probs, pos3 = tagger.tag_batch(sentences, proba=True, return_pos=True)
    assert (tags3, pos3) == (tags, pos) and len(probs) == len(sentences)
    assert pos is not None and [len(p) for p in pos] == [len(s) for s in sentences]
    for words, got in zip(sentences, pos):
        if not words:
            continue
        x = featurize(words, None, vocabs, config.max_token_chars).matrix.T[None]
        expected = _mxnet_pos_proba(config, params, np.ascontiguousarray(x))[0]
        # Never <pad> or <unk>: the best real POS tag.
        assert got == [vocabs.pos.itos[i] for i in (expected[:, 2:].argmax(axis=1) + 2)]


def test_a_package_without_a_pos_head_returns_none(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "model")
    tagger = Tagger.load(export_model(tmp_path / "model", tmp_path / "pkg", quantize=None), device="cpu")
    assert tagger.pos_tags is None
    tags, pos = tagger.tag_batch([SENTENCES[2]], [["NN"] * len(SENTENCES[2])], return_pos=True)
    assert pos is None and len(tags[0]) == len(SENTENCES[2])


def test_training_with_the_heads_logs_pos_accuracy(tmp_path: Path) -> None:
    data = tmp_path / "prepared"
    # A bucket of length 1 too: the heads' parameters are shared with it.
    prepared = prepare(max_sentences=160, buckets=[1, 12, 20, 30], batch_size=16)
    prepared.save(data)
    valid_pos = np.concatenate([b.features[:, ROW_POS].ravel() for b in prepared.splits["valid"]])
    majority = np.bincount(valid_pos[valid_pos > 0]).max() / (valid_pos > 0).sum()
    arch = {"hidden": 12, "word_dim": 12, "filters": 6, "char_dim": 8, "crf": False, "use_pos": False,
            "pos_aux_weight": 1.0, "lm_aux_weight": 0.1, "lm_vocab": 50, "lm_dim": 8}  # fmt: skip
    cfg = TrainConfig(out=str(tmp_path / "run"), data=str(data), batch_size=16, epochs=3, patience=0,
                      learning_rate=0.02, arch=arch)  # fmt: skip
    result = train(cfg, progress=False, echo=lambda msg: None)
    accuracy = [h[split]["pos_accuracy"] for h in result.history for split in ("train", "valid")]
    assert len(accuracy) == 6 and all(0 <= a <= 1 for a in accuracy)
    # The head learns: better than at first, and better than always answering the most frequent tag.
    assert result.history[-1]["train"]["pos_accuracy"] > result.history[0]["train"]["pos_accuracy"]
    assert result.history[-1]["valid"]["pos_accuracy"] > majority


def test_a_pos_head_cannot_read_pos_too(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="POS head"):
        dataclasses.replace(CONFIG, use_pos=True)
    res = CliRunner().invoke(
        train_command, ["--max-sentences", "50", "--out", str(tmp_path / "r"), "--pos", "--pos-aux-weight", "1", "--no-progress"]
    )
    assert res.exit_code == 2 and "POS head" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()  # refused before anything was written
