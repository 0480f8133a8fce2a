"""`ner-fast info`: the model card (`model_card`, `format_card`) and the command."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from ner_fast.cli import cli
from ner_fast.cli.info import format_card, model_card
from ner_fast.labels import GMB_DESCRIPTIONS
from ner_fast.package import BATCH_DEPENDENT_OPS, default_package_path, graph_ops, load_package, package_checksum, package_path
from ner_fast.training.export import export_model
from helpers import make_checkpoint


def unsigned_matmul_weights(folder: Path) -> bool:
    """The oracle: every `MatMulInteger` of the package's graphs has uint8 weights (read with onnx)."""
    found = []
    for graph in folder.glob("*.onnx"):
        model = onnx.load(str(graph), load_external_data=False)
        dtypes = {t.name: t.data_type for t in model.graph.initializer}
        found += [dtypes[n.input[1]] == onnx.TensorProto.UINT8 for n in model.graph.node if n.op_type == "MatMulInteger"]
    return all(found)


def per_batch_ops(folder: Path) -> set[str]:
    """The oracle: the batch-dependent operators of the package's graphs, read with onnx."""
    found = set()
    for graph in folder.glob("*.onnx"):
        found |= {n.op_type for n in onnx.load(str(graph), load_external_data=False).graph.node} & set(BATCH_DEPENDENT_OPS)
    return found


def test_graph_ops_finds_op_types_not_names(tmp_path: Path) -> None:
    # `info` searched the graph's bytes for op names: the bundled ensemble's `Log_2` (an Identity that replaced a
    # Log) would have read as a Log, and `Log` itself was not looked for (`quantize.is_batch_invariant` did).
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    for op, name in (("Identity", "Log_2"), ("Log", "n0"), ("Identity", "DynamicQuantizeLinear_7")):
        graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], name=name)], "g", [x], [y])
        path = tmp_path / f"{op}-{name}.onnx"
        onnx.save(helper.make_model(graph), str(path))
        oracle = {n.op_type for n in onnx.load(str(path)).graph.node} & set(BATCH_DEPENDENT_OPS)
        assert graph_ops(path, BATCH_DEPENDENT_OPS) == oracle == ({"Log"} if op == "Log" else set())


@pytest.mark.parametrize(("name", "members"), [(None, 1), ("ensemble", 2)])
def test_the_bundled_card_holds_labels_scores_training_size_and_invariance(name: str | None, members: int) -> None:
    # None: the default package (one distilled network); `ensemble`, its teacher, two networks.
    folder = package_path(name)
    card = model_card(name)
    assert Path(card["package"]["path"]) == folder
    assert card["package"]["name"] == (name or "default")
    assert format_card(card).splitlines()[0] == f"Model package '{name or 'default'}' (bundled), {folder}"
    pkg = load_package(folder)
    validation = pkg.model["provenance"]["validation"]
    assert card["package"]["checksum"] == package_checksum(folder)
    rows = {row["label"]: row for row in card["labels"]}
    assert sorted(rows) == sorted({t.partition("-")[2] for t in pkg.tags if t != "O"})
    for label, row in rows.items():
        assert row["description"] == GMB_DESCRIPTIONS[label]
        assert row["f1"] == validation["per_type"][label]["f1"] and row["support"] == validation["per_type"][label]["support"]
    assert card["validation"]["f1"] == validation["f1"]
    assert card["training"]["data"] == validation["corpus"] and card["training"]["recipe"]["learning_rate"] > 0
    assert card["network"]["members"] == members
    assert card["size"]["bytes"] == sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert card["quantization"]["scheme"] == pkg.model["quantization"]
    assert card["quantization"]["batch_invariant"] == (not per_batch_ops(folder))
    assert set(card["quantization"]["per_batch_ops"]) == per_batch_ops(folder)
    assert card["quantization"]["same_on_every_cpu"] is True and unsigned_matmul_weights(folder)
    text = format_card(card)
    assert "geographical entity" in text and "natural phenomenon" in text and f"{validation['f1']:.4f}" in text
    assert ("batch-invariant yes" if card["quantization"]["batch_invariant"] else "batch-invariant no") in text
    assert "Speed" in text
    assert ("2 networks (an ensemble)" if members == 2 else "1 network,") in text


