"""`ner-fast train --init SOURCE`: reading runs and packages (float32 and int8) back into training parameters,
carrying words, characters and tags over by name, refusing sizes that cannot match, provenance, resume.

Sources are tiny checkpoints with random weights (`helpers.make_checkpoint`, scaled up so tags are far from
uniform); the new corpora are small CoNLL files made here, one with other entity types.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from helpers import make_checkpoint, write_conll
from ner_fast.atomic import atomic_write_json
from ner_fast.checkpoint import CONFIG_VERSION, init_params, load_params, param_shapes, save_params
from ner_fast.cli.train import train_command
from ner_fast.config import ModelConfig, OptionError, TrainConfig
from ner_fast.corpus import Corpus
from ner_fast.package import load_package
from ner_fast.tagger import Tagger
from ner_fast.training.export import export_model
from ner_fast.training.init_source import check_architecture, inherit_architecture, initial_params, load_source
from ner_fast.vocab import Vocabularies

# The source's corpus (GMB-style tags) and a new one sharing many of its words, with other entity types.
SOURCE_SENTENCES = [
    (["Angela", "Merkel", "visited", "Paris", "on", "Monday", "."], ["B-per", "I-per", "O", "B-geo", "O", "B-tim", "O"]),
    (["The", "UN", "met", "in", "New", "York", "."], ["O", "B-org", "O", "O", "B-geo", "I-geo", "O"]),
    (["Prices", "rose", "in", "Paris", "on", "Monday", "."], ["O", "O", "O", "B-geo", "O", "B-tim", "O"]),
]
NEW_SENTENCES = [
    (["Merkel", "visited", "York", "."], ["B-person", "O", "B-city", "O"]),
    (["Aspirin", "met", "Paris", "in", "Monday", "."], ["B-drug", "O", "B-city", "O", "O", "O"]),
    (["The", "UN", "rose", "."], ["O", "O", "O", "O"]),
    (["Ibuprofen", "visited", "New", "York", "."], ["B-drug", "O", "B-city", "I-city", "O"]),
]
# Sentences whose words the source and the new vocabulary all know.
KNOWN = [["Merkel", "visited", "Paris", "."], ["The", "UN", "met", "in", "New", "York", "."], ["Paris", "rose", "on", "Monday"]]


def _corpus(sentences: list, tags: bool = True) -> Corpus:
    return Corpus.from_sentences([w for w, _ in sentences], None, [t for _, t in sentences] if tags else None)


def _source_run(folder: Path) -> tuple[ModelConfig, dict, Vocabularies]:
    return make_checkpoint(folder, with_pos=False, corpus=_corpus(SOURCE_SENTENCES))


def _save_run(folder: Path, config: ModelConfig, params: dict, vocabs: Vocabularies) -> Path:
    """A checkpoint folder of these parameters (what `export` reads)."""
    folder.mkdir(parents=True)
    atomic_write_json(folder / "config.json", {"format_version": CONFIG_VERSION, "model": config.to_dict(),
                                               "data": {"buckets": [4, 9]}, "train": {"decode": "argmax"}})
    vocabs.save(folder / "vocab.json")
    save_params(folder / "best.params.npz", params)
    return folder


def _target(config: ModelConfig, vocabs: Vocabularies) -> ModelConfig:
    return ModelConfig(**{**config.to_dict(), "n_words": len(vocabs.words), "n_chars": len(vocabs.chars),
                          "n_tags": len(vocabs.tags)})


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("source")
    config, params, vocabs = _source_run(folder / "run")
    packages = {q: export_model(folder / "run", folder / f"pkg-{q}", quantize=q) for q in ("none", "int8")}
    return {"run": folder / "run", "config": config, "params": params, "vocabs": vocabs, **packages}


def _char_tables(params: dict, config: ModelConfig) -> np.ndarray:
    # The folded tables, computed here from scratch (not through param_map).
    e = params["char_embed_weight"].astype(np.float64)
    return np.concatenate([e @ params[f"char_conv{w}_weight"][:, 0, k, :].astype(np.float64).T
                           for w in config.filter_widths for k in range(w)], axis=1)


def test_a_run_and_a_float_package_read_back_to_the_same_network(source: dict) -> None:
    config, params = source["config"], source["params"]
    for spec in (source["run"], source["none"]):
        got = load_source(str(spec))
        assert got.kind == ("run" if spec == source["run"] else "package")
        assert set(got.params) == set(param_shapes(config))
        for name in got.params:
            if name == "char_embed_weight" or name.startswith("char_conv") and name.endswith("weight"):
                continue  # stored folded: only the tables are defined (below)
            np.testing.assert_array_equal(got.params[name], params[name], err_msg=name)
        # Folded again, the recovered embedding and kernels give the stored tables: float32 sums of
        # char_dim products, each factor rounded once to float32.
        eps = np.finfo(np.float32).eps
        mine, theirs = _char_tables(got.params, config), _char_tables(params, config)
        bound = (config.char_dim + 3) * eps * (np.abs(got.params["char_embed_weight"]).astype(np.float64).sum(1).max()
                                               * max(np.abs(got.params[f"char_conv{w}_weight"]).max() for w in config.filter_widths)) + eps * np.abs(theirs)
        assert (np.abs(mine - theirs) <= bound).all()


def test_an_int8_package_reads_back_within_half_a_quantization_step(source: dict) -> None:
    config, params = source["config"], source["params"]
    got = load_source(str(source["int8"]))
    pkg = load_package(source["int8"])
    model = onnx.load(str(pkg.graph_path(None)))
    if pkg.char_graph_path is not None:  # format 2: the character tables are the character graph's
        model.graph.initializer.extend(onnx.load(str(pkg.char_graph_path)).graph.initializer)
    inits = {t.name: numpy_helper.to_array(t, base_dir=str(source["int8"])) for t in model.graph.initializer}
    # Each weight stored as int8/uint8 is within half its step of the float parameter it came from.
    assert "word_embed_weight_quantized" in inits
    # The lookup tables have one step per row (`quantize.row_tables`): a (rows, 1) column.
    steps = inits["word_embed_weight_scale"]
    assert steps.shape == (config.n_words, 1)
    assert (np.abs(got.params["word_embed_weight"] - params["word_embed_weight"]) <= steps / 2 * (1 + 1e-5)).all()
    # The default int8 scheme feeds each LSTM its W as Mul(Cast(int8 constant), scale per direction).
    producers = {o: n for n in model.graph.node for o in n.output}
    lstms = {n.input[3]: n for n in model.graph.node if n.op_type == "LSTM"}
    for k in range(config.num_layers):
        mul = producers[lstms[f"lstm{k}_B"].input[1]]
        assert mul.op_type == "Mul" and producers[mul.input[0]].op_type == "Cast"
        scales = inits[mul.input[1]].reshape(-1)
        for i, d in enumerate(config.lstm_directions):
            diff = np.abs(got.params[f"lstm{k}_{d}_i2h_weight"] - params[f"lstm{k}_{d}_i2h_weight"]).max()
            assert diff <= float(scales[i]) / 2 * (1 + 1e-5)
    step = float(inits["fc_weight_t_scale"])
    assert np.abs(got.params["fc_weight"] - params["fc_weight"]).max() <= step / 2 * (1 + 1e-5)
    np.testing.assert_array_equal(got.params["fc_bias"], params["fc_bias"])  # small tensors stay float
    # The character tables: the rank-char_dim fit is at least as close to the stored tables as the
    # float ones (Frobenius), which lie within half a step of them per entry.
    stored = _char_tables(params, config)
    refit = _char_tables(got.params, config)
    steps = max(float(inits[f"char_conv{w}_table{k}_scale"].max()) for w in config.filter_widths for k in range(w))  # the largest row step
    assert np.linalg.norm(refit - stored) <= steps * np.sqrt(stored.size) * (1 + 1e-3)


def test_every_weight_of_an_int8_package_with_a_pos_head_reads_back_within_half_its_tensors_step(tmp_path: Path) -> None:
    """The int8 package against the float32 one of the same run, parameter by parameter: the POS head's output
    layer (a second `MatMulInteger`, its weights unsigned with the zero point 128) and the recurrent weights
    too, which the test above does not look at. Every scale of the int8 scheme is symmetric, per tensor or
    finer (per direction, per row), so each weight is within half of max|w| / 127 of its float value."""
    make_checkpoint(tmp_path / "run", use_pos=False, pos_aux_weight=1.0)  # a POS head, no POS input
    float_source = load_source(str(export_model(tmp_path / "run", tmp_path / "pkg-none", quantize="none")))
    int8_source = load_source(str(export_model(tmp_path / "run", tmp_path / "pkg-int8", quantize="int8")))
    graph = onnx.load(str(load_package(tmp_path / "pkg-int8").graph_path(None)), load_external_data=False)
    assert sum(n.op_type == "MatMulInteger" for n in graph.graph.node) == 2  # the tag and the POS output layers
    assert "pos_fc_weight" in float_source.params and set(int8_source.params) == set(float_source.params)
    checked = []
    for name, value in float_source.params.items():
        if name == "char_embed_weight" or name.startswith("char_conv") and name.endswith("weight"):
            continue  # stored folded into tables: the test above checks those
        half_step = float(np.abs(value).max()) / 127 / 2 * (1 + 1e-5)
        assert np.abs(int8_source.params[name] - value).max() <= half_step, name
        checked.append(name)
    assert {"pos_fc_weight", "fc_weight", "lstm0_fwd_h2h_weight", "lstm0_bwd_h2h_weight"} <= set(checked)


def test_a_weight_dequantized_per_channel_by_a_dequantize_linear_node_is_read(source: dict, tmp_path: Path) -> None:
    """The other layout export may write: the LSTM's W as the output of DequantizeLinear (axis 1)."""
    from ner_fast.training.init_source import initializer_values

    model = onnx.load(str(load_package(source["none"]).graph_path(None)))
    graph = model.graph
    w = next(t for t in graph.initializer if t.name == "lstm0_W")
    value = numpy_helper.to_array(w, base_dir=str(source["none"]))
    scale = (np.abs(value).max(axis=(0, 2)) / 127).astype(np.float32)  # per row of axis 1
    q = np.clip(np.round(value / scale[None, :, None]), -127, 127).astype(np.int8)
    graph.initializer.remove(w)
    graph.initializer.extend([numpy_helper.from_array(q, "lstm0_W_q"), numpy_helper.from_array(scale, "lstm0_W_s")])
    graph.node.insert(0, onnx.helper.make_node("DequantizeLinear", ["lstm0_W_q", "lstm0_W_s"], ["lstm0_W"], axis=1))
    values, steps = initializer_values(graph, ["lstm0_W"])
    np.testing.assert_allclose(values["lstm0_W"], q * scale[None, :, None], rtol=0, atol=0)
    assert steps["lstm0_W"] == pytest.approx(float(scale.max()))


