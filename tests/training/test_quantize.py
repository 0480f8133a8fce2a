"""The `--quantize` schemes (`ner_fast.training.quantize`): `int8`, the default, gives each row of a batch
the output it gets alone, with 1 and 2 threads, bit for bit; `int8-dynamic` does not (why it is opt-in);
the rewrite keeps the int8 weights `quantize_dynamic` stored; `int8` gives the lookup tables one scale
per row, each row within half its own step of its float values whatever the other rows hold (one scale
per table is not); `bundle --requantize` converts a package of the per-batch scheme without retraining
and records the conversion."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from helpers import PackageGraph, make_checkpoint, random_features
from ner_fast.checkpoint import load_params, save_params
from ner_fast.cli import cli
from ner_fast.corpus import Corpus
from ner_fast.features import ROW_CHARS, ROW_CASING, ROW_WORD
from ner_fast.package import DEFAULT_QUANTIZE, QUANTIZATIONS, load_package, package_checksum
from ner_fast.training.bundle import requantize_package, build_default_package
from ner_fast.training.export import OPSET, export_model
from ner_fast.training.init_source import initializer_values
from ner_fast.training.quantize import (
    ensemble_from_logits, is_batch_invariant, make_invariant, quantize, quantize_dynamic_int8, quantize_rows,
)

# float32's machine epsilon: the rounding of x / scale and of q * scale.
EPS32 = float(np.finfo(np.float32).eps)


def row_tolerance(scale: np.ndarray) -> np.ndarray:
    """How far float32 q * scale may lie from a value quantized with `scale` (symmetric, q in [-127, 127]):
    half a step from rounding to the nearest integer, plus x / scale's float32 rounding (|x / scale| <= 127,
    so at most 127 eps / 2 steps) and the product's (at most 127 scale eps / 2)."""
    return scale * (0.5 + 127 * EPS32)