def test_a_float_package_without_provenance_is_batch_invariant(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "model", buckets=[4], with_pos=False)
    package = export_model(tmp_path / "model", tmp_path / "pkg", quantize=None)
    card = model_card(package)
    assert not per_batch_ops(Path(package))
    assert card["quantization"]["batch_invariant"] is True and card["quantization"]["per_batch_ops"] == []
    assert card["quantization"]["scheme"] == "none" and "quantization none;" in format_card(card)  # was null in --json
    assert card["validation"] is None and card["speed"] is None
    assert {row["label"]: row["description"] for row in card["labels"]} == {
        "geo": "geographical entity", "org": "organization", "per": "person", "tim": "time expression"}
    assert all(row["f1"] is None for row in card["labels"])
    text = format_card(card)
    assert "no validation scores recorded" in text and "not recorded in this package" in text
    assert card["training"]["vectors"] is None and "word vectors" not in text


def test_the_card_names_the_word_vectors_training_started_from_and_their_licence(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "model", buckets=[4], with_pos=False)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    described = {"name": "glove-6b-50d", "source": "glove-6b-50d", "dim": 50, "words": 400000, "sha256": "ab" * 32,
                 "licence": "PDDL-1.0", "attribution": "GloVe: Pennington, Socher and Manning (2014)"}
    config["data"] = {**config.get("data", {}), "vectors_source": described}
    config["data"]["vector_words"] = 1000
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    card = model_card(export_model(tmp_path / "model", tmp_path / "pkg", quantize=None))
    assert card["training"]["vectors"] == {**described, "vector_words": 1000}
    line = next(line for line in format_card(card).splitlines() if "word vectors" in line)
    assert "glove-6b-50d" in line and "400,000 words of 50 numbers" in line and "licence PDDL-1.0" in line
    # The file's size is not the vocabulary's share of it (--vector-words).
    assert "its 1,000 most frequent offered to the vocabulary" in line
    assert "Pennington" in line


def test_an_exported_package_names_the_corpus_its_run_trained_on(tmp_path: Path) -> None:
    # `ner-fast export` writes no provenance (`bundle` does): the card takes the corpus from the run's config.
    make_checkpoint(tmp_path / "model", buckets=[4], with_pos=False)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["data"] = {**config.get("data", {}), "source": str(tmp_path / "corpora" / "mine.conll")}
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    card = model_card(export_model(tmp_path / "model", tmp_path / "pkg", quantize=None))
    assert card["training"]["data"] == "mine.conll"  # outside the working directory: its name only (portable_path)
    assert card["package"]["name"] is None  # not a bundled package
    assert "  data: mine.conll" in format_card(card).splitlines()


def test_the_card_shows_the_speed_a_package_records_with_its_cpu(tmp_path: Path) -> None:
    import shutil

    from ner_fast.atomic import atomic_write_json
    from ner_fast.package import MANIFEST_FILE, MODEL_FILE, sha256_file

    package = tmp_path / "pkg"
    shutil.copytree(default_package_path(), package)
    speed = {"tag_batch_tokens_per_s": 31234, "tag_p50_ms": 0.981, "p50_sentences": 300, "workers": 1,
             "cpu": {"model": "AMD EPYC 7B13", "flags": {"avx2": True, "avx512f": False, "avx512_vnni": False, "amx": False},
                     "cores": 2}, "load_average": [0.5, 0.4, 0.3]}
    model = json.loads((package / MODEL_FILE).read_text(encoding="utf-8"))
    model["provenance"]["speed"] = speed
    atomic_write_json(package / MODEL_FILE, model)
    manifest = json.loads((package / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["files"][MODEL_FILE] = sha256_file(package / MODEL_FILE)
    atomic_write_json(package / MANIFEST_FILE, manifest)
    card = model_card(package)
    assert card["speed"] == speed
    text = format_card(card)
    assert "tag_batch 31,234 tokens/s (1 worker, " in text and "p50 0.981 ms" in text and "AMD EPYC 7B13 (avx2; 2 cores)" in text


def test_a_speed_measured_in_the_cpuid_view_says_so() -> None:
    # What machine.cpu_info records inside benchmarks/cpuid_view.py: the flags CPUID showed, the real ones beside.
    cpu = {"model": "Intel(R) Xeon(R) Processor", "flags": {"avx2": True, "avx512f": False, "avx512_vnni": False, "amx": False},
           "real_flags": {"avx2": True, "avx512f": True, "avx512_vnni": True, "amx": True}, "cores": 2,
           "cpuid_view": "avx2: CPUID without AVX-512, VNNI or AMX (benchmarks/cpuid_view.py), this CPU's cores"}
    card = model_card(None)
    card["speed"] = {"tag_batch_tokens_per_s": 163673, "tag_p50_ms": 0.612, "workers": 1, "cpu": cpu, "load_average": [1.0]}
    line = next(line for line in format_card(card).splitlines() if "measured on" in line)
    assert "as an AVX2-only CPU" in line and "avx2, avx512f, avx512_vnni, amx" in line and "cpuid_view.py" in line


def test_the_command_prints_the_card_and_its_json() -> None:
    runner = CliRunner()
    plain = runner.invoke(cli, ["info"])
    assert plain.exit_code == 0, plain.output
    assert plain.output == format_card(model_card())
    as_json = runner.invoke(cli, ["info", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.output) == json.loads(json.dumps(model_card()))


def test_a_folder_that_is_no_package_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["info", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {tmp_path}: not a model package (manifest.json is missing)"]


def _log_training(run: Path, f1s: list[float], best: int) -> None:
    """What training leaves in `run` after len(f1s) epochs: state.json (best epoch `best`) and metrics.jsonl."""
    (run / "state.json").write_text(json.dumps({"epoch": len(f1s), "best_epoch": best, "best_f1": f1s[best - 1], "bad_epochs": 0}))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "valid": {"f1": f1}}) + "\n" for e, f1 in enumerate(f1s, 1)))