def test_the_bundled_ensemble_gives_member_0_whose_tables_unfold() -> None:
    got = load_source("ensemble")
    assert got.kind == "package" and got.member == 0
    arch = load_package(got.path).model["architecture"]["members"][0]
    assert got.config.hidden == arch["hidden"] and got.config.filter_widths == arch["filter_widths"]
    assert got.params["char_embed_weight"].shape == (arch["n_chars"], arch["char_dim"])
    assert got.params["crf_transitions"].shape == (arch["n_tags"], arch["n_tags"])
    assert got.record()["sha256"] == hashlib.sha256((got.path / "manifest.json").read_bytes()).hexdigest()


def test_init_default_starts_a_tiny_run_from_the_bundled_package(tmp_path: Path) -> None:
    # `--init default`: the bundled name, resolved through the one table (package.BUNDLED); its sizes
    # (hidden 200, 50-dimensional GloVe words) are inherited, its 100,000 vector words join the vocabulary.
    from ner_fast.package import DEFAULT_PACKAGE

    data = write_conll(tmp_path / "gmb-like.conll", [list(zip(w, t)) for w, t in SOURCE_SENTENCES * 8])
    out = tmp_path / "run"
    args = [str(data), "--init", "default", "--out", str(out), "--epochs", "1", "--patience", "0", "--batch-size", "8",
            "--no-progress", "--freeze-epochs", "1", "--average", "0"]
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "config.json").read_text())
    assert doc["init"]["source"] == "default" and doc["init"]["kind"] == "package"
    assert doc["init"]["sha256"] == hashlib.sha256((DEFAULT_PACKAGE / "manifest.json").read_bytes()).hexdigest()
    assert doc["model"]["hidden"] == 200 and doc["model"]["word_dim"] == 50
    assert len(json.loads((out / "vocab.json").read_text())["words"]) > 100_000
    # Frozen for its one epoch: the LSTM is still the package's.
    src = load_source("default")
    np.testing.assert_array_equal(load_params(out / "last.params.npz")["lstm0_fwd_i2h_weight"], src.params["lstm0_fwd_i2h_weight"])
    # Its package carries the default's GloVe rows, so it names them as a --vectors package does (model.json
    # `vectors`, ATTRIBUTION.md), marked as come through --init; it named none.
    glove = load_package(DEFAULT_PACKAGE).model["vectors"]
    assert doc["init"]["vectors"] == glove and glove["licence"] == "PDDL-1.0"
    pkg = load_package(export_model(out, tmp_path / "pkg"))
    assert pkg.model["vectors"] == {**glove, "through": "--init default"}
    assert "ATTRIBUTION.md" in pkg.manifest["files"]
    notice = (pkg.path / "ATTRIBUTION.md").read_text()
    assert glove["attribution"] in notice and "then --init default" in notice


