"""The two bundled packages and the one table of their names (`package.BUNDLED`): `default`
(`src/ner_fast/models/default/`, `./dev.sh build-model`), one distilled network with GloVe rows, trained on
re-cased copies too, what `Tagger.load()` opens; and `ensemble` (`src/ner_fast/models/ensemble/`,
`./dev.sh build-model ensemble`), two networks, its teacher. `Tagger.load(NAME)`, the commands' PACKAGE
arguments, the spaCy component and `train --init` / `--teacher` resolve the names through
`package.package_path`.

The case-robustness check scores a slice of the GMB validation split, lower-cased, with seqeval (not the
package's own scorer) for both bundled packages and compares them.
"""
from __future__ import annotations

import hashlib
import inspect
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
    BUNDLED, BUNDLED_NAMES, DEFAULT_PACKAGE, ENSEMBLE_PACKAGE, MANIFEST_FILE, PackageError, bundled_package_path,
    load_package, package_path,
)
from ner_fast.prepare import split_corpus
from ner_fast.training.bundle import build_default_package

ROOT = Path(__file__).resolve().parents[1]
# Validation sentences in the case-robustness slice: enough entities (about 500) for the F1s to mean
# something, few enough to tag in a second or two.
SLICE = 400


@pytest.fixture(scope="module")
def default() -> Tagger:
    return Tagger.load("default", device="cpu")


@pytest.fixture(scope="module")
def ensemble() -> Tagger:
    return Tagger.load("ensemble", device="cpu")


def test_the_table_resolves_each_name_and_the_alias() -> None:
    assert set(BUNDLED) == {"default", "ensemble"} and set(BUNDLED_NAMES) == {"default", "bundled", "ensemble"}
    assert package_path(None) == package_path("default") == package_path("bundled") == DEFAULT_PACKAGE
    assert package_path("ensemble") == bundled_package_path("ensemble") == ENSEMBLE_PACKAGE
    assert ENSEMBLE_PACKAGE.parent == DEFAULT_PACKAGE.parent and ENSEMBLE_PACKAGE != DEFAULT_PACKAGE
    # Anything else is a folder, and so is a Path object even when its text is a bundled name; `robust`,
    # the default's name before it became the default, is no name any more (no alias).
    assert package_path("export/gmb") == Path("export/gmb")
    assert package_path(Path("ensemble")) == Path("ensemble")
    assert package_path("robust") == Path("robust")
    with pytest.raises(PackageError, match="not a bundled model package"):
        bundled_package_path("robust")


def test_dev_sh_builds_each_package_into_the_folder_the_table_names() -> None:
    # The table's build command for each name is the dev.sh command that writes that folder.
    dev_sh = (ROOT / "dev.sh").read_text()
    assert BUNDLED["default"].build == "./dev.sh build-model"
    assert BUNDLED["ensemble"].build == "./dev.sh build-model ensemble"
    assert "--out src/ner_fast/models/ensemble " in dev_sh and ENSEMBLE_PACKAGE.parts[-3:] == ("ner_fast", "models", "ensemble")
    # The bundle step has no default --out (left out, it replaced the installed package): dev.sh names it.
    assert "--out src/ner_fast/models/default " in dev_sh and DEFAULT_PACKAGE.parts[-3:] == ("ner_fast", "models", "default")
    assert inspect.signature(build_default_package).parameters["out"].default is inspect.Parameter.empty


