"""The network: parameter names and shapes, fused == unrolled, a NumPy reference, padding invariance."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from ner_fast.atomic import atomic_write_bytes
from ner_fast.checkpoint import (
    ModelConfig,
    check_params,
    init_params,
    load_params,
    pack_params,
    param_shapes,
    save_params,
    unpack_params,
)
from ner_fast.features import CASING_CLASSES, ROW_CASING, ROW_CHARS, ROW_POS, ROW_WORD
from ner_fast.training.model import Predictor, make_sym_gen, predict_proba
from helpers import float_tol, network_terms, random_features

pytestmark = pytest.mark.numeric  # tolerances from helpers.float_tol; rerun under DNNL_MAX_CPU_ISA=AVX2

CONFIG = ModelConfig(
    n_words=40,
    n_chars=25,
    n_tags=5,
    max_token_chars=6,
    n_pos=7,
    n_casing=len(CASING_CLASSES) + 1,
    use_casing=True,
    filter_widths=[2, 3],
    filters=4,
    word_dim=6,
    char_dim=5,
    casing_dim=3,
    hidden=7,
    num_layers=2,
    crf=False,  # the softmax network; the CRF's own tests are in test_crf.py
    use_pos=True,  # POS as an input (the auxiliary POS head's tests are in test_aux_heads.py)
    pos_aux_weight=0.0,
)


def features(rng: np.random.Generator, lengths: list[int], seq_len: int, config: ModelConfig = CONFIG) -> np.ndarray:
    """Random int features (B, F, seq_len) in the documented layout, zero beyond each length."""
    return random_features(rng, lengths, seq_len, config, first_pos=1)


def reference_proba(config: ModelConfig, p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The network of docs/ARCHITECTURE.md in plain NumPy, one sentence at a time, no padding."""
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = config.hidden
    out = np.zeros((x.shape[0], x.shape[2], config.n_tags))
    for b in range(x.shape[0]):
        n = int((x[b, ROW_WORD] != 0).sum())
        tok = x[b, :, :n].T
        parts = [p["word_embed_weight"][tok[:, ROW_WORD]]]
        if config.use_casing:
            parts.append(p["casing_embed_weight"][tok[:, ROW_CASING]])
        if config.pos_enabled:
            parts.append(np.eye(config.n_pos)[tok[:, ROW_POS]])
        chars = p["char_embed_weight"][tok[:, ROW_CHARS:]]  # (n, C, char_dim)
        for w in config.filter_widths:
            kernel, bias = p[f"char_conv{w}_weight"][:, 0], p[f"char_conv{w}_bias"]
            windows = np.stack([chars[:, i : i + w] for i in range(config.max_token_chars - w + 1)], axis=1)
            conv = np.einsum("npwc,fwc->npf", windows, kernel) + bias
            parts.append(np.tanh(conv).max(axis=1))
        seq = np.concatenate(parts, axis=1)
        for k in range(config.num_layers):
            outs = []
            for d in ("fwd", "bwd")[: config.directions]:
                pre = f"lstm{k}_{d}_"
                steps = seq if d == "fwd" else seq[::-1]
                hs, hc, cc = [], np.zeros(h), np.zeros(h)
                for v in steps:
                    g = p[pre + "i2h_weight"] @ v + p[pre + "i2h_bias"] + p[pre + "h2h_weight"] @ hc + p[pre + "h2h_bias"]
                    i, f, c, o = sigmoid(g[:h]), sigmoid(g[h : 2 * h]), np.tanh(g[2 * h : 3 * h]), sigmoid(g[3 * h :])
                    cc = f * cc + i * c
                    hc = o * np.tanh(cc)
                    hs.append(hc)
                hs = np.array(hs)
                outs.append(hs if d == "fwd" else hs[::-1])
            seq = np.concatenate(outs, axis=1)
        logits = seq @ p["fc_weight"].T + p["fc_bias"]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        out[b, :n] = e / e.sum(axis=1, keepdims=True)
    return out