@pytest.mark.parametrize("kind", ["run", "none"])
def test_same_tags_start_from_the_sources_outputs(source: dict, kind: str, tmp_path: Path) -> None:
    """Domain adaptation (the source's tag set): before any update the new network tags sentences whose
    words both know exactly as the source's tagger does, though its vocabulary numbers them differently."""
    src = load_source(str(source[kind]))
    corpus = Corpus.from_sentences([s for s, _ in NEW_SENTENCES] + KNOWN, None,
                                   [["O"] * len(s) for s, _ in NEW_SENTENCES] + [["O"] * len(s) for s in KNOWN])
    vocabs = Vocabularies.build(corpus, lowercase=True)
    vocabs = Vocabularies(words=vocabs.words, chars=vocabs.chars, pos=None, tags=src.vocabs.tags, lowercase=True)
    assert vocabs.words.itos != src.vocabs.words.itos and vocabs.chars.itos != src.vocabs.chars.itos
    config = _target(src.config, vocabs)
    params, report = initial_params(src, config, vocabs, init_params(config, seed=5))
    assert report["rows"]["word_embed_weight"] > 2 and report["rows"]["fc_weight"] == len(vocabs.tags)
    new_pkg = export_model(_save_run(tmp_path / "new", config, params, vocabs), tmp_path / "new-pkg", quantize="none")
    old_pkg = source["none"]
    theirs = Tagger.load(old_pkg).tag_batch(KNOWN, proba=True)
    ours = Tagger.load(new_pkg).tag_batch(KNOWN, proba=True)
    assert theirs[0] == ours[0] and any(t != "O" for s in ours[0] for t in s)
    for a, b in zip(theirs[1], ours[1]):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_new_tag_set_gets_a_fresh_output_layer_and_keeps_the_encoder(source: dict) -> None:
    src = load_source(str(source["run"]))
    vocabs = Vocabularies.build(_corpus(NEW_SENTENCES), lowercase=True)
    config = _target(src.config, vocabs)
    fresh = init_params(config, seed=3)
    params, report = initial_params(src, config, vocabs, fresh)
    shared = [t for t in vocabs.tags.itos if t in src.vocabs.tags.stoi]
    assert shared == ["O"]
    for i, tag in enumerate(vocabs.tags.itos):
        expected = src.params["fc_weight"][src.vocabs.tags.stoi[tag]] if tag in shared else fresh["fc_weight"][i]
        np.testing.assert_array_equal(params["fc_weight"][i], expected)
    for name in report["whole"]:
        np.testing.assert_array_equal(params[name], src.params[name])
    assert any(n.startswith("lstm") for n in report["whole"]) and "char_conv2_bias" in report["whole"]
    # Words and characters by string: the new vocabulary's rows of known ones are the source's.
    for i, w in enumerate(vocabs.words.itos):
        theirs = src.vocabs.words.itos.index(w) if w in src.vocabs.words.itos else None  # <pad>, <unk> too
        row = src.params["word_embed_weight"][theirs] if theirs is not None else fresh["word_embed_weight"][i]
        np.testing.assert_array_equal(params["word_embed_weight"][i], row)
    assert "aspirin" in vocabs.words.stoi and "aspirin" not in src.vocabs.words.stoi
    np.testing.assert_array_equal(params["word_embed_weight"][1], src.params["word_embed_weight"][1])  # <unk>


