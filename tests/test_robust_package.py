"""The second bundled package, `robust` (`src/ner_fast/models/robust/`, `./dev.sh build-model robust`): one
distilled network with GloVe rows, trained on re-cased copies too; and the one table of bundled names
(`package.BUNDLED`) that `Tagger.load(NAME)`, the commands' PACKAGE arguments, the spaCy component and
`train --init` / `--teacher` resolve through (`package.package_path`).

The case-robustness check scores a slice of the GMB validation split, lower-cased, with seqeval (not the
package's own scorer) for both bundled packages and compares them.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from seqeval.metrics import f1_score

from helpers import absolute_paths
from ner_fast import Tagger
from ner_fast.cli import cli
from ner_fast.corpus import Corpus
from ner_fast.package import (
    BUNDLED, BUNDLED_NAMES, DEFAULT_PACKAGE, MANIFEST_FILE, ROBUST_PACKAGE, PackageError, bundled_package_path,
    load_package, package_path,
)
from ner_fast.prepare import split_corpus

ROOT = Path(__file__).resolve().parents[1]
# Validation sentences in the case-robustness slice: enough entities (about 500) for the F1s to mean
# something, few enough to tag in a second or two.
SLICE = 400


@pytest.fixture(scope="module")
def robust() -> Tagger:
    return Tagger.load("robust", device="cpu")


def test_the_table_resolves_each_name_and_the_alias() -> None:
    assert set(BUNDLED) == {"default", "robust"} and set(BUNDLED_NAMES) == {"default", "bundled", "robust"}
    assert package_path(None) == package_path("default") == package_path("bundled") == DEFAULT_PACKAGE
    assert package_path("robust") == bundled_package_path("robust") == ROBUST_PACKAGE
    assert ROBUST_PACKAGE.parent == DEFAULT_PACKAGE.parent
    # Anything else is a folder, and so is a Path object even when its text is a bundled name.
    assert package_path("export/gmb") == Path("export/gmb")
    assert package_path(Path("robust")) == Path("robust")
    with pytest.raises(PackageError, match="not a bundled model package"):
        bundled_package_path("nope")


def test_a_bundled_name_wins_over_a_folder_of_that_name_and_dot_slash_means_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "robust").mkdir()  # an empty folder: not a package
    assert package_path("robust") == ROBUST_PACKAGE
    assert package_path("./robust").resolve() == tmp_path / "robust"
    runner = CliRunner()
    result = runner.invoke(cli, ["info", "robust", "--json"])
    assert result.exit_code == 0, result.output
    assert Path(json.loads(result.output)["package"]["path"]) == ROBUST_PACKAGE
    result = runner.invoke(cli, ["info", "./robust"])
    assert result.exit_code == 1 and "not a model package" in result.output and "Traceback" not in result.output
    # `ner-fast tag robust --text ...`: the name is the package, not the input.
    result = runner.invoke(cli, ["tag", "robust", "--text", "angela merkel visited paris on monday ."])
    assert result.exit_code == 0, result.output
    assert "merkel" in result.output


def test_a_missing_bundled_package_is_one_line_saying_how_to_build_it(tmp_path: Path, move_bundled) -> None:
    move_bundled("robust", tmp_path / "models" / "robust")
    with pytest.raises(PackageError, match=re.escape("./dev.sh build-model robust")):
        Tagger.load("robust")
    assert package_path("default") == DEFAULT_PACKAGE  # the other one is still there
    for args in (["info", "robust"], ["tag", "robust", "--text", "Paris"], ["serve", "robust", "--port", "0"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, args
        assert result.output.startswith("Error: ") and "build-model robust" in result.output, args
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, args


def test_a_misspelt_bundled_name_is_one_line_naming_the_bundled_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`robst`, `Robust`: a name mistyped, not a folder the user meant; the messages said only "Directory
    'robst' does not exist", "robst: no such package folder", and `tag robst --text ...` "give INPUT or
    --text, not both" (the typo read as the INPUT)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("Paris is big .\n")
    for name in ("robst", "Robust"):
        with pytest.raises(PackageError, match=f"^{name}: no such package folder .*default, robust, bundled"):
            Tagger.load(name)
    with pytest.raises(PackageError, match=re.escape("a path is a folder; the bundled package is the plain string 'robust'")):
        Tagger.load(Path("robust"))  # a Path is a folder, as documented: say how to name the package
    with pytest.raises(PackageError, match="^export/gmb: no such package folder$"):
        Tagger.load("export/gmb")  # a path with folders is no name: nothing to add
    runner = CliRunner()
    for args in (["info", "robst"], ["serve", "Robust", "--port", "0"], ["tag", "robst", "--text", "Paris"],
                 ["tag", "robst", "notes.txt"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        error = result.output.strip().splitlines()[-1]
        assert error.startswith("Error: ") and args[1] in error and "default, robust, bundled" in error, args
        assert "Traceback" not in result.output and "not both" not in error, args
    result = runner.invoke(cli, ["info", "./robust"])  # the folder, asked for and not there
    assert result.exit_code == 2 and "the bundled package is the plain string 'robust'" in result.output
    # An INPUT that is there with --text is still the mistake of giving both.
    result = runner.invoke(cli, ["tag", "notes.txt", "--text", "Paris"])
    assert result.exit_code == 2 and "give INPUT or --text, not both" in result.output


def test_tag_with_a_bundled_name_and_no_input_says_which_is_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ner-fast tag robust` where a file ./robust exists tags stdin with the bundled package (the name
    wins); with no stdin to read, the one-line error says so, not only "no INPUT"."""
    (tmp_path / "robust").write_text("Paris is big .\n")
    command = [sys.executable, "-c", "from ner_fast.cli import main; main()", "tag", "robust"]
    done = subprocess.run(["bash", "-c", 'exec "$@" <&-', "_", *command], cwd=tmp_path,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "no INPUT" in done.stderr and "./robust is the file" in done.stderr and "Traceback" not in done.stderr
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["tag", "robust", "--output-dir", "out"])  # a cluster run: the same
    assert result.exit_code == 2 and "needs INPUT files" in result.output and "./robust is the file" in result.output