def test_a_bundled_name_wins_over_a_folder_of_that_name_and_dot_slash_means_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ensemble").mkdir()  # an empty folder: not a package
    assert package_path("ensemble") == ENSEMBLE_PACKAGE
    assert package_path("./ensemble").resolve() == tmp_path / "ensemble"
    runner = CliRunner()
    result = runner.invoke(cli, ["info", "ensemble", "--json"])
    assert result.exit_code == 0, result.output
    assert Path(json.loads(result.output)["package"]["path"]) == ENSEMBLE_PACKAGE
    result = runner.invoke(cli, ["info", "./ensemble"])
    assert result.exit_code == 1 and "not a model package" in result.output and "Traceback" not in result.output
    # Named as given: "ensemble: not a model package" read as if the bundled package were broken.
    assert result.output.startswith("Error: ./ensemble: not a model package"), result.output
    # `ner-fast tag ensemble --text ...`: the name is the package, not the input.
    result = runner.invoke(cli, ["tag", "ensemble", "--text", "Angela Merkel visited Paris on Monday ."])
    assert result.exit_code == 0, result.output
    assert "Merkel" in result.output


@pytest.mark.parametrize(("name", "other"), [("default", "ensemble"), ("ensemble", "default")])
def test_a_missing_bundled_package_is_one_line_saying_how_to_build_it(name: str, other: str, tmp_path: Path,
                                                                      move_bundled) -> None:
    move_bundled(name, tmp_path / "models" / name)
    # The build command whole, in its quotes: `./dev.sh build-model` is also the start of the ensemble's.
    build = f"`{BUNDLED[name].build}`"
    with pytest.raises(PackageError, match=re.escape(build)):
        Tagger.load(name)
    assert package_path(other) == BUNDLED[other].folder  # the other one is still there
    for args in (["info", name], ["tag", name, "--text", "Paris"], ["serve", name, "--port", "0"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, args
        assert result.output.startswith("Error: ") and build in result.output, args
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, args


def test_a_misspelt_or_removed_bundled_name_is_one_line_naming_the_bundled_names(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`ensembel`, `Ensemble`: a name mistyped, not a folder the user meant; the messages said only "Directory
    'ensembel' does not exist", "ensembel: no such package folder", and `tag ensembel --text ...` "give INPUT
    or --text, not both" (the typo read as the INPUT). `robust`, a name that was bundled, is told the same way."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("Paris is big .\n")
    for name in ("ensembel", "Ensemble", "robust"):
        with pytest.raises(PackageError, match=f"^{name}: no such package folder .*default, ensemble, bundled"):
            Tagger.load(name)
    with pytest.raises(PackageError, match=re.escape("a path is a folder; the bundled package is the plain string 'ensemble'")):
        Tagger.load(Path("ensemble"))  # a Path is a folder, as documented: say how to name the package
    with pytest.raises(PackageError, match="^export/gmb: no such package folder$"):
        Tagger.load("export/gmb")  # a path with folders is no name: nothing to add
    runner = CliRunner()
    for args in (["info", "ensembel"], ["serve", "Ensemble", "--port", "0"], ["tag", "ensembel", "--text", "Paris"],
                 ["tag", "ensembel", "notes.txt"], ["info", "robust"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        error = result.output.strip().splitlines()[-1]
        assert error.startswith("Error: ") and args[1] in error and "default, ensemble, bundled" in error, args
        assert "Traceback" not in result.output and "not both" not in error, args
    result = runner.invoke(cli, ["info", "./ensemble"])  # the folder, asked for and not there
    assert result.exit_code == 2 and "the bundled package is the plain string 'ensemble'" in result.output
    # An INPUT that is there with --text is still the mistake of giving both.
    result = runner.invoke(cli, ["tag", "notes.txt", "--text", "Paris"])
    assert result.exit_code == 2 and "give INPUT or --text, not both" in result.output


def test_tag_with_a_bundled_name_and_no_input_says_which_is_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ner-fast tag ensemble` where a file ./ensemble exists tags stdin with the bundled package (the name
    wins); with no stdin to read, the one-line error says so, not only "no INPUT"."""
    (tmp_path / "ensemble").write_text("Paris is big .\n")
    command = [sys.executable, "-c", "from ner_fast.cli import main; main()", "tag", "ensemble"]
    done = subprocess.run(["bash", "-c", 'exec "$@" <&-', "_", *command], cwd=tmp_path,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "no INPUT" in done.stderr and "./ensemble is the file" in done.stderr and "Traceback" not in done.stderr
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["tag", "ensemble", "--output-dir", "out"])  # a cluster run: the same
    assert result.exit_code == 2 and "needs INPUT files" in result.output and "./ensemble is the file" in result.output


def test_each_bundled_package_tags_a_sentence_and_the_default_a_lower_cased_one(default: Tagger, ensemble: Tagger) -> None:
    assert default.package.path == DEFAULT_PACKAGE and ensemble.package.path == ENSEMBLE_PACKAGE
    for tagger in (default, ensemble):
        found = {(e.text, e.label) for e in tagger("Angela Merkel visited Paris on Monday.").entities}
        assert ("Angela Merkel", "per") in found and ("Paris", "geo") in found, tagger.package.path
    lowered = {(e.text, e.label) for e in default("angela merkel visited paris on monday.").entities}
    assert ("paris", "geo") in lowered and any(label == "per" for _, label in lowered)


def test_the_default_is_case_robust_where_the_ensemble_is_not(default: Tagger, ensemble: Tagger, bundled: Corpus) -> None:
    validation = split_corpus(bundled, (0.8, 0.2))[1]
    offsets = validation.offsets.tolist()
    picks = np.linspace(0, len(validation) - 1, SLICE).astype(int).tolist()
    words = [validation.words[offsets[i] : offsets[i + 1]] for i in picks]
    gold = [list(validation.tags[offsets[i] : offsets[i + 1]]) for i in picks]
    lowered = [[w.lower() for w in s] for s in words]
    assert sum(t.startswith("B-") for s in gold for t in s) > 300
    f1 = {name: f1_score(gold, tagger.tag_batch(lowered)) for name, tagger in (("default", default), ("ensemble", ensemble))}
    as_written = f1_score(gold, default.tag_batch(words))
    assert f1["default"] >= 0.6, f1
    assert f1["default"] > f1["ensemble"] + 0.1, f1
    # What casing costs it stays small: lower-cased within 0.1 of as written.
    assert as_written - f1["default"] < 0.1, (as_written, f1)


def test_the_default_records_its_vectors_licence_and_ships_their_attribution() -> None:
    pkg = load_package(DEFAULT_PACKAGE)  # checksums verified, ATTRIBUTION.md among them
    vectors = pkg.model["vectors"]
    assert vectors["name"] == "glove-6b-50d" and vectors["licence"] == "PDDL-1.0"
    assert re.fullmatch(r"[0-9a-f]{64}", vectors["sha256"]) and "Pennington" in vectors["attribution"]
    notice = (DEFAULT_PACKAGE / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "GloVe 6B" in notice and "PDDL" in notice and "Pennington" in notice and vectors["sha256"] in notice
    # Each bundled package ships an ATTRIBUTION.md exactly when it holds vectors (the ensemble holds none).
    for name in BUNDLED:
        each = load_package(bundled_package_path(name))
        assert ("ATTRIBUTION.md" in each.manifest["files"]) == (each.model.get("vectors") is not None), name
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ner_fast"]
    assert {f"models/{folder.name}/*" for folder in (DEFAULT_PACKAGE, ENSEMBLE_PACKAGE)} <= set(data)


def test_the_default_records_its_build_and_no_path_of_the_machine_that_built_it() -> None:
    model = load_package(DEFAULT_PACKAGE).model
    prov = model["provenance"]
    assert prov["command"].startswith("./dev.sh build-model")
    assert not prov["command"].startswith("./dev.sh build-model ensemble")
    assert "members" not in model["architecture"] and "members" not in model["source"]  # one network
    assert prov["min_word_count"] == 1 and prov["words_kept"] is None and prov["ensemble"] == []
    assert prov["training"]["vectors"] == "glove-6b-50d" and prov["training"]["teacher"]
    assert prov["training"]["arch"]["hidden"] == 200 and prov["training"]["recase"] == 0.5
    assert prov["training"]["distill_weight"] == 0.7 and prov["training"]["vector_words"] == 100_000
    v = prov["validation"]
    assert v["sentences"] == 9592 and 0.8 < v["f1"] <= 1
    assert model["quantization"] == "int8" and model["use_pos"] is False
    assert len(model["vocab"]["words"]) > 100_000  # the GloVe words kept (--min-word-count 1)
    assert absolute_paths(model) == []


def test_the_default_is_distilled_from_the_ensemble() -> None:
    # What `./dev.sh build-model` trains: `--teacher ensemble --distill-target marginals --distill-temperature 1`
    # (the bundled ensemble's CRF marginals).
    prov = load_package(DEFAULT_PACKAGE).model["provenance"]
    training = prov["training"]
    assert training["teacher"] == "ensemble" and training["distill_target"] == "marginals"
    assert training["distill_temperature"] == 1.0 and training["recase"] == 0.5


def test_init_and_teacher_take_the_names(tmp_path: Path) -> None:
    from ner_fast.training.distill import resolve_teachers
    from ner_fast.training.init_source import BUNDLED_NAMES as INIT_NAMES, load_source

    assert INIT_NAMES == BUNDLED_NAMES
    got = load_source("default")
    assert got.kind == "package" and got.path == DEFAULT_PACKAGE
    assert got.config.hidden == 200 and got.config.word_dim == 50
    assert got.record()["sha256"] == hashlib.sha256((DEFAULT_PACKAGE / MANIFEST_FILE).read_bytes()).hexdigest()
    [teacher] = resolve_teachers("ensemble")
    assert teacher.kind == "package" and teacher.path == ENSEMBLE_PACKAGE and teacher.record()["source"] == "ensemble"
    assert teacher.record()["sha256"] == hashlib.sha256((ENSEMBLE_PACKAGE / MANIFEST_FILE).read_bytes()).hexdigest()


def test_a_dask_run_sends_the_workers_the_named_package() -> None:
    pytest.importorskip("distributed")
    from ner_fast.dask import package_ref
    from ner_fast.package import package_checksum

    assert package_ref("ensemble") == (str(ENSEMBLE_PACKAGE.resolve()), package_checksum(ENSEMBLE_PACKAGE))
    with pytest.raises(PackageError, match="^ensembel: no such package folder .*default, ensemble, bundled"):
        package_ref("ensembel")  # told as a name mistyped, not as the absolute path of a folder


@pytest.mark.slow
def test_the_ensemble_reproduces_its_recorded_validation_f1(ensemble: Tagger) -> None:
    # The F1 the bundle step measured and recorded, measured again on the whole validation split (9,592
    # sentences) with the tagger as a user opens it (the default's: tests/training/test_bundled_model.py).
    from ner_fast.training.bundle import score_tagger, validation_corpus

    recorded = ensemble.package.model["provenance"]["validation"]
    corpus = validation_corpus(ensemble.package.model["provenance"]["training"])
    assert len(corpus) == recorded["sentences"] == 9592
    assert score_tagger(ensemble, corpus).f1 == pytest.approx(recorded["f1"], abs=1e-4)


def test_an_empty_package_name_is_refused_not_read_as_the_current_folder(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Path("") is ".": `Tagger.load("")` and `ner-fast tag "" --text x` said ".: not a model package", or, in a
    # folder that is one, quietly loaded it.
    monkeypatch.chdir(tmp_path)
    for blank in ("", " "):
        with pytest.raises(PackageError, match="is no package: give a package folder or a bundled name"):
            Tagger.load(blank)
    runner = CliRunner()
    for args in (["info", ""], ["serve", "", "--port", "0"], ["tag", "", "--text", "Paris"], ["tag", "", "notes.txt"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "'' is no package" in lines[0] and "Traceback" not in result.output, args