def test_a_tag_set_of_another_scheme_keeps_the_rows_by_name_and_starts_the_crf_fresh(tmp_path: Path) -> None:
    # BIO into IOBES (and back): `B-per` is every entity's first token in one, a multi-token one's in the
    # other, and the CRF's scores are the grammar (IOBES never has B-X then O): those start fresh. The oracle
    # spells the IOBES-to-IOB2 prefixes out itself.
    src_config, _, _ = make_checkpoint(tmp_path / "bio", with_pos=False, corpus=_corpus(SOURCE_SENTENCES), crf=True)
    src = load_source(str(tmp_path / "bio"))
    iobes = [(["Angela", "Merkel", "visited", "Paris", "."], ["B-per", "E-per", "O", "S-geo", "O"]),
             (["The", "UN", "met", "."], ["O", "S-org", "O", "O"])]
    for first, second in ((src, iobes), (None, SOURCE_SENTENCES)):
        if first is None:  # and the other way: an IOBES source into BIO data
            make_checkpoint(tmp_path / "iobes", with_pos=False, corpus=_corpus(iobes), crf=True)
            first = load_source(str(tmp_path / "iobes"))
        vocabs = Vocabularies.build(_corpus(second), lowercase=True)
        config = _target(first.config, vocabs)
        fresh = init_params(config, seed=3)
        params, report = initial_params(first, config, vocabs, fresh)
        assert "not of one scheme" in report["note"]
        for name in ("crf_transitions", "crf_start", "crf_end"):
            assert name in report["fresh"] and name not in report["rows"]
            np.testing.assert_array_equal(params[name], fresh[name])
        # From IOB2 into IOBES, S-X starts from B-X's row and E-X from I-X's; the other way, rows by name.
        into_iobes = second is iobes
        source_of = {t: ({"S-": "B-", "E-": "I-"}.get(t[:2], t[:2]) + t[2:] if into_iobes else t) for t in vocabs.tags.itos}
        shared = {t: s for t, s in source_of.items() if s in first.vocabs.tags.stoi}
        assert {"O", "B-per"} <= set(shared) and report["rows"]["fc_weight"] == len(shared)
        assert not into_iobes or {"S-geo", "E-per"} <= set(shared)
        for tag, theirs in shared.items():
            np.testing.assert_array_equal(params["fc_weight"][vocabs.tags.stoi[tag]], first.params["fc_weight"][first.vocabs.tags.stoi[theirs]])
    # One scheme on both sides: the CRF's scores by name, as before.
    params, report = initial_params(src, _target(src.config, src.vocabs), src.vocabs, init_params(_target(src.config, src.vocabs), seed=3))
    assert "note" not in report and report["rows"]["crf_transitions"] == len(src.vocabs.tags)
    np.testing.assert_array_equal(params["crf_transitions"], src.params["crf_transitions"])