@pytest.mark.parametrize("which", ["best", "last"])
def test_an_exported_package_records_the_f1_its_run_logged_at_the_exported_epoch(tmp_path: Path, which: str) -> None:
    make_checkpoint(tmp_path / "model", buckets=[4], with_pos=False)
    (tmp_path / "model" / "last.params.npz").write_bytes((tmp_path / "model" / "best.params.npz").read_bytes())
    f1s = [0.41, 0.6183, 0.5572]  # the best epoch is not the last
    _log_training(tmp_path / "model", f1s, best=2)
    epoch = 2 if which == "best" else 3
    package = export_model(tmp_path / "model", tmp_path / "pkg", quantize=None, which=which)
    recorded = load_package(Path(package)).model["source"]["validation"]
    assert recorded["epoch"] == epoch and recorded["f1"] == f1s[epoch - 1]
    card = model_card(package)
    assert card["validation"] is None  # nothing was measured through the tagger
    [run] = card["logged_validation"]
    assert (run["epoch"], run["f1"], run["checkpoint"]) == (epoch, f1s[epoch - 1], which)
    text = format_card(card)
    line = next(line for line in text.splitlines() if "validation: entity F1" in line)
    assert f"{f1s[epoch - 1]:.4f} at epoch {epoch}" in line and "logged in training (MXNet float32)" in line
    assert "not measured through the tagger" in line and "no validation scores recorded" not in text
    as_json = CliRunner().invoke(cli, ["info", str(package), "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["logged_validation"] == json.loads(json.dumps(card["logged_validation"]))


def test_an_ensemble_records_each_members_logged_f1_and_a_run_without_metrics_none(tmp_path: Path) -> None:
    for name in ("a", "b"):
        make_checkpoint(tmp_path / name, buckets=[4], with_pos=False, seed=len(name))
    _log_training(tmp_path / "a", [0.5, 0.7251], best=2)
    # b stopped before its first epoch ended: no state.json, no metrics.jsonl.
    package = export_model(tmp_path / "a", tmp_path / "pkg", quantize=None, ensemble=[tmp_path / "b"])
    members = load_package(Path(package)).model["source"]["members"]
    assert members[0]["validation"]["f1"] == 0.7251 and members[1]["validation"] is None
    card = model_card(package)
    assert [(r["epoch"], r["f1"]) for r in card["logged_validation"]] == [(2, 0.7251), (None, None)]
    text = format_card(card)
    assert "entity F1 0.7251 at epoch 2" in text and "no validation F1 logged in training" in text
    # A lone run without metrics records none, and the card claims none.
    alone = model_card(export_model(tmp_path / "b", tmp_path / "pkg_b", quantize=None))
    assert alone["logged_validation"] is None and alone["validation"] is None
    assert "no validation scores recorded" in format_card(alone) and "entity F1" not in format_card(alone)


def test_export_names_a_malformed_training_log_in_one_line(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "model", buckets=[4], with_pos=False)
    _log_training(tmp_path / "model", [0.5], best=1)
    with (tmp_path / "model" / "metrics.jsonl").open("a") as f:
        f.write("{not json\n")
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "model"), "--out", str(tmp_path / "pkg"), "--quantize", "none"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "metrics.jsonl:2" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "pkg").exists()