def _trained_like(config: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """Parameters with non-trivial biases (fresh ones are mostly zero), to test every term."""
    rng = np.random.default_rng(seed)
    return {n: (a + rng.normal(0, 0.3, a.shape)).astype(np.float32) for n, a in init_params(config, seed).items()}


# The same network with a forward-only LSTM (`directions` 1).
FORWARD_ONLY = dataclasses.replace(CONFIG, directions=1)


@pytest.mark.parametrize("directions", [2, 1])
def test_parameter_names_and_shapes_match_the_graph(directions: int) -> None:
    for fused in (False, True):
        config = dataclasses.replace(CONFIG, fused=fused, directions=directions)
        sym, data_names, label_names = make_sym_gen(config)(9)
        assert data_names == ("data",) and label_names == ("softmax_label",)
        shapes, out_shapes, _ = sym.infer_shape(data=(3, config.n_features, 9), softmax_label=(3, 9))
        got = dict(zip(sym.list_arguments(), shapes))
        expected = param_shapes(config)
        if fused:
            expected = {n: a.shape for n, a in pack_params(config, init_params(config)).items()}
        assert {n: tuple(s) for n, s in got.items() if n not in ("data", "softmax_label")} == expected
        assert out_shapes == [(3, config.n_tags, 9)]
        # A forward-only model has the forward LSTMs alone, and its layers are H wide, not 2H.
        lstm = [n for n in expected if n.startswith("lstm")]
        assert lstm and any("_bwd_" in n for n in lstm) == (directions == 2)
        assert expected["fc_weight"] == (config.n_tags, directions * config.hidden)


def test_pack_matches_mxnet_fused_cell_layout() -> None:
    params = _trained_like(CONFIG, 1)
    packed = pack_params(CONFIG, params)
    cell = mx.rnn.FusedRNNCell(CONFIG.hidden, num_layers=1, mode="lstm", prefix="lstm1_bwd_")
    theirs = cell.unpack_weights({"lstm1_bwd_parameters": mx.nd.array(packed["lstm1_bwd_parameters"])})
    for suffix in ("i2h_weight", "h2h_weight", "i2h_bias", "h2h_bias"):
        # MXNet names each gate's slice; stacking them in i, f, c, o order gives our canonical array.
        gates = [theirs[f"lstm1_bwd_l0_{suffix.split('_')[0]}{g}_{suffix.split('_')[1]}"].asnumpy() for g in "_i _f _c _o".split()]
        np.testing.assert_array_equal(np.concatenate(gates), params[f"lstm1_bwd_{suffix}"])
    back = unpack_params(CONFIG, packed)
    assert back.keys() == params.keys()
    for name in params:
        np.testing.assert_array_equal(back[name], params[name])


@pytest.mark.parametrize("config", [CONFIG, FORWARD_ONLY], ids=["bidirectional", "forward-only"])
def test_fused_and_unrolled_agree_with_numpy_reference(config: ModelConfig) -> None:
    rng = np.random.default_rng(0)
    params = _trained_like(config, 2)
    x = features(rng, [9, 1, 4, 7], 9)
    fused = predict_proba(params, config, x)
    unrolled = predict_proba(params, dataclasses.replace(config, fused=False), x)
    reference = reference_proba(config, params, x)
    assert fused.shape == (4, 9, config.n_tags)
    # float32 against float32 (fused and unrolled) and against NumPy: every operation of the network over
    # the 9 steps; a softmax's n_tags probabilities sum to 1 within n_tags roundings.
    tol = float_tol(network_terms(config, 9))
    assert np.abs(fused - unrolled).max() <= tol
    real = x[:, ROW_WORD] != 0
    assert np.abs(fused[real] - reference[real]).max() <= tol
    np.testing.assert_allclose(fused[real].sum(axis=-1), 1.0, atol=float_tol(config.n_tags + 1))


@pytest.mark.parametrize("config", [CONFIG, FORWARD_ONLY], ids=["bidirectional", "forward-only"])
def test_padding_and_batch_do_not_change_a_sentence(config: ModelConfig) -> None:
    rng = np.random.default_rng(3)
    params = _trained_like(config, 4)
    x = features(rng, [5, 2, 3], 5)
    predictor = Predictor(config, params)
    short = predictor.predict_proba(x)
    longer = np.zeros((3, config.n_features, 11), dtype=np.int32)
    longer[:, :, :5] = x
    padded = predictor.predict_proba(longer)
    alone = predictor.predict_proba(x[1:2])
    tol = float_tol(network_terms(config, 11))  # the same network in another bucket and batch
    for b, n in enumerate([5, 2, 3]):
        np.testing.assert_allclose(padded[b, :n], short[b, :n], atol=tol)
    np.testing.assert_allclose(alone[0, :2], short[1, :2], atol=tol)


@pytest.mark.parametrize("config", [CONFIG, FORWARD_ONLY], ids=["bidirectional", "forward-only"])
def test_only_a_bidirectional_model_reads_the_words_to_the_right(config: ModelConfig) -> None:
    rng = np.random.default_rng(8)
    params = _trained_like(config, 9)
    x = features(rng, [8], 8)
    changed = x.copy()
    changed[0, :, 5:] = features(rng, [3], 3)[0]  # other words from position 5 on
    assert not np.array_equal(changed, x)
    before, after = predict_proba(params, config, x)[0], predict_proba(params, config, changed)[0]
    assert np.abs(before[5:] - after[5:]).max() > 1e-4
    left = np.abs(before[:5] - after[:5]).max()
    if config.directions == 1:
        assert left <= float_tol(network_terms(config, 8))  # a forward LSTM's state at a token sees only the tokens up to it
    else:
        assert left > 1e-4


def _loss_gradients(config: ModelConfig, params: dict[str, np.ndarray], x: np.ndarray, label: np.ndarray):  # type: ignore[no-untyped-def]
    """(probabilities (B, L, T), canonical gradients) of the training graph for one batch."""
    seq_len = x.shape[2]
    mod = mx.mod.Module(make_sym_gen(config)(seq_len)[0], data_names=("data",), label_names=("softmax_label",))
    mod.bind(data_shapes=[("data", x.shape)], label_shapes=[("softmax_label", label.shape)])
    mod.init_params(arg_params={n: mx.nd.array(a) for n, a in pack_params(config, params).items()})
    mod.forward(mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(label)]), is_train=True)
    proba = mod.get_outputs()[0].asnumpy().transpose(0, 2, 1)
    mod.backward()
    names = mod._exec_group.param_names
    grads = {n: g[0].asnumpy() for n, g in zip(names, mod._exec_group.grad_arrays)}
    return proba, unpack_params(config, grads)


