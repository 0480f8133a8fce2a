"""`ner-fast info`: the model card (`model_card`, `format_card`) and the command."""
from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from ner_fast.cli import cli
from ner_fast.cli.info import PER_BATCH_OPS, format_card, model_card
from ner_fast.labels import GMB_DESCRIPTIONS
from ner_fast.package import default_package_path, load_package, package_checksum, package_path
from ner_fast.training.export import export_model
from helpers import make_checkpoint


def per_batch_ops(folder: Path) -> set[str]:
    """The oracle: the per-batch quantization operators of the package's graphs, read with onnx."""
    found = set()
    for graph in folder.glob("*.onnx"):
        found |= {n.op_type for n in onnx.load(str(graph), load_external_data=False).graph.node} & set(PER_BATCH_OPS)
    return found


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
