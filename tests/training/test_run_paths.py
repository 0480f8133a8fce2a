"""A run folder's config.json records the files the run reads (DATA, --dev, a --vectors file, --teacher folders)
by absolute path (`config.recorded_path`), so `train --resume` and `ner-fast evaluate` read the same files from
any folder; runs recorded before (paths as given) still work from the folder they started in; names
(`glove-6b-50d`, `default`) stay names; the package exported from such a run holds no absolute path
(`package.portable_path`)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from helpers import POS, SENTENCES, TAGS, absolute_paths, write_conll
from ner_fast.cli import cli
from ner_fast.config import TrainConfig
from ner_fast.package import load_package

TINY = ["--hidden", "4", "--filters", "2", "--char-dim", "3", "--batch-size", "4", "--patience", "0", "--no-progress"]
INPUTS = {"data": "data.conll", "dev": "dev.conll", "vectors": "vec.txt"}


def _corpus(path: Path, copies: int, shift: int = 0) -> Path:
    """A CoNLL file of the helpers' sentences; `shift` renames their words (another corpus, same file name)."""
    rows = [[(f"{w}{shift}" if shift else w, p, t) for w, p, t in zip(*cols)] for cols in zip(SENTENCES, POS, TAGS)]
    return write_conll(path, rows * copies)


def _inputs(folder: Path, shift: int = 0) -> None:
    folder.mkdir()
    _corpus(folder / INPUTS["data"], 6, shift)
    _corpus(folder / INPUTS["dev"], 2, shift)
    words = sorted({w.lower() for s in SENTENCES for w in s})
    (folder / INPUTS["vectors"]).write_text("".join(f"{w}{shift or ''} {i} 0.5 -1 {shift}\n" for i, w in enumerate(words)))