@pytest.mark.parametrize(("name", "version"), [("default", 2), ("ensemble", 1)])
def test_the_card_says_whether_the_character_features_are_a_cached_graph(name: str, version: int) -> None:
    """The bundled `default` is format 2 (the character CNN its own graph, cached by the tagger), `ensemble`
    format 1 (every graph computes them). The oracle reads the graphs with onnx: a format-2 dynamic graph
    takes the features as a second input, of the character graph's output width."""
    folder = package_path(name)
    dynamic = onnx.load(str(folder / "dynamic.onnx"), load_external_data=False).graph
    separate = len(dynamic.input) == 2
    assert separate == (version == 2) == (folder / "chars.onnx").is_file()
    width = None
    if separate:
        chars = onnx.load(str(folder / "chars.onnx"), load_external_data=False).graph
        width = chars.output[0].type.tensor_type.shape.dim[1].dim_value
        assert width == dynamic.input[1].type.tensor_type.shape.dim[2].dim_value > 0
    expected = {"graph": "chars.onnx" if separate else None, "width": width, "cached": separate}
    as_json = CliRunner().invoke(cli, ["info", name, "--json"])
    assert as_json.exit_code == 0, as_json.output
    card = json.loads(as_json.output)
    assert card["package"]["format_version"] == version
    assert card["network"]["char_features"] == expected
    plain = CliRunner().invoke(cli, ["info", name])
    assert plain.exit_code == 0, plain.output
    line = [row for row in plain.output.splitlines() if row.startswith("  character features: ")]
    assert len(line) == 1
    if separate:
        assert f"a graph of their own (chars.onnx, {width} a token), cached" in line[0] and "format 2" in line[0]
    else:
        assert "inside each graph, not cached" in line[0] and "format 1" in line[0]