def gather_graph(table: np.ndarray) -> onnx.ModelProto:
    """A float graph that looks `ids` (int64, (B, T)) up in `table`: an embedding, alone."""
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["B", "T"])
    rows = helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["B", "T", table.shape[1]])
    node = helper.make_node("Gather", ["table", "ids"], ["rows"], name="lookup")
    graph = helper.make_graph([node], "lookup", [ids], [rows], [numpy_helper.from_array(table.astype(np.float32), "table")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def run_graph(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two models with POS heads over the same vocabularies (an ensemble), wide enough that int8 rounds."""
    root = tmp_path_factory.mktemp("quantize")
    arch = dict(use_pos=False, pos_aux_weight=1.0, decode="bio", hidden=24, word_dim=30)
    make_checkpoint(root / "a", seed=1, **arch)
    make_checkpoint(root / "b", seed=2, filter_widths=[2, 3], filters=6, **arch)
    return root


def features(package: Path, batch: int, seq_len: int, seed: int) -> np.ndarray:
    """Random valid ids (B, F, seq_len), each row of its own length, the first one full."""
    model = load_package(package).model
    n_words = len(model["vocab"]["words"])
    n_chars = len(model["vocab"]["chars"])
    rng = np.random.default_rng(seed)
    x = np.zeros((batch, model["n_features"], seq_len), np.int32)
    for b, n in enumerate([seq_len] + rng.integers(1, seq_len + 1, batch - 1).tolist()):
        x[b, ROW_WORD, :n] = rng.integers(1, n_words, n)
        x[b, ROW_CASING, :n] = rng.integers(1, 5, n)
        x[b, ROW_CHARS : ROW_CHARS + 4, :n] = rng.integers(1, n_chars, (4, n))
    return x


def batch_and_alone(package: Path, x: np.ndarray, threads: int) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = PackageGraph(package, None, options)  # a format-2 package's character graph feeds its second input
    whole = session.run(None, {"features": x})
    alone = []
    for b in range(len(x)):
        n = int((x[b, ROW_WORD] > 0).sum())
        alone.append(session.run(None, {"features": x[b : b + 1, :, :n]}))  # trimmed to its own length
    return whole, alone


def test_int8_is_the_default_and_int8_dynamic_is_opt_in() -> None:
    assert DEFAULT_QUANTIZE == "int8" and "int8-dynamic" in QUANTIZATIONS
    help_text = " ".join(CliRunner().invoke(cli, ["export", "--help"]).output.split())
    assert "int8-dynamic" in help_text and "NOT batch" in help_text  # (click wraps lines at hyphens)


@pytest.mark.parametrize("threads", [1, 2])
def test_each_row_gets_its_answer_alone_with_int8_and_not_with_int8_dynamic(members: Path, tmp_path: Path, threads: int) -> None:
    x = features(export_model(members / "a", tmp_path / "probe", quantize=None), 24, 17, seed=threads)
    differs = {}
    for scheme in QUANTIZATIONS:
        package = export_model(members / "a", tmp_path / scheme, quantize=scheme, ensemble=[members / "b"])
        assert load_package(package).model["quantization"] == (None if scheme == "none" else scheme)
        whole, alone = batch_and_alone(package, x, threads)
        assert len(whole) == 2  # tag and POS probabilities
        differs[scheme] = 0.0
        for b, outs in enumerate(alone):
            n = outs[0].shape[1]
            for w, a in zip(whole, outs):
                differs[scheme] = max(differs[scheme], float(np.abs(w[b, :n] - a[0]).max()))
    assert differs["int8"] == 0.0 and differs["none"] == 0.0  # bit for bit
    assert differs["int8-dynamic"] > 1e-6  # one scale for the batch: a row's rounding depends on the others


def assert_same_weights(source: onnx.ModelProto, converted: onnx.ModelProto) -> None:
    """Every int8 weight of `source` is in `converted`: unchanged, an LSTM's transposed back to ONNX's
    (directions, 4H, input) layout, or a `MatMulInteger`'s as uint8 + 128 (its zero point 128)."""
    before = {t.name: numpy_helper.to_array(t) for t in source.graph.initializer}
    after = [numpy_helper.to_array(t) for t in converted.graph.initializer]
    matmul_weights = {n.input[1] for n in converted.graph.node if n.op_type == "MatMulInteger"}
    assert matmul_weights
    for name, value in before.items():
        if value.dtype != np.int8 or value.size < 16:
            continue
        if name in matmul_weights:
            wanted = [(value.astype(np.int16) + 128).astype(np.uint8)]
        else:
            wanted = [value] + ([value.transpose(0, 2, 1)] if value.ndim == 3 else [])
        assert any(a.dtype == w.dtype and a.shape == w.shape and np.array_equal(a, w) for a in after for w in wanted), name


@pytest.mark.numeric
def test_matmul_integer_sums_exactly_where_a_saturating_kernel_would_not() -> None:
    """Rows of large activations against large weights: two u8 x s8 products overflow int16 (255 x 127 x 2 >
    32767), where AVX2 kernels without VNNI add them (VPMADDUBSW) unless the weights are unsigned. The
    `int8` graph must give the exact integer sum on every CPU: `./dev.sh test-isa` runs this again with CPUID
    answering as an AVX2-only CPU, where the signed weights gave other numbers."""
    w = np.ones((16, 3), np.float32)
    w[:, 1] = -1.0
    w[::2, 2] = 0.5
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 3])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], "fc", [x], [y],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    invariant = make_invariant(quantize_dynamic_int8(model))
    weights = {n.input[1] for n in invariant.graph.node if n.op_type == "MatMulInteger"}
    assert weights and all(t.data_type == TensorProto.UINT8 for t in invariant.graph.initializer if t.name in weights)
    rows = np.array([np.full(16, 3.0), np.linspace(-2, 2, 16), np.r_[np.full(8, 1.0), np.full(8, -1.0)]], np.float32)
    got = run_graph(invariant, {"x": rows})[0]
    # The exact chain in float64: per-row symmetric activations (zero point 128 cancels), per-tensor weights.
    scale_x = np.abs(rows).max(axis=1, keepdims=True) / 127
    q_x = np.clip(np.round(rows / scale_x), -127, 127)
    q_w = np.round(w / (np.abs(w).max() / 127))
    expected = (q_x @ q_w) * scale_x * (np.abs(w).max() / 127)
    # float32 rounding of x / scale (a step at most when it lands on .5) aside, the integers are exact; then
    # two float32 products: a few eps of the result's size.
    np.testing.assert_allclose(got, expected, rtol=8 * EPS32, atol=8 * EPS32 * float(np.abs(expected).max()))


def test_the_rewrite_keeps_the_stored_int8_weights(members: Path, tmp_path: Path) -> None:
    fp32 = onnx.load(str(export_model(members / "a", tmp_path / "f", quantize=None) / "dynamic.onnx"))
    dynamic = quantize_dynamic_int8(fp32)
    invariant = make_invariant(dynamic)
    assert not is_batch_invariant(dynamic) and is_batch_invariant(invariant)
    ops = {n.op_type for n in invariant.graph.node}
    assert "LSTM" in ops and "MatMulInteger" in ops and not ops & {"DynamicQuantizeLSTM", "DynamicQuantizeLinear"}
    assert_same_weights(dynamic, invariant)
    stored = lambda m: sum(a.nbytes for a in map(numpy_helper.to_array, m.graph.initializer))  # noqa: E731
    assert stored(invariant) <= stored(dynamic) + 1024  # no float copy of the weights is stored