def _ok(result: Result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`a/run`, trained one epoch from folder `a` with relative DATA, --dev and --vectors; `b` holds other files
    of the same names (what a path as given would read from there)."""
    _inputs(tmp_path / "a")
    _inputs(tmp_path / "b", shift=7)
    monkeypatch.chdir(tmp_path / "a")
    _ok(CliRunner().invoke(cli, ["train", INPUTS["data"], "--dev", INPUTS["dev"], "--vectors", INPUTS["vectors"],
                                 "--out", "run", "--epochs", "1", "--json", *TINY]))
    return tmp_path / "a" / "run"


def test_resume_and_evaluate_read_the_run_s_own_files_from_another_folder(started: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    before = _ok(CliRunner().invoke(cli, ["evaluate", "run", "--no-progress", "--json"]))
    assert before["tokens"] == 2 * sum(map(len, SENTENCES))  # the --dev corpus
    # From `b`, whose data.conll, dev.conll and vec.txt are other files: as given, the paths read them (the
    # vocabularies differ: refused) or, elsewhere, nothing.
    monkeypatch.chdir(tmp_path / "b")
    assert _ok(CliRunner().invoke(cli, ["evaluate", "../a/run", "--no-progress", "--json"])) == before
    resumed = _ok(CliRunner().invoke(cli, ["train", "--resume", "../a/run", "--epochs", "2", "--json"]))
    assert len(resumed["history"]) == 2
    monkeypatch.chdir(tmp_path)
    _ok(CliRunner().invoke(cli, ["train", "--resume", "a/run", "--epochs", "3", "--json"]))
    train = json.loads((started / "config.json").read_text())["train"]
    assert {k: train[k] for k in INPUTS} == {k: str((tmp_path / "a" / v).resolve()) for k, v in INPUTS.items()}
    # The package keeps no path of this machine (model.json: `vectors.source` portable, no `train` section).
    assert CliRunner().invoke(cli, ["export", "a/run", "--out", "pkg"]).exit_code == 0
    model = load_package(tmp_path / "pkg").model
    assert model["vectors"]["source"] == "a/vec.txt" and absolute_paths(model) == []


def test_a_run_recorded_with_paths_as_given_still_works_from_its_folder(started: Path, tmp_path: Path) -> None:
    # config.json as written before the paths were recorded absolute: from the folder the run started in.
    path = started / "config.json"
    doc = json.loads(path.read_text())
    doc["train"].update(INPUTS)
    path.write_text(json.dumps(doc))
    assert _ok(CliRunner().invoke(cli, ["evaluate", "run", "--no-progress", "--json"]))["tokens"] > 0
    _ok(CliRunner().invoke(cli, ["train", "--resume", "run", "--epochs", "2", "--json"]))
    train = json.loads(path.read_text())["train"]  # written again: absolute from now on
    assert {k: train[k] for k in INPUTS} == {k: str((tmp_path / "a" / v).resolve()) for k, v in INPUTS.items()}


def test_resume_reads_the_teachers_it_started_with_from_another_folder(started: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # `--teacher run,default`: a run folder by a relative path and the bundled model by its name.
    assert (started / "best.params.npz").is_file()
    args = ["train", INPUTS["data"], "--teacher", "run", "--out", "student", "--epochs", "1", "--word-dim", "4", "--json"]
    _ok(CliRunner().invoke(cli, [*args, *TINY]))
    monkeypatch.chdir(tmp_path / "b")
    _ok(CliRunner().invoke(cli, ["train", "--resume", "../a/student", "--epochs", "2", "--json"]))
    train = json.loads((started.parent / "student" / "config.json").read_text())["train"]
    assert train["teacher"] == str(started.resolve())
    recorded = TrainConfig(out="x", teacher="run, default,bundled").to_dict()["teacher"]
    assert recorded == f"{(tmp_path / 'b' / 'run').resolve()},default,bundled"  # resolved from `b`; names stay names


def test_named_vectors_stay_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    recorded = TrainConfig(out="run", data="glove-6b-50d", vectors="glove-6b-50d").to_dict()
    assert recorded["vectors"] == "glove-6b-50d"  # the installed vectors, read by name from any folder
    assert recorded["data"] == str(tmp_path.resolve() / "glove-6b-50d")  # DATA is always a path
    assert TrainConfig(out="run").to_dict()["data"] is None  # the bundled corpus


def test_a_recorded_file_gone_is_one_line_naming_the_run_folder_as_given(started: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """evaluate named the run by the `out` recorded where it started (`run`, meaningless from another
    folder) and both said "not found put it back"."""
    (started.parent / INPUTS["dev"]).unlink()
    monkeypatch.chdir(tmp_path)
    dev = (started.parent / INPUTS["dev"]).resolve()
    for args, who in ((["evaluate", "a/run", "--no-progress"], "evaluate"),
                      (["train", "--resume", "a/run", "--epochs", "2"], "a resumed run")):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"Error: a/run was started with --dev {dev}, which {who}"), result.output
        assert result.output.rstrip().endswith("not found: put it back") and "Traceback" not in result.output


def test_a_folder_prepared_with_a_vectors_file_trains_and_resumes_from_another_folder(tmp_path: Path,
                                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """prepared.json kept `--vectors vec.txt` as given: `train PREPARED` from another folder read that
    folder's vec.txt (another file: refused by digest) or none, and a run trained on it never resumed
    (config.json recorded the file absolute, the folder relative: "made with --vectors vec.txt" refused)."""
    _inputs(tmp_path / "a")
    _inputs(tmp_path / "b", shift=7)
    monkeypatch.chdir(tmp_path / "a")
    result = CliRunner().invoke(cli, ["prepare", INPUTS["data"], "--vectors", INPUTS["vectors"], "--batch-size", "4",
                                      "--out", "prep"])
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "a" / "prep" / "prepared.json").read_text())["settings"]
    assert settings["vectors"] == str((tmp_path / "a" / INPUTS["vectors"]).resolve())
    # A folder prepared before (the file as given) still trains and resumes from where it was prepared.
    path = tmp_path / "a" / "prep" / "prepared.json"
    path.write_text(path.read_text().replace(json.dumps(settings["vectors"]), json.dumps(INPUTS["vectors"])))
    _ok(CliRunner().invoke(cli, ["train", "prep", "--out", "here", "--epochs", "1", "--json", *TINY]))
    _ok(CliRunner().invoke(cli, ["train", "--resume", "here", "--epochs", "2", "--json"]))
    path.write_text(path.read_text().replace(json.dumps(INPUTS["vectors"]), json.dumps(settings["vectors"])))
    monkeypatch.chdir(tmp_path / "b")  # whose vec.txt is another file
    _ok(CliRunner().invoke(cli, ["train", "../a/prep", "--out", "run", "--epochs", "1", "--json", *TINY]))
    monkeypatch.chdir(tmp_path)
    assert len(_ok(CliRunner().invoke(cli, ["train", "--resume", "b/run", "--epochs", "2", "--json"]))["history"]) == 2