def test_the_card_says_whether_int8_sums_are_the_same_on_every_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An int8 export stores its MatMulInteger weights unsigned and says so; a package written before
    (signed weights, no `int8_matmul_weights`) gets a line saying AVX2 CPUs may sum it otherwise and how to
    convert it, and `bundle --requantize` converts it."""
    import ner_fast.training.quantize as quantize_module
    from ner_fast.package import MANIFEST_FILE, MODEL_FILE, write_manifest
    from ner_fast.training.bundle import requantize_package

    make_checkpoint(tmp_path / "model", buckets=[4], with_pos=False)
    fresh = Path(export_model(tmp_path / "model", tmp_path / "fresh"))
    card = model_card(fresh)
    assert load_package(fresh).model["int8_matmul_weights"] == "uint8" and unsigned_matmul_weights(fresh)
    assert card["quantization"]["same_on_every_cpu"] is True and "--requantize" not in format_card(card)
    # A package of before: signed weights, and a model.json that does not say.
    monkeypatch.setattr(quantize_module, "_unsigned_weights", lambda rw, node: None)
    old = Path(export_model(tmp_path / "model", tmp_path / "old"))
    monkeypatch.undo()
    info = json.loads((old / MODEL_FILE).read_text())
    assert info["int8_matmul_weights"] == "int8"  # read from the graph written, not from the scheme's name
    del info["int8_matmul_weights"]
    (old / MODEL_FILE).write_text(json.dumps(info))
    manifest = json.loads((old / MANIFEST_FILE).read_text())
    write_manifest(old, manifest["files"], manifest["versions"], manifest["format_version"])
    assert not unsigned_matmul_weights(old)
    card = model_card(old)
    assert card["quantization"]["same_on_every_cpu"] is False
    assert "may differ on CPUs without AVX-512 VNNI" in format_card(card) and "--requantize" in format_card(card)
    converted, record = requantize_package(old, tmp_path / "converted", command="test")
    assert record["requantized"]["from"] == "signed-weights" and unsigned_matmul_weights(Path(converted))
    assert model_card(converted)["quantization"]["same_on_every_cpu"] is True


def test_the_card_lists_a_packages_weight_conversions_oldest_first() -> None:
    # `bundle --requantize` records each conversion with the one before it under `before`: the ensemble went
    # int8-dynamic -> int8, then signed -> unsigned MatMulInteger weights.
    chain = model_card("ensemble")["training"]["requantized"]
    recorded = load_package(package_path("ensemble")).model["provenance"]["requantized"]
    assert [step["from"] for step in chain] == [recorded["before"]["from"], recorded["from"]] == ["int8-dynamic", "signed-weights"]
    assert chain[-1]["validation_f1_before"] == recorded["validation_f1_before"]
    lines = [line for line in format_card(model_card("ensemble")).splitlines() if line.startswith("  requantized: ")]
    assert len(lines) == 2 and lines[0].startswith("  requantized: int8-dynamic -> int8 by ") and "F1 before 0.8528" in lines[1]
    assert model_card(None)["training"]["requantized"] == []  # `default`, built with today's int8: never converted
    assert not any(line.startswith("  requantized: ") for line in format_card(model_card(None)).splitlines())


def test_a_one_network_package_shows_the_per_label_scores_its_run_logged(tmp_path: Path) -> None:
    # `ner-fast info` of a package a user exported showed every label's F1 as "-": the per-type scores
    # training logs in metrics.jsonl at the exported epoch were not carried into the package.
    make_checkpoint(tmp_path / "model", buckets=[4], with_pos=False)
    _log_training(tmp_path / "model", [0.5, 0.7251], best=2)
    per_type = {"per": {"f1": 0.8125, "precision": 0.8, "recall": 0.825, "support": 40, "predicted": 41},
                "geo": {"f1": 0.3, "precision": 0.25, "recall": 0.375, "support": 8, "predicted": 12}}
    lines = (tmp_path / "model" / "metrics.jsonl").read_text().splitlines()
    lines[1] = json.dumps({"epoch": 2, "valid": {"f1": 0.7251, "per_type": per_type}})
    (tmp_path / "model" / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    card = model_card(export_model(tmp_path / "model", tmp_path / "pkg", quantize=None))
    assert card["labels_scored"] == "logged" and card["validation"] is None
    rows = {row["label"]: row for row in card["labels"]}
    assert {k: rows["per"][k] for k in ("f1", "precision", "recall", "support")} == {
        "f1": 0.8125, "precision": 0.8, "recall": 0.825, "support": 40}
    assert rows["geo"]["f1"] == 0.3
    assert [r["f1"] for label, r in rows.items() if label not in per_type] and all(
        r["f1"] is None for label, r in rows.items() if label not in per_type)
    text = format_card(card)
    assert "no per-label scores recorded" not in text and "0.8125" in text and "entity F1 0.7251 at epoch 2" in text
    # A package whose run logged no per-type scores says so.
    _log_training(tmp_path / "model", [0.5, 0.7251], best=2)
    bare = model_card(export_model(tmp_path / "model", tmp_path / "pkg2", quantize=None))
    assert bare["labels_scored"] is None and "no per-label scores recorded" in format_card(bare)


def test_the_card_of_an_exported_package_shows_its_runs_recipe_epochs_and_a_cut_vocabulary(tmp_path: Path) -> None:
    # The card of a package a user exported printed its `source` as one line of raw JSON, `recipe` and
    # `best_epoch` null; after `export --max-words` it showed the F1 logged with every word as the package's.
    make_checkpoint(tmp_path / "model", buckets=[4], with_pos=False,
                    train={"learning_rate": 0.002, "dev": "/d/dev.conll", "teacher": "/t/big,ensemble"})
    _log_training(tmp_path / "model", [0.5, 0.7251, 0.7], best=2)
    # A run recorded before --keep-long existed, which cut long sentences.
    doc = json.loads((tmp_path / "model" / "config.json").read_text())
    doc["train"].pop("keep_long", None)
    (tmp_path / "model" / "config.json").write_text(json.dumps(doc))
    lines = (tmp_path / "model" / "metrics.jsonl").read_text().splitlines()
    per_type = {"per": {"f1": 0.0, "precision": 0.0, "recall": 0.0, "support": 0, "predicted": 0},
                "geo": {"f1": 0.0, "precision": 0.0, "recall": 0.0, "support": 0, "predicted": 3}}
    lines[1] = json.dumps({"epoch": 2, "valid": {"f1": 0.7251, "per_type": per_type}})
    (tmp_path / "model" / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    train = json.loads((tmp_path / "model" / "config.json").read_text())["train"]
    n_words = len(json.loads((tmp_path / "model" / "vocab.json").read_text())["words"])
    whole = model_card(export_model(tmp_path / "model", tmp_path / "pkg", quantize=None))
    assert whole["training"]["recipe"]["learning_rate"] == train["learning_rate"]
    assert whole["training"]["recipe"]["dev"] == "dev.conll"  # a path of the builder's machine: its name alone
    assert whole["training"]["recipe"]["teacher"] == "big,ensemble"  # each teacher's; a bundled name stays
    assert whole["training"]["recipe"]["keep_long"] is False and "keep_long=False" in format_card(whole)
    assert (whole["training"]["best_epoch"], whole["training"]["epochs_trained"]) == (2, 3)
    text = format_card(whole)
    assert '{"model_dir"' not in text and "exported from run model (best checkpoint), trained from scratch" in text
    assert "best epoch 2 of 3" in text and "--max-words" not in text
    # A label without a validation entity has no recall or F1 (not 0.0), nor a precision without a prediction.
    rows = {row["label"]: row for row in whole["labels"]}
    assert (rows["per"]["f1"], rows["per"]["recall"], rows["per"]["precision"], rows["per"]["support"]) == (None, None, None, 0)
    assert (rows["geo"]["f1"], rows["geo"]["precision"]) == (None, 0.0)
    cut = model_card(export_model(tmp_path / "model", tmp_path / "cut", quantize=None, max_words=3))
    assert 3 < n_words and cut["training"]["source"]["max_words"] == 3
    assert "cut at export to its 3 most frequent words (--max-words)" in format_card(cut)
    # The last parameters still name the run's best epoch; an ensemble of runs on one corpus names it, and
    # its vocabulary is cut once.
    (tmp_path / "model" / "last.params.npz").write_bytes((tmp_path / "model" / "best.params.npz").read_bytes())
    last = model_card(export_model(tmp_path / "model", tmp_path / "last", quantize=None, which="last"))
    assert (last["training"]["best_epoch"], last["training"]["checkpoint_epoch"]) == (2, 3)
    # The last parameters of an interrupted run (a partly trained epoch): its epochs were shown as None.
    state = json.loads((tmp_path / "model" / "state.json").read_text())
    (tmp_path / "model" / "state.json").write_text(json.dumps({**state, "interrupted": True}))
    cut_short = model_card(export_model(tmp_path / "model", tmp_path / "cut-short", quantize=None, which="last"))
    assert (cut_short["training"]["best_epoch"], cut_short["training"]["epochs_trained"]) == (2, 3)
    assert "(interrupted) after 3 finished, best epoch 2" in format_card(cut_short)
    (tmp_path / "model" / "state.json").write_text(json.dumps(state))
    make_checkpoint(tmp_path / "other", buckets=[4], with_pos=False, seed=2)
    for run in ("model", "other"):
        doc = json.loads((tmp_path / run / "config.json").read_text())
        doc["data"]["source"] = "corpus.conll"
        (tmp_path / run / "config.json").write_text(json.dumps(doc))
    both = model_card(export_model(tmp_path / "model", tmp_path / "both", quantize=None, max_words=3,
                                   ensemble=[tmp_path / "other"]))
    assert both["training"]["data"] == "corpus.conll" and format_card(both).count("--max-words") == 1


def test_a_package_named_like_a_bundled_one_is_shown_as_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`export --out ensemble` said "wrote ensemble" and `info ./ensemble` "Model package ensemble": copied
    back into `ner-fast tag`, that name is the bundled ensemble, another model, silently."""
    make_checkpoint(tmp_path / "run", with_pos=False)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["export", "run", "--out", "ensemble", "--quantize", "none"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("wrote ./ensemble: ") and res.output.rstrip().endswith("MB (none)"), res.output
    res = CliRunner().invoke(cli, ["export", "run", "--out", "ensemble", "--quantize", "none", "--force", "--json"])
    assert json.loads(res.output)["package"] == "./ensemble"
    res = CliRunner().invoke(cli, ["info", "./ensemble"])
    assert res.exit_code == 0 and res.output.startswith("Model package ./ensemble\n"), res.output
    assert model_card("./ensemble")["package"]["path"] == "./ensemble"
    assert model_card("ensemble")["package"]["name"] == "ensemble"  # the bare name: the bundled one


def test_the_size_counts_the_packages_own_files_not_others_in_its_folder(tmp_path: Path) -> None:
    """`Package.file_sizes` is the one size of a package (info, export --json, the bundle): its manifest and what it
    lists; a file someone left in the folder (a `--force` export keeps it) is not the package's."""
    folder = tmp_path / "pkg"
    shutil.copytree(default_package_path(), folder)
    (folder / "notes.txt").write_bytes(b"x" * 1000)
    listed = json.loads((folder / "manifest.json").read_text())["files"]
    expected = {name: (folder / name).stat().st_size for name in [*listed, "manifest.json"]}
    assert load_package(folder).file_sizes == expected and "notes.txt" not in expected
    assert model_card(folder)["size"] == {"bytes": sum(expected.values()), "files": expected}