@pytest.mark.parametrize("directions", [2, 1])
def test_training_head_ignores_padding(directions: int) -> None:
    """SoftmaxOutput's forward is the probabilities; padding (label -1) adds no gradient."""
    rng = np.random.default_rng(5)
    config = dataclasses.replace(CONFIG, dropout=0.0, directions=directions)
    params = _trained_like(config, 6)
    tight = features(rng, [4, 2], 4)
    label = rng.integers(0, config.n_tags, (2, 4)).astype(np.float32)
    label[1, 2:] = -1
    # The same two sentences in a longer bucket, plus an all-padding filler row.
    loose = np.zeros((3, config.n_features, 7), dtype=np.int32)
    loose[:2, :, :4] = tight
    loose_label = np.full((3, 7), -1, dtype=np.float32)
    loose_label[:2, :4] = label
    proba, grads = _loss_gradients(config, params, tight, label)
    _, loose_grads = _loss_gradients(config, params, loose, loose_label)
    tol = float_tol(network_terms(config, 7))  # the same float32 network in another bucket
    np.testing.assert_allclose(proba, predict_proba(params, config, tight), atol=tol)
    assert np.abs(grads["fc_weight"]).max() > 0
    for name in grads:  # backward: as many operations again, relative to the largest gradient
        np.testing.assert_allclose(loose_grads[name], grads[name], atol=2 * tol * max(1.0, float(np.abs(grads[name]).max())),
                                   err_msg=name)