def test_sizes_that_cannot_match_are_refused_naming_the_option(source: dict, tmp_path: Path) -> None:
    run = str(source["run"])
    with pytest.raises(OptionError, match=r"^--hidden: --init .* has hidden 7"):
        inherit_architecture(run, {"hidden": 8})
    # --vectors wider than SOURCE's words (6 numbers): blamed on --vectors, not on a --word-dim nobody gave;
    # narrower ones fit inside SOURCE's word dimension (`training.rows`), which the run takes.
    vectors = tmp_path / "v.txt"
    vectors.write_text("the " + " ".join(["0.1"] * 7) + "\n", encoding="utf-8")
    with pytest.raises(OptionError, match=rf"^--vectors: {vectors} has 7 numbers a word, --init .* has word_dim 6"):
        inherit_architecture(run, {"vectors": str(vectors)})
    vectors.write_text("the 0.1 0.2 0.3\n", encoding="utf-8")
    assert inherit_architecture(run, {"vectors": str(vectors)})["word_dim"] == 6
    inherited = inherit_architecture(run, {"dropout": 0.2})
    assert inherited["hidden"] == 7 and inherited["filter_widths"] == [2, 3] and inherited["dropout"] == 0.2
    src = load_source(run)
    with pytest.raises(OptionError, match="^--filters") as err:
        check_architecture(src, ModelConfig(**{**src.config.to_dict(), "filters": 5}))
    # Reached only by a config built in Python (the command line inherits first): it says how to inherit there.
    assert "from Python, TrainConfig.from_options(..., **inherit_architecture(SOURCE, options)) takes them" in str(err.value)
    data = write_conll(tmp_path / "new.conll", [list(zip(w, t)) for w, t in NEW_SENTENCES])
    result = CliRunner().invoke(train_command, [str(data), "--init", run, "--out", str(tmp_path / "x"), "--char-dim", "9"])
    assert result.exit_code == 2
    assert "--char-dim: --init" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()
    with pytest.raises(OptionError, match="^--freeze-epochs: parameter servers"):
        TrainConfig(out=str(tmp_path / "y"), init=run, kvstore="dist_sync")
    result = CliRunner().invoke(train_command, [str(data), "--init", str(tmp_path), "--out", str(tmp_path / "z")])
    assert result.exit_code == 2 and "--init" in result.output and "neither a training run folder" in result.output
    result = CliRunner().invoke(train_command, [str(data), "--init", str(tmp_path / "gone"), "--out", str(tmp_path / "z")])
    assert result.exit_code == 2 and f"--init: {tmp_path / 'gone'}: no such file or folder" in result.output
    # The tutorial recipe is the tutorial's network from nothing: with --init it would be neither.
    result = CliRunner().invoke(train_command, [str(data), "--init", run, "--recipe", "tutorial", "--out", str(tmp_path / "t")])
    assert result.exit_code == 2 and "Error: --recipe: the tutorial recipe trains" in result.output
    assert not (tmp_path / "t").exists()


