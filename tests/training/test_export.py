"""ONNX export: parity with MXNet for every bucket graph and the dynamic graph, and the package layout.

Checkpoints come from `helpers.make_checkpoint` (random parameters: parity does not need a trained
model, and random weights exercise every gate). One test exports a model really trained for a few batches.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from helpers import SMALL, PackageGraph, float_tol, make_checkpoint, network_terms
from ner_fast.checkpoint import ModelConfig, load_model
from ner_fast.features import ROW_CASING, ROW_CHARS, ROW_POS, ROW_WORD
from ner_fast.training.model import predict_proba
from ner_fast.option import graph_buckets
from ner_fast.training.export import build_graph, export_model
from ner_fast.training.package_writer import EXTERNAL_MIN_BYTES, with_seq_len
from ner_fast.package import WEIGHTS_FILE, load_package
from ner_fast.vocab import UNK, Vocabularies


def random_features(rng: np.random.Generator, config: ModelConfig, lengths: list[int], seq_len: int) -> np.ndarray:
    """Features (B, F, seq_len) in the documented layout, zero beyond each length; about a fifth of
    the words and characters are unknown (id 1)."""
    x = np.zeros((len(lengths), config.n_features, seq_len), dtype=np.int32)
    for b, n in enumerate(lengths):
        x[b, ROW_WORD, :n] = rng.integers(1, config.n_words, n)
        x[b, ROW_WORD, :n][rng.random(n) < 0.2] = UNK
        x[b, ROW_CASING, :n] = rng.integers(1, config.n_casing, n)
        if config.pos_enabled:
            x[b, ROW_POS, :n] = rng.integers(1, config.n_pos, n)
        for t in range(n):
            k = int(rng.integers(1, config.max_token_chars + 1))
            chars = rng.integers(1, config.n_chars, k)
            chars[rng.random(k) < 0.2] = UNK
            x[b, ROW_CHARS : ROW_CHARS + k, t] = chars
    return x


def assert_parity(session: ort.InferenceSession | PackageGraph, params: dict, config: ModelConfig, x: np.ndarray) -> None:
    """onnxruntime and MXNet agree within their float32 rounding (every operation of the network over the
    batch's steps: `float_tol(network_terms)`) and on the argmax at every real token."""
    ours = session.run(None, {"features": x})[0]
    theirs = predict_proba(params, config, x)
    assert ours.shape == theirs.shape == (x.shape[0], x.shape[2], config.n_tags)
    real = x[:, ROW_WORD, :] > 0
    assert real.any()
    assert np.abs(ours - theirs)[real].max() <= float_tol(network_terms(config, x.shape[2]))
    assert np.array_equal(ours.argmax(-1)[real], theirs.argmax(-1)[real])


def lengths_for(rng: np.random.Generator, batch: int, seq_len: int) -> list[int]:
    """`batch` lengths in 1..seq_len, the first one exactly seq_len (a full bucket)."""
    return [seq_len] + rng.integers(1, seq_len + 1, batch - 1).tolist()


@pytest.fixture(scope="module", params=[2, 1], ids=["bidirectional", "forward-only"])
def small(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelConfig, dict, Vocabularies, Path]:
    """A two-layer model (BiLSTM, or forward-only LSTM) and its package with buckets 4 and 9."""
    folder = tmp_path_factory.mktemp("small")
    config, params, vocabs = make_checkpoint(folder / "model", directions=request.param)
    package = export_model(folder / "model", folder / "pkg", buckets="auto", quantize=None)
    return config, params, vocabs, package


@pytest.mark.numeric
def test_parity_every_bucket_and_the_dynamic_graph(small: tuple) -> None:
    config, params, _, package = small
    pkg = load_package(package)
    rng = np.random.default_rng(1)
    for seq_len in [*pkg.buckets, None]:
        session = PackageGraph(pkg, seq_len)
        # The dynamic graph runs at lengths beyond every bucket, and at one of them.
        for length in [seq_len] if seq_len else [pkg.buckets[-1], 23]:
            for batch in (1, 7, 50):
                assert_parity(session, params, config, random_features(rng, config, lengths_for(rng, batch, length), length))


@pytest.mark.parametrize("directions", [2, 1])
@pytest.mark.numeric
def test_parity_without_pos_and_casing_one_layer(tmp_path: Path, directions: int) -> None:
    config, params, _ = make_checkpoint(
        tmp_path / "m", with_pos=False, use_casing=False, num_layers=1, filter_widths=[3], directions=directions
    )
    session = ort.InferenceSession(build_graph(params, config).SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(2)
    assert_parity(session, params, config, random_features(rng, config, lengths_for(rng, 7, 11), 11))


@pytest.mark.parametrize("directions", [2, 1])
@pytest.mark.numeric
def test_parity_at_the_default_dimensions(tmp_path: Path, directions: int) -> None:
    default_dims = {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.name in SMALL and f.name != "filter_widths"}
    config, params, _ = make_checkpoint(
        tmp_path / "m", **{**default_dims, "use_casing": True, "max_token_chars": 20, "directions": directions}
    )
    assert (config.hidden, config.word_dim, config.filters, config.char_dim) == (275, 150, 53, 25)
    model = with_seq_len(build_graph(params, config), 20)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    assert_parity(session, params, config, random_features(rng, config, lengths_for(rng, 7, 20), 20))


@pytest.mark.numeric
def test_repeated_word_forms_get_the_features_each_would_get_alone(small: tuple) -> None:
    """The graph runs the character CNN once per distinct character row of the batch and gathers the
    result back to every token: with tokens drawn from four word forms (and padding), every sentence
    agrees with MXNet and gets, bit for bit, what it gets alone."""
    config, params, _, package = small
    session = PackageGraph(package, None)
    rng = np.random.default_rng(5)
    x = random_features(rng, config, lengths_for(rng, 12, 9), 9)
    forms = x[:4, ROW_CHARS:, 0].copy()  # the first token's characters in four sentences
    for b, n in enumerate(x[:, ROW_WORD, :].astype(bool).sum(axis=1)):
        x[b, ROW_CHARS:, :n] = forms[rng.integers(0, 4, n)].T
    assert len({tuple(x[b, ROW_CHARS:, t]) for b in range(12) for t in range(9)}) <= 5  # four forms and padding
    assert_parity(session, params, config, x)
    batched = session.run(None, {"features": x})[0]
    for b in range(12):
        assert np.array_equal(session.run(None, {"features": x[b : b + 1]})[0][0], batched[b])


@pytest.mark.numeric
def test_a_sentence_gets_the_same_probabilities_in_every_bucket(small: tuple) -> None:
    config, _, _, package = small
    pkg = load_package(package)
    x = random_features(np.random.default_rng(4), config, [4], 4)
    results = []
    for seq_len in (4, 9, None):
        session = PackageGraph(pkg, seq_len)
        padded = np.zeros((1, config.n_features, seq_len or 15), dtype=np.int32)
        padded[:, :, :4] = x
        results.append(session.run(None, {"features": padded})[0][0, :4])
    tol = float_tol(network_terms(config, 15))  # the same float32 network in a longer graph
    assert np.abs(results[0] - results[1]).max() <= tol and np.abs(results[0] - results[2]).max() <= tol


def test_package_describes_itself(small: tuple) -> None:
    config, _, vocabs, package = small
    pkg = load_package(package)
    assert pkg.buckets == [4, 9]
    assert sorted(p.name for p in package.iterdir()) == sorted(
        ["bucket_4.onnx", "bucket_9.onnx", "dynamic.onnx", "chars.onnx", WEIGHTS_FILE, "model.json", "manifest.json"]
    )
    # The character CNN is its own graph (format 2): rows of character ids in, F features a row out.
    width = config.filters * len(config.filter_widths)
    assert pkg.manifest["format_version"] == pkg.model["format_version"] == 2
    assert pkg.model["char_graph"]["file"] == "chars.onnx" and pkg.model["char_graph"]["width"] == width
    chars = onnx.load(str(pkg.char_graph_path), load_external_data=False)
    assert [i.name for i in chars.graph.input] == ["char_ids"] and [o.name for o in chars.graph.output] == ["char_features"]
    assert {f"char_conv{w}_table0" for w in config.filter_widths} <= {t.name for t in chars.graph.initializer}
    assert pkg.model["vocab"] == vocabs.to_json()
    assert pkg.tags == vocabs.tags.itos
    # Each entity label's description (the GMB ones: the tiny corpus uses per, geo, tim, org).
    assert pkg.model["label_descriptions"] == {
        "per": "person", "geo": "geographical entity", "tim": "time expression", "org": "organization"}
    assert pkg.model["architecture"] == config.to_dict()
    assert (pkg.model["use_pos"], pkg.model["has_pos"], pkg.model["use_casing"], pkg.model["lowercase"]) == (True, True, True, True)
    assert pkg.model["max_token_chars"] == 8
    assert set(pkg.manifest["files"]) == {p.name for p in package.iterdir()} - {"manifest.json"}
    assert {"ner_fast", "onnx", "onnxruntime", "opset", "trained_with_mxnet"} <= set(pkg.manifest["versions"])
    model = onnx.load(str(pkg.graph_path(9)), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["ner_fast.tags"]) == vocabs.tags.itos
    assert meta["ner_fast.seq_len"] == "9" and meta["ner_fast.use_pos"] == "true"
    assert pkg.model["crf"] is None and meta["ner_fast.crf"] == "none"  # a softmax model (CRF: test_tagger)
    assert model.graph.input[0].type.tensor_type.shape.dim[2].dim_value == 9
    assert [d.dim_value for d in model.graph.input[1].type.tensor_type.shape.dim][1:] == [9, width]
    assert not any(n.op_type == "Unique" for n in model.graph.node)  # no character CNN in the main graphs
    # Every tensor but the tiny constants lives in the shared file.
    inline = [t for t in model.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
    assert {"word_embed_weight", "lstm0_W", "lstm1_R"} <= {t.name for t in model.graph.initializer} - {t.name for t in inline}
    assert all(len(t.raw_data) < EXTERNAL_MIN_BYTES for t in inline)
    # One ONNX LSTM a layer, over the directions the model has, and the forward weights alone in a forward-only one.
    lstms = [n for n in model.graph.node if n.op_type == "LSTM"]
    assert len(lstms) == config.num_layers == 2
    expected = "bidirectional" if config.directions == 2 else "forward"
    assert [onnx.helper.get_attribute_value(a) for n in lstms for a in n.attribute if a.name == "direction"] == [expected.encode()] * 2
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    assert shapes["lstm1_W"] == (config.directions, 4 * config.hidden, config.directions * config.hidden)
    assert shapes["fc_weight_t"] == (config.directions * config.hidden, config.n_tags)


def test_weights_are_stored_once_whatever_the_number_of_buckets(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "m", word_dim=60, hidden=40)
    one = export_model(tmp_path / "m", tmp_path / "dyn", buckets="dynamic", quantize=None)
    many = export_model(tmp_path / "m", tmp_path / "many", buckets=",".join(str(n) for n in range(2, 42)), quantize=None)
    weights = (one / WEIGHTS_FILE).stat().st_size
    assert (many / WEIGHTS_FILE).read_bytes() == (one / WEIGHTS_FILE).read_bytes()
    graphs = sorted(many.glob("bucket_*.onnx"))
    assert len(graphs) == 40
    largest_graph = max(p.stat().st_size for p in graphs)
    assert largest_graph < weights / 10
    size = lambda d: sum(p.stat().st_size for p in d.iterdir())  # noqa: E731
    assert size(many) - size(one) <= 40 * largest_graph + 4096


@pytest.mark.parametrize("directions", [2, 1])
@pytest.mark.numeric
def test_int8_package_is_smaller_and_mostly_agrees(tmp_path: Path, directions: int) -> None:
    config, params, _ = make_checkpoint(tmp_path / "m", word_dim=60, hidden=40, directions=directions)
    fp32 = export_model(tmp_path / "m", tmp_path / "fp32", buckets="9", quantize=None)
    int8 = export_model(tmp_path / "m", tmp_path / "int8", buckets="9", quantize="int8")
    assert load_package(int8).model["quantization"] == "int8"
    assert (int8 / WEIGHTS_FILE).stat().st_size < 0.5 * (fp32 / WEIGHTS_FILE).stat().st_size
    x = random_features(np.random.default_rng(5), config, lengths_for(np.random.default_rng(5), 20, 9), 9)
    outs = [
        PackageGraph(p, 9).run(None, {"features": x})[0]
        for p in (fp32, int8)
    ]
    real = x[:, ROW_WORD] > 0
    assert np.allclose(outs[1].sum(-1), 1, atol=float_tol(config.n_tags + 1))  # a float32 softmax
    # Not float rounding but int8's: weights and activations on 1/255 of their range (0.4%), summed over
    # dot products of up to 60 + 40 terms and two layers of these random, far-from-trained weights; a
    # wrong scale or zero point moves probabilities by about 1.
    assert np.abs(outs[0] - outs[1])[real].max() < 0.2
    assert (outs[0].argmax(-1) == outs[1].argmax(-1))[real].mean() > 0.8


def test_export_replaces_a_package_only_when_complete(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "m")
    package = export_model(tmp_path / "m", tmp_path / "pkg", buckets="5", quantize=None)
    with pytest.raises(ValueError):
        export_model(tmp_path / "m", tmp_path / "pkg", buckets="0,3", quantize=None)
    assert load_package(package).buckets == [5]
    export_model(tmp_path / "m", tmp_path / "pkg", buckets="3,6", quantize=None)
    assert load_package(package).buckets == [3, 6]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "pkg"]  # no temporary folders left


def test_graph_buckets() -> None:
    assert graph_buckets("auto", [20, 10, 40]) == [10, 20, 40]
    assert graph_buckets("dynamic", [10]) == []
    assert graph_buckets("40,10, 20,10", []) == [10, 20, 40]
    for bad in ("ten", "0,5", "", "-3"):
        with pytest.raises(ValueError):
            graph_buckets(bad, [])


@pytest.mark.slow
@pytest.mark.parametrize("directions", [2, 1])
@pytest.mark.numeric
def test_parity_of_a_model_trained_for_a_few_batches(tmp_path: Path, directions: int) -> None:
    from ner_fast.training.train import TrainConfig, train

    arch = {"hidden": 16, "word_dim": 16, "filters": 8, "char_dim": 8, "use_casing": True, "dropout": 0.1,
            "directions": directions}  # fmt: skip
    cfg = TrainConfig(out=str(tmp_path / "run"), max_sentences=200, epochs=1, batch_size=20, arch=arch, seed=1)
    train(cfg, progress=False, echo=lambda _: None)
    config, params, _, doc = load_model(tmp_path / "run")
    package = export_model(tmp_path / "run", tmp_path / "pkg", buckets="auto", quantize=None)
    pkg = load_package(package)
    assert pkg.buckets == sorted(doc["data"]["buckets"])
    rng = np.random.default_rng(6)
    for seq_len in (pkg.buckets[0], pkg.buckets[-1], None):
        length = seq_len or pkg.buckets[-1] + 5
        session = PackageGraph(pkg, seq_len)
        assert_parity(session, params, config, random_features(rng, config, lengths_for(rng, 7, length), length))


def test_default_package_folder_is_export_slash_model_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_checkpoint(tmp_path / "runs" / "tiny")
    monkeypatch.chdir(tmp_path)
    package = export_model(Path("runs") / "tiny", buckets="dynamic", quantize=None)
    assert package == Path("export") / "tiny"
    assert load_package(package).buckets == [] and (package / "dynamic.onnx").is_file()


def test_python_callers_get_a_type_error_for_a_list_of_buckets_or_one_ensemble_path(tmp_path: Path) -> None:
    # buckets=[5, 10] said "'list' object has no attribute 'strip'"; ensemble="run2" was read as its characters
    # ("/: named twice; the members of an ensemble are different runs").
    make_checkpoint(tmp_path / "run")
    with pytest.raises(TypeError, match=r"^buckets must be a str, as --buckets takes it \('5,10,20', 'auto'\), got list$"):
        export_model(tmp_path / "run", tmp_path / "pkg", buckets=[5, 10])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^ensemble must be a list of run folders, not one path$"):
        export_model(tmp_path / "run", tmp_path / "pkg", ensemble=str(tmp_path / "run"))
    assert not (tmp_path / "pkg").exists()