def test_robust_tags_a_sentence_and_finds_its_entities(robust: Tagger) -> None:
    assert robust.package.path == ROBUST_PACKAGE
    found = {(e.text, e.label) for e in robust("Angela Merkel visited Paris on Monday.").entities}
    assert ("Angela Merkel", "per") in found and ("Paris", "geo") in found
    lowered = {(e.text, e.label) for e in robust("angela merkel visited paris on monday.").entities}
    assert ("paris", "geo") in lowered and any(label == "per" for _, label in lowered)


def test_robust_is_case_robust_where_the_default_is_not(robust: Tagger, bundled: Corpus) -> None:
    validation = split_corpus(bundled, (0.8, 0.2))[1]
    offsets = validation.offsets.tolist()
    picks = np.linspace(0, len(validation) - 1, SLICE).astype(int).tolist()
    words = [validation.words[offsets[i] : offsets[i + 1]] for i in picks]
    gold = [list(validation.tags[offsets[i] : offsets[i + 1]]) for i in picks]
    lowered = [[w.lower() for w in s] for s in words]
    assert sum(t.startswith("B-") for s in gold for t in s) > 300
    default = Tagger.load("default", device="cpu")
    f1 = {name: f1_score(gold, tagger.tag_batch(lowered)) for name, tagger in (("robust", robust), ("default", default))}
    as_written = f1_score(gold, robust.tag_batch(words))
    assert f1["robust"] >= 0.6, f1
    assert f1["robust"] > f1["default"] + 0.1, f1
    # What casing costs it stays small: lower-cased within 0.1 of as written (recorded: 0.826 against 0.844).
    assert as_written - f1["robust"] < 0.1, (as_written, f1)


def test_the_package_records_its_vectors_licence_and_ships_their_attribution() -> None:
    pkg = load_package(ROBUST_PACKAGE)  # checksums verified, ATTRIBUTION.md among them
    vectors = pkg.model["vectors"]
    assert vectors["name"] == "glove-6b-50d" and vectors["licence"] == "PDDL-1.0"
    assert re.fullmatch(r"[0-9a-f]{64}", vectors["sha256"]) and "Pennington" in vectors["attribution"]
    assert "ATTRIBUTION.md" in pkg.manifest["files"]
    notice = (ROBUST_PACKAGE / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "GloVe 6B" in notice and "PDDL" in notice and "Pennington" in notice and vectors["sha256"] in notice
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ner_fast"]
    assert "models/robust/*" in data and "models/default/*" in data


def test_the_package_records_its_build_and_no_path_of_the_machine_that_built_it() -> None:
    model = load_package(ROBUST_PACKAGE).model
    prov = model["provenance"]
    assert prov["command"].startswith("./dev.sh build-model robust")
    assert prov["min_word_count"] == 1 and prov["words_kept"] is None and prov["ensemble"] == []
    assert prov["training"]["vectors"] == "glove-6b-50d" and prov["training"]["teacher"] == "default"
    assert prov["training"]["arch"]["hidden"] == 200 and prov["training"]["recase"] == 0.5
    assert prov["training"]["distill_weight"] == 0.7 and prov["training"]["vector_words"] == 100_000
    v = prov["validation"]
    assert v["sentences"] == 9592 and 0.8 < v["f1"] <= 1
    assert model["quantization"] == "int8" and model["use_pos"] is False
    assert len(model["vocab"]["words"]) > 100_000  # the GloVe words kept (--min-word-count 1)
    assert absolute_paths(model) == []


def test_init_and_teacher_take_the_name(tmp_path: Path) -> None:
    from ner_fast.training.distill import resolve_teachers
    from ner_fast.training.init_source import BUNDLED_NAMES as INIT_NAMES, load_source

    assert INIT_NAMES == BUNDLED_NAMES
    got = load_source("robust")
    assert got.kind == "package" and got.path == ROBUST_PACKAGE
    assert got.config.hidden == 200 and got.config.word_dim == 50
    assert got.record()["sha256"] == hashlib.sha256((ROBUST_PACKAGE / MANIFEST_FILE).read_bytes()).hexdigest()
    [teacher] = resolve_teachers("robust")
    assert teacher.kind == "package" and teacher.path == ROBUST_PACKAGE and teacher.record()["source"] == "robust"


def test_a_dask_run_sends_the_workers_the_named_package() -> None:
    pytest.importorskip("distributed")
    from ner_fast.dask import package_ref
    from ner_fast.package import package_checksum

    assert package_ref("robust") == (str(ROBUST_PACKAGE.resolve()), package_checksum(ROBUST_PACKAGE))
    with pytest.raises(PackageError, match="^robst: no such package folder .*default, robust, bundled"):
        package_ref("robst")  # told as a name mistyped, not as the absolute path of a folder


@pytest.mark.slow
def test_robust_reproduces_its_recorded_validation_f1(robust: Tagger) -> None:
    # The F1 the bundle step measured and recorded, measured again on the whole validation split (9,592
    # sentences) with the tagger as a user opens it.
    from ner_fast.training.bundle import score_tagger, validation_corpus

    recorded = robust.package.model["provenance"]["validation"]
    corpus = validation_corpus(robust.package.model["provenance"]["training"])
    assert len(corpus) == recorded["sentences"] == 9592
    assert score_tagger(robust, corpus).f1 == pytest.approx(recorded["f1"], abs=1e-4)