def test_a_source_that_reads_pos_turns_the_pos_head_off_unless_asked(tmp_path: Path) -> None:
    # `train --init POS_RUN` (a network that reads POS tags, so no POS head): the student took use_pos from
    # SOURCE but the tuned recipe's POS head (--pos-aux-weight 1), and was refused naming --pos-aux-weight
    # and "with --pos", options the user never gave. Left out, the head follows SOURCE, as word_dim follows
    # the vectors; given, it is the user's (and refused with its own message).
    from helpers import POS, SENTENCES, TAGS

    run = tmp_path / "pos-run"
    make_checkpoint(run)  # reads POS tags, no POS head
    assert inherit_architecture(str(run), {})["pos_aux_weight"] == 0.0
    assert inherit_architecture(str(run), {"pos_aux_weight": 0.5})["pos_aux_weight"] == 0.5
    data = write_conll(tmp_path / "pos.conll", [list(zip(w, p, t)) for w, p, t in zip(SENTENCES, POS, TAGS)] * 4)
    result = CliRunner().invoke(train_command, [str(data), "--init", str(run), "--out", str(tmp_path / "x"),
                                                "--epochs", "1", "--batch-size", "4", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "x" / "config.json").read_text())["model"]["pos_aux_weight"] == 0.0


def test_a_source_that_reads_pos_says_what_corpus_it_needs(tmp_path: Path) -> None:
    # A corpus without POS columns got "--pos: --init RUN: lstm0_fwd_i2h_weight has shape ...", one with
    # other POS tags "train with --no-pos", which --init then refuses (use_pos must match SOURCE's).
    from helpers import SENTENCES, TAGS

    run = tmp_path / "pos-run"
    make_checkpoint(run)  # reads POS tags
    plain = write_conll(tmp_path / "plain.conll", [list(zip(w, t)) for w, t in zip(SENTENCES, TAGS)] * 4)
    other = write_conll(tmp_path / "other.conll",
                        [list(zip(w, ["X"] * len(w), t)) for w, t in zip(SENTENCES, TAGS)] * 4)
    for data, says in ((plain, "this model reads POS tags, which this corpus does not have: give one with a POS column"), (other, "POS ids, this corpus gives")):
        result = CliRunner().invoke(train_command, [str(data), "--init", str(run), "--out", str(tmp_path / "x"),
                                                    "--epochs", "1", "--batch-size", "4", "--no-progress"])
        assert result.exit_code == 2 and says in result.output, result.output
        assert "lstm0" not in result.output and "--no-pos" not in result.output
        assert "a model trained without POS input" in result.output
        assert not (tmp_path / "x").exists()