def test_ensemble_from_logits_gives_the_geometric_mean_without_log() -> None:
    # The graph older ensembles end with: softmax(mean(log(max(softmax(z_i), floor)))).
    z = [helper.make_tensor_value_info(f"z{i}", TensorProto.FLOAT, [2, 3, 5]) for i in range(2)]
    floor = numpy_helper.from_array(np.array(1e-30, np.float32), "floor")
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    nodes = []
    for i in range(2):
        nodes += [helper.make_node("Softmax", [f"z{i}"], [f"p{i}"], axis=-1), helper.make_node("Max", [f"p{i}", "floor"], [f"m{i}"]),
                  helper.make_node("Log", [f"m{i}"], [f"l{i}"])]
    nodes += [helper.make_node("Sum", ["l0", "l1"], ["s"]), helper.make_node("Mul", ["s", "half"], ["mean"]),
              helper.make_node("Softmax", ["mean"], ["probs"], axis=-1)]
    out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [2, 3, 5])
    old = helper.make_model(helper.make_graph(nodes, "old", z, [out], [floor, half]), opset_imports=[helper.make_opsetid("", 18)])
    old.ir_version = 8
    new = ensemble_from_logits(old)
    assert [n.op_type for n in new.graph.node].count("Log") == 0 and is_batch_invariant(new)
    rng = np.random.default_rng(0)
    feeds = {f"z{i}": rng.normal(0, 3, (2, 3, 5)).astype(np.float32) for i in range(2)}
    run = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]  # noqa: E731
    mean = (feeds["z0"].astype(np.float64) + feeds["z1"]) / 2
    expected = np.exp(mean - mean.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(run(new), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(run(old), expected, rtol=0, atol=1e-6)


def test_requantize_converts_a_per_batch_package_and_records_it(bundled: Corpus, tmp_path: Path) -> None:
    train = {"data": None, "max_sentences": 300, "split": [0.8, 0.2]}
    arch = dict(corpus=bundled[:300], train=train, use_pos=False, pos_aux_weight=1.0, hidden=24)
    make_checkpoint(tmp_path / "a", seed=3, **arch)
    make_checkpoint(tmp_path / "b", seed=4, filter_widths=[2, 3], **arch)
    source, before = build_default_package(tmp_path / "a", tmp_path / "old", command="an old build", quantize="int8-dynamic",
                                           ensemble=[tmp_path / "b"])
    out, prov = requantize_package(source, tmp_path / "new", command="python -m ner_fast.training.bundle --requantize old")
    pkg = load_package(out)
    assert pkg.model["quantization"] == "int8"
    conversion = prov["requantized"]
    assert conversion["source_manifest_sha256"] == package_checksum(source)
    assert conversion["from"] == "int8-dynamic" and conversion["command"].endswith("--requantize old")
    assert isinstance(conversion["source_dirty"], bool)
    assert conversion["validation_f1_before"] == before["validation"]["f1"]
    assert prov["command"] == "an old build"  # how the weights were made stays recorded
    assert prov["validation"]["sentences"] == 60 and 0 <= prov["validation"]["f1"] <= 1
    assert json.loads((out / "model.json").read_text())["provenance"] == prov
    # The same int8 weights: every int8 tensor of the source is in the result.
    assert_same_weights(onnx.load(str(source / "dynamic.onnx")), onnx.load(str(out / "dynamic.onnx")))
    x = features(out, 12, 9, seed=5)
    whole, alone = batch_and_alone(out, x, threads=2)
    assert all(np.array_equal(whole[0][b, : a[0].shape[1]], a[0][0]) for b, a in enumerate(alone))
    with pytest.raises(ValueError, match="nothing to convert: already today's int8") as refused:
        requantize_package(out, tmp_path / "again", command="x")
    assert "export it again" not in str(refused.value)  # it is what an export writes already


def test_requantize_keeps_the_character_graph_of_a_format_2_package(tmp_path: Path) -> None:
    """A single network's per-batch package is format 2 (the export default): its character graph, whose
    tables live in the shared weights file, must come along, or the converted graphs take character
    features that nothing computes (the package would not load)."""
    make_checkpoint(tmp_path / "run", hidden=24)
    source = export_model(tmp_path / "run", tmp_path / "old", buckets="auto", quantize="int8-dynamic")
    assert load_package(source).char_graph_path is not None
    out, _ = requantize_package(source, tmp_path / "new", command="x")
    pkg = load_package(out)
    assert pkg.manifest["format_version"] == 2 and pkg.char_graph_path is not None and pkg.buckets == [4, 9]
    assert pkg.model["quantization"] == "int8"
    chars = onnx.load(str(pkg.char_graph_path))
    assert is_batch_invariant(chars) and {p.key: p.value for p in chars.metadata_props}["ner_fast.quantization"] == "int8"
    # The same character features as the source's character graph (the same int8 tables).
    rows = np.random.default_rng(0).integers(0, len(pkg.model["vocab"]["chars"]), (7, pkg.model["max_token_chars"]), dtype=np.int32)
    before, after = (ort.InferenceSession(str(load_package(p).char_graph_path), providers=["CPUExecutionProvider"])
                     for p in (source, out))
    assert np.array_equal(before.run(None, {"char_ids": rows})[0], after.run(None, {"char_ids": rows})[0])
    x = features(out, 12, 9, seed=5)
    whole, alone = batch_and_alone(out, x, threads=2)
    assert all(np.array_equal(whole[0][b, : a[0].shape[1]], a[0][0]) for b, a in enumerate(alone))


def test_each_row_is_within_half_its_own_step() -> None:
    rng = np.random.default_rng(0)
    # Rows whose sizes span four orders of magnitude, as GloVe rows beside trained ones, and a row of zeros.
    table = (rng.normal(0, 1, (60, 16)) * 10.0 ** rng.uniform(-2, 2, (60, 1))).astype(np.float32)
    table[3] = 0
    q, scale = quantize_rows(table)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (60, 1)
    np.testing.assert_array_equal(scale[:, 0], np.abs(table).max(axis=1) / np.float32(127))  # max |row| / 127
    assert np.abs(q.astype(np.int64)).max() <= 127
    used = np.abs(q.astype(np.int64)).max(axis=1)
    assert (used[np.arange(60) != 3] == 127).all() and used[3] == 0  # every row spans its own range
    error = np.abs(q.astype(np.float32) * scale - table.astype(np.float64))
    assert (error <= row_tolerance(scale.astype(np.float64))).all()
    assert error.max() > 0 and not error[3].any()


# Both forms of a per-row table (`quantize.row_tables`): dequantized once when the session is built (a
# small table, the default for these) and looked up in int8 then scaled (a table over `FOLD_BYTES`).
FORMS = {"folded": None, "int8 lookups": 0}


@pytest.mark.parametrize("form", FORMS)
def test_a_huge_row_leaves_the_other_rows_alone_unlike_one_scale_per_table(form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if FORMS[form] is not None:
        monkeypatch.setattr("ner_fast.training.quantize.FOLD_BYTES", FORMS[form])
    rng = np.random.default_rng(1)
    table = rng.normal(0, 0.1, (40, 8)).astype(np.float32)
    huge = table.copy()
    huge[7] *= 1000
    others = np.arange(40) != 7
    q, scale = quantize_rows(table)
    q_huge, scale_huge = quantize_rows(huge)
    # A row's int8 values and scale depend on that row only.
    np.testing.assert_array_equal(q[others], q_huge[others])
    np.testing.assert_array_equal(scale[others], scale_huge[others])
    ids = rng.permutation(40).reshape(4, 10).astype(np.int64)
    per_row = quantize(gather_graph(huge), "int8")
    per_table = quantize(gather_graph(huge), "int8-dynamic")
    ops = [n.op_type for n in per_row.graph.node]
    assert sorted(ops) == (["Cast", "Gather", "Mul"] if form == "folded" else ["Cast", "Gather", "Gather", "Mul"])
    assert is_batch_invariant(per_row)
    stored = {t.name: (t.data_type, list(t.dims)) for t in per_row.graph.initializer}
    assert stored == {"table_quantized": (TensorProto.INT8, [40, 8]), "table_scale": (TensorProto.FLOAT, [40, 1])}
    assert "DequantizeLinear" in {n.op_type for n in per_table.graph.node}
    (rows,) = run_graph(per_row, {"ids": ids})
    (table_rows,) = run_graph(per_table, {"ids": ids})
    # What onnxruntime looks up is the float32 product of the stored numbers, bit for bit.
    np.testing.assert_array_equal(rows, q_huge[ids].astype(np.float32) * scale_huge[ids])
    small = ids != 7
    bound = row_tolerance(scale_huge[ids].astype(np.float64))[small]
    assert (np.abs(rows - huge[ids])[small] <= bound).all()
    # One scale for the table: its step is the huge row's, and the other rows lose most of their digits.
    assert np.abs(table_rows - huge[ids])[small].max() > 10 * bound.max()
    # A lookup alone and in a batch: the same numbers.
    for b in range(len(ids)):
        (alone,) = run_graph(per_row, {"ids": ids[b : b + 1]})
        np.testing.assert_array_equal(alone[0], rows[b])


def test_an_int8_package_looks_words_up_with_one_scale_per_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through exported packages: the word embedding's output (the lookup the LSTM reads) within
    half a row step of the checkpoint's float rows, one row 100 times larger than the rest, as a
    pretrained vector beside trained rows, the same numbers in both forms; `--init` reads the rows
    back as the package computes them."""
    config, params, _ = make_checkpoint(tmp_path / "m", word_dim=20, hidden=12)
    params = load_params(tmp_path / "m" / "best.params.npz")
    params["word_embed_weight"][5] *= 100
    save_params(tmp_path / "m" / "best.params.npz", params)
    table = params["word_embed_weight"].astype(np.float64)
    fp32 = onnx.load(str(export_model(tmp_path / "m", tmp_path / "fp32", quantize="none", char_graph=False) / "dynamic.onnx"))
    lookup = next(n.output[0] for n in fp32.graph.node if n.op_type == "Gather" and n.input[0] == "word_embed_weight")
    x = random_features(np.random.default_rng(2), [9, 4, 7], 9, config)
    x[0, ROW_WORD, :3] = [5, 5, 2]  # the large row among the others
    ids = x[:, ROW_WORD]
    real = ids > 0
    scale = np.abs(table).max(axis=1) / 127  # the step each row's values are rounded to
    looked_up = {}
    for form, fold_bytes in FORMS.items():
        monkeypatch.setattr("ner_fast.training.quantize.FOLD_BYTES", 1 << 20 if fold_bytes is None else fold_bytes)
        # One graph (format 1), run here on `features` alone: the word lookup is the same in both formats.
        graph = onnx.load(str(export_model(tmp_path / "m", tmp_path / form, quantize="int8", char_graph=False) / "dynamic.onnx"))
        assert "DequantizeLinear" not in {n.op_type for n in graph.graph.node}
        scale_lookups = [n for n in graph.graph.node if n.op_type == "Gather" and n.input[0] == "word_embed_weight_scale"]
        assert len(scale_lookups) == (0 if form == "folded" else 1)
        graph.graph.output.append(helper.make_tensor_value_info(lookup, TensorProto.FLOAT, None))
        rows = looked_up[form] = run_graph(graph, {"features": x})[-1]
        assert (np.abs(rows - table[ids])[real] <= row_tolerance(scale[ids])[..., None][real]).all()
        assert np.abs(rows - table[ids])[real].max() > 0  # int8, not the float rows
        values, steps = initializer_values(graph.graph, ["word_embed_weight"])
        np.testing.assert_allclose(values["word_embed_weight"][ids[real]], rows[real], rtol=0, atol=float(EPS32 * np.abs(table).max()))
        assert steps["word_embed_weight"] == pytest.approx(scale.max(), rel=1e-6)
    np.testing.assert_array_equal(looked_up["folded"], looked_up["int8 lookups"])


@pytest.mark.parametrize("threads", [1, 2])
def test_a_sentence_alone_and_batched_gets_the_same_probabilities_with_per_row_lookups(
    bundled: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """The form a large word table takes (int8 rows gathered, then scaled by their gathered scales),
    through `Tagger` as `tests/test_invariance.py` checks the bundled package: bit for bit."""
    from ner_fast import Tagger

    monkeypatch.setattr("ner_fast.training.quantize.FOLD_BYTES", 0)
    corpus = bundled[:120]
    make_checkpoint(tmp_path / "m", corpus=corpus, use_pos=False, hidden=16, word_dim=24)
    package = export_model(tmp_path / "m", tmp_path / "pkg", quantize="int8")
    graph = onnx.load(str(package / "dynamic.onnx"))
    assert sum(n.op_type == "Gather" and n.input[0].endswith("_scale") for n in graph.graph.node) >= 2  # words and more
    tagger = Tagger.load(package, device="cpu", threads=threads)
    offsets = corpus.offsets.tolist()
    sentences = [corpus.words[a:b] for a, b in zip(offsets, offsets[1:])][:40]
    order = np.random.default_rng(threads).permutation(len(sentences))
    tags, probs = tagger.tag_batch([sentences[i] for i in order], batch_size=16, proba=True)
    assert len(probs) == len(sentences)
    for k, i in enumerate(order):
        alone_tags, alone_probs = tagger.tag(sentences[i], proba=True)
        assert tags[k] == alone_tags
        np.testing.assert_array_equal(probs[k], alone_probs)