def test_a_words_gradient_does_not_depend_on_the_width_of_its_character_slot() -> None:
    """A short word's fully padded character windows give the same convolution output, and often the max;
    as in the tutorial's max pooling, the gradient goes to one of them, not to each (a reduce-max's
    backward gives every tied position the whole gradient, so the character CNN's gradient grew with the
    slot's width, `max_token_chars`, and other kernels, breaking such ties by rounding, gave other gradients)."""
    rng = np.random.default_rng(11)
    config = dataclasses.replace(CONFIG, dropout=0.0)
    wide = dataclasses.replace(config, max_token_chars=config.max_token_chars + 5)
    params = _trained_like(config, 12)  # no parameter's shape depends on max_token_chars
    x = features(rng, [5, 3], 5, config)
    # Words short enough that the narrow slot already holds every window that reads a character.
    w = max(config.filter_widths)
    x[:, ROW_CHARS + config.max_token_chars - w :] = 0
    x_wide = np.zeros((2, wide.n_features, 5), dtype=np.int32)
    x_wide[:, : config.n_features] = x  # the same words, 5 more padding characters each
    label = rng.integers(0, config.n_tags, (2, 5)).astype(np.float32)
    label[1, 3:] = -1
    # The test can fail only if some filter's max over a word is at tied padded windows: check that it is.
    kernel, bias = params[f"char_conv{w}_weight"][:, 0], params[f"char_conv{w}_bias"]
    chars = params["char_embed_weight"][x[:, ROW_CHARS:].transpose(0, 2, 1)]  # (B, L, C, char_dim)
    windows = np.stack([chars[:, :, i : i + w] for i in range(config.max_token_chars - w + 1)], axis=2)
    conv = np.tanh(np.einsum("blpwc,fwc->blpf", windows, kernel) + bias)
    assert ((conv == conv.max(axis=2, keepdims=True)).sum(axis=2) > 1).any()
    proba, grads = _loss_gradients(config, params, x, label)
    proba_wide, grads_wide = _loss_gradients(wide, params, x_wide, label)
    tol = float_tol(network_terms(wide, 5))
    np.testing.assert_allclose(proba_wide, proba, atol=tol)  # the forward never differed
    for name in grads:
        np.testing.assert_allclose(grads_wide[name], grads[name], atol=2 * tol * max(1.0, float(np.abs(grads[name]).max())),
                                   err_msg=name)


def test_checkpoint_params_round_trip(tmp_path: Path) -> None:
    params = init_params(CONFIG, 7)
    save_params(tmp_path / "p.npz", params)
    args = load_params(tmp_path / "p.npz")
    check_params(CONFIG, args)
    for name in params:
        np.testing.assert_array_equal(args[name], params[name])
    with pytest.raises(ValueError, match="missing"):
        check_params(CONFIG, {k: v for k, v in args.items() if k != "fc_bias"})
    # Only `arg:NAME` arrays belong in the file (the network has no auxiliary states).
    np.savez(tmp_path / "aux.npz", **{"arg:fc_bias": params["fc_bias"], "aux:moving_mean": params["fc_bias"]})
    with pytest.raises(ValueError, match="aux:moving_mean"):
        load_params(tmp_path / "aux.npz")


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"good")

    def broken(f):  # type: ignore[no-untyped-def]
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, broken)
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_predictor_keeps_few_executors_and_stays_correct() -> None:
    rng = np.random.default_rng(8)
    params = _trained_like(CONFIG, 9)
    predictor = Predictor(CONFIG, params, max_executors=2)
    batches = [features(rng, [n], n) for n in (3, 5, 7)]
    first = [predictor.predict_proba(x) for x in batches]
    assert len(predictor._executors) == 2
    again = predictor.predict_proba(batches[0])  # evicted, bound again
    np.testing.assert_array_equal(again, first[0])
    assert predictor.predict_proba(np.zeros((0, CONFIG.n_features, 4), dtype=np.int32)).shape == (0, 4, CONFIG.n_tags)