def test_cli_records_the_source_freezes_the_encoder_resumes_and_exports_provenance(source: dict, tmp_path: Path) -> None:
    data = write_conll(tmp_path / "new.conll", [list(zip(w, t)) for w, t in NEW_SENTENCES * 10])
    out = tmp_path / "run"
    runner = CliRunner()
    args = [str(data), "--init", str(source["int8"]), "--out", str(out), "--epochs", "1", "--patience", "0",
            "--batch-size", "4", "--no-progress", "--freeze-epochs", "1", "--average", "0"]
    result = runner.invoke(train_command, args)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "config.json").read_text())
    manifest = hashlib.sha256((source["int8"] / "manifest.json").read_bytes()).hexdigest()
    assert doc["train"]["init"] == str(source["int8"])
    assert doc["init"]["sha256"] == manifest and doc["init"]["kind"] == "package"
    assert doc["model"]["hidden"] == source["config"].hidden  # sizes taken from SOURCE
    # SOURCE's words join the corpus's, after them: a word only SOURCE knew keeps its row when tagging.
    vocab = json.loads((out / "vocab.json").read_text())["words"]
    corpus_words = {w.lower() for s, _ in NEW_SENTENCES for w in s}
    assert "angela" in vocab and "angela" not in corpus_words
    assert all(w in corpus_words for w in vocab[2 : 2 + len(corpus_words)])
    # Frozen for the first epoch: the LSTM and convolutions are still SOURCE's; the output layer moved.
    src = load_source(str(source["int8"]))
    after = load_params(out / "last.params.npz")
    for name in ("lstm0_fwd_i2h_weight", "lstm1_bwd_h2h_weight", "char_conv3_weight", "casing_embed_weight"):
        np.testing.assert_array_equal(after[name], src.params[name])
    # ("angela" never occurs in the corpus: its row gets no gradient and stays SOURCE's; Adam's update of a
    # zero gradient is zero.)
    np.testing.assert_array_equal(after["word_embed_weight"][vocab.index("angela")],
                                  src.params["word_embed_weight"][src.vocabs.words.itos.index("angela")])
    assert not np.array_equal(after["fc_bias"], np.zeros_like(after["fc_bias"]))
    # --resume continues (the encoder now trains) and keeps the record.
    result = runner.invoke(train_command, ["--resume", str(out), "--epochs", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["init"] == doc["init"]
    moved = load_params(out / "last.params.npz")
    assert not np.array_equal(moved["lstm0_fwd_i2h_weight"], src.params["lstm0_fwd_i2h_weight"])
    pkg = export_model(out, tmp_path / "pkg", quantize="none")
    assert load_package(pkg).model["source"]["init"] == doc["init"]


def test_a_path_written_as_a_path_is_the_folder_and_recorded_as_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `--init ./default` with a run folder named `default` here: that folder, recorded so that no record reads
    # as the bundled package `default` (config.json's init, the package made from the run); `--init default`,
    # the bare name, stays the bundled package.
    from ner_fast.package import DEFAULT_PACKAGE
    from ner_fast.training.distill import resolve_teachers
    from ner_fast.training.init_source import resolve

    monkeypatch.chdir(tmp_path)
    make_checkpoint(Path("default"), with_pos=False)
    data = write_conll(Path("train.conll"), [[("Ann", "B-PER"), ("runs", "O")], [("Rome", "B-LOC"), ("is", "O")]] * 20)
    result = CliRunner().invoke(train_command, [str(data), "--init", "./default", "--out", "run", "--epochs", "1",
                                                "--batch-size", "8", "--no-progress", "--average", "0"])
    assert result.exit_code == 0, result.output
    doc = json.loads(Path("run/config.json").read_text())
    assert doc["train"]["init"] == "./default"
    assert doc["init"]["kind"] == "run" and doc["init"]["source"] == "./default" and doc["init"]["path"] == "./default"
    assert doc["init"]["sha256"] == hashlib.sha256(Path("default/best.params.npz").read_bytes()).hexdigest()
    assert load_package(export_model("run", "pkg", quantize=None)).model["source"]["init"]["source"] == "./default"
    # The bare name is the bundled package, folder or not.
    assert resolve("default") == ("package", DEFAULT_PACKAGE) and resolve("./default") == ("run", Path("./default"))
    # A Path given through the API is a path too (os.fspath(Path("./default")) is "default").
    assert TrainConfig(out="r", init=Path("./default")).init == "./default"
    assert TrainConfig(out="r", teacher=Path("default")).teacher == "./default"
    # --teacher reads and records its SOURCE by the same rule; an absolute path is recorded portably.
    [teacher] = resolve_teachers("./default")
    assert teacher.kind == "run" and teacher.record()["source"] == teacher.record()["path"] == "./default"
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere" / "default"
    make_checkpoint(elsewhere, with_pos=False)
    assert load_source(str(elsewhere)).record()["source"] == "./default"
