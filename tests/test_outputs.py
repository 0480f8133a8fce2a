"""Output folders and files (issue 8, defects 2 and 10): no command removes or overwrites what it did
not write unless --force (and even then keeps it), `--out .` fails leaving nothing, symlinks are
written through, killed runs' temporaries get cleaned, errors name the output path."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from helpers import make_checkpoint
from ner_fast import atomic
from ner_fast.atomic import atomic_open, atomic_write_bytes, atomic_write_text, claim_output_dir
from ner_fast.cli import cli
from ner_fast.errors import OptionError

CONLL = "Angela\tNNP\tB-per\nvisited\tVBD\tO\nParis\tNNP\tB-geo\n\nThe\tDT\tO\nUN\tNNP\tB-org\nmet\tVBD\tO\n\n" * 20


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(result: Result, *words: str) -> None:
    """A one-line usage error (exit 2), not a traceback, mentioning `words`."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    for word in words:
        assert word in result.output, result.output


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "x.conll").write_text(CONLL, encoding="utf-8")
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    return folder


def test_prepare_refuses_a_folder_it_did_not_write(corpus_dir: Path) -> None:
    before = _snapshot(corpus_dir)
    result = CliRunner().invoke(cli, ["prepare", str(corpus_dir / "x.conll"), "--out", str(corpus_dir)])
    _refused(result, "--out", "--force")
    assert _snapshot(corpus_dir) == before
    assert sorted(p.name for p in corpus_dir.parent.iterdir()) == ["corpus"]  # no temporary left either


def test_prepare_replaces_its_own_output_and_force_keeps_other_files(corpus_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "prep"
    runner = CliRunner()
    args = ["prepare", str(corpus_dir / "x.conll"), "--out", str(out), "--buckets", "4"]
    assert runner.invoke(cli, args).exit_code == 0
    first = json.loads((out / "prepared.json").read_text())
    # An earlier output of prepare is replaced without --force.
    result = runner.invoke(cli, [*args, "--split", "0.5"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "prepared.json").read_text())["settings"]["split"] == [0.5, 0.5] != first["settings"]["split"]
    # With a file of the user's beside it: refused, then --force writes and keeps that file.
    (out / "README").write_text("keep me", encoding="utf-8")
    _refused(runner.invoke(cli, args), "README")
    result = runner.invoke(cli, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert (out / "README").read_text() == "keep me"
    assert json.loads((out / "prepared.json").read_text())["settings"]["split"] == [0.8, 0.2]
    assert sorted(p.name for p in out.iterdir()) == ["README", "prepared.json", "train.npz", "valid.npz", "vocab.json"]


def test_train_refuses_a_package_folder_even_with_force(tmp_path: Path) -> None:
    """Export's mirror: a run trained into a package's folder was hidden behind the package (`evaluate` said
    it was a package, `tag` and `info` read the old one)."""
    run, pkg = tmp_path / "run", tmp_path / "pkg"
    make_checkpoint(run)
    runner = CliRunner()
    assert runner.invoke(cli, ["export", str(run), "--out", str(pkg), "--buckets", "4"]).exit_code == 0
    before = _snapshot(pkg)
    for force in ([], ["--force"]):
        _refused(runner.invoke(cli, ["train", "--out", str(pkg), "--max-sentences", "40", "--epochs", "1", *force]),
                 "--out", f"{pkg} is a model package", "choose another folder")
    assert _snapshot(pkg) == before


def test_export_refuses_a_training_folder_and_replaces_its_own_package(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_checkpoint(run)
    before = _snapshot(run)
    runner = CliRunner()
    # Named as what it is, with or without --force (it offered --force, which then refused it anyway).
    for force in ([], ["--force"]):
        _refused(runner.invoke(cli, ["export", str(run), "--out", str(run), *force]), "--out", "is a training run")
    assert _snapshot(run) == before
    pkg = tmp_path / "pkg"
    assert runner.invoke(cli, ["export", str(run), "--out", str(pkg), "--buckets", "4,9"]).exit_code == 0
    assert (pkg / "bucket_9.onnx").exists()
    result = runner.invoke(cli, ["export", str(run), "--out", str(pkg), "--buckets", "4"])
    assert result.exit_code == 0, result.output
    assert not (pkg / "bucket_9.onnx").exists()  # the earlier package was replaced, not merged
    (pkg / "LICENSE").write_text("user's", encoding="utf-8")
    _refused(runner.invoke(cli, ["export", str(run), "--out", str(pkg)]), "LICENSE")
    result = runner.invoke(cli, ["export", str(run), "--out", str(pkg), "--buckets", "9", "--force", "--json"])
    assert result.exit_code == 0, result.output
    # --force: the user's file stays, the earlier package's bucket_4 (ours) goes, the new files come.
    names = {p.name for p in pkg.iterdir()}
    assert "LICENSE" in names and "bucket_9.onnx" in names and "bucket_4.onnx" not in names
    # The summary counts the package's files, not the user's (it summed the whole folder).
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert set(summary["files"]) == names - {"LICENSE"}
    assert summary["bytes"] == sum((pkg / name).stat().st_size for name in names - {"LICENSE"})


def test_train_refuses_a_foreign_folder_and_force_keeps_its_files(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_bytes(b"{\"my\": \"own config\"}")
    (out / "data.csv").write_bytes(b"a,b\n")
    before = _snapshot(out)
    result = CliRunner().invoke(cli, ["train", "--max-sentences", "40", "--out", str(out), "--epochs", "1", "--no-progress"])
    # A config.json that is not a training run's: the folder is someone else's.
    assert result.exit_code == 2 and _snapshot(out) == before, result.output
    # Even --force does not overwrite that config.json ...
    result = CliRunner().invoke(cli, ["train", "--max-sentences", "40", "--out", str(out), "--epochs", "1", "--force"])
    _refused(result, "config.json", "not overwritten")
    assert _snapshot(out) == before
    # ... and with it gone, --force trains beside the other file, which stays as it was.
    (out / "config.json").unlink()
    result = CliRunner().invoke(
        cli, ["train", "--max-sentences", "40", "--out", str(out), "--epochs", "1", "--hidden", "4", "--word-dim", "4",
              "--filters", "2", "--no-progress", "--force"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "data.csv").read_bytes() == b"a,b\n" and (out / "state.json").exists()


@pytest.mark.parametrize("command", [["prepare"], ["export", "RUN"], ["train", "--max-sentences", "30"]])
def test_out_dot_fails_cleanly_leaving_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    run = tmp_path / "run"
    make_checkpoint(run)
    monkeypatch.chdir(work)
    args = [str(run) if a == "RUN" else a for a in command]
    for out in (".", str(work)):
        result = CliRunner().invoke(cli, [*args, "--out", out, "--force"])
        _refused(result, "--out", "current folder")
        assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["run", "work"]


def test_a_symlinked_output_folder_stays_a_link(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_checkpoint(run)
    real = tmp_path / "packages" / "v1"
    real.mkdir(parents=True)
    link = tmp_path / "current"
    link.symlink_to(real, target_is_directory=True)
    result = CliRunner().invoke(cli, ["export", str(run), "--out", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and (real / "manifest.json").is_file()


def test_a_symlink_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old", encoding="utf-8")
    os.chmod(real, 0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new" and (real.stat().st_mode & 0o777) == 0o640


def test_tag_output_through_a_symlink(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "run", with_pos=False)
    runner = CliRunner()
    assert runner.invoke(cli, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "pkg")]).exit_code == 0
    (tmp_path / "in.txt").write_text("Angela visited\nParis\n", encoding="utf-8")
    real = tmp_path / "results" / "tagged.tsv"
    real.parent.mkdir()
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "tagged.tsv"
    link.symlink_to(real)
    result = runner.invoke(cli, ["tag", str(tmp_path / "pkg"), str(tmp_path / "in.txt"), "--input-format", "tokens", "--output", str(link), "--force"])
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert [line.split("\t")[0] for line in real.read_text().split("\n") if line] == ["Angela", "visited", "Paris"]


def test_tag_output_through_a_dangling_symlink_into_no_folder_is_a_usage_error(tmp_path: Path) -> None:
    # It was "Error: [Errno 2] No such file or directory" after the tagging; a folder that is missing is
    # refused before anything runs, the link's target's folder too.
    (tmp_path / "in.txt").write_text("Angela visited\n", encoding="utf-8")
    link = tmp_path / "tagged.tsv"
    link.symlink_to(tmp_path / "nowhere" / "x.tsv")
    result = CliRunner().invoke(cli, ["tag", str(tmp_path / "in.txt"), "--input-format", "tokens", "--output", str(link)])
    assert result.exit_code == 2, result.output
    assert f"the folder {tmp_path / 'nowhere'} does not exist (where the link {link} points)" in result.output
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("hard_links", [True, False], ids=["link", "no-hard-links"])
def test_a_file_that_appears_while_writing_is_kept_without_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    hard_links: bool) -> None:
    """`replace=False`: the name was free when the work began; another writer's file that appears there
    meanwhile is not replaced, and the write fails naming it. A free name is written as usual."""
    if not hard_links:  # a file system without hard links (FAT, some network mounts): the last check decides
        def no_link(src: object, dst: object) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    free = tmp_path / "free.txt"
    with atomic_open(free, "w", encoding="utf-8", replace=False) as f:
        f.write("mine")
    assert free.read_text() == "mine"
    target = tmp_path / "out.txt"
    with pytest.raises(OSError) as info:
        with atomic_open(target, "w", encoding="utf-8", replace=False) as f:
            f.write("mine")
            target.write_text("theirs", encoding="utf-8")  # another process, mid-write
    assert info.value.errno == errno.EEXIST and str(target) in str(info.value) and "--force" in str(info.value)
    assert target.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["free.txt", "out.txt"]  # no temporary left
    with atomic_open(target, "w", encoding="utf-8") as f:  # replace=True (the default, --force) still replaces
        f.write("mine")
    assert target.read_text() == "mine"


def test_tag_without_force_keeps_an_output_that_appears_during_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ner_fast.cli.tag as tag_module

    make_checkpoint(tmp_path / "run", with_pos=False)
    runner = CliRunner()
    assert runner.invoke(cli, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "pkg")]).exit_code == 0
    out = tmp_path / "tagged.jsonl"
    real = tag_module._write_documents

    def racing(*args: object, **kwargs: object) -> None:
        out.write_text("theirs", encoding="utf-8")  # made by someone else after tag found the name free
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tag_module, "_write_documents", racing)
    result = runner.invoke(cli, ["tag", str(tmp_path / "pkg"), "--text", "Angela visited Paris", "--output", str(out)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert str(out) in result.output and "not replaced" in result.output
    assert out.read_text() == "theirs"
    result = runner.invoke(cli, ["tag", str(tmp_path / "pkg"), "--text", "Angela visited Paris", "--output", str(out), "--force",
                                 "--output-format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["text"] == "Angela visited Paris"


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale_file = tmp_path / f".out.json.ner-fast-{dead.pid}.abc123.tmp"
    stale_dir = tmp_path / f".out.json.ner-fast-{dead.pid}.def456.tmp"
    live = tmp_path / f".out.json.ner-fast-{os.getppid()}.ghi789.tmp"  # a process that is still running
    other = tmp_path / f".other.json.ner-fast-{dead.pid}.jkl012.tmp"  # another target's: left to its own writes
    stale_file.write_bytes(b"half")
    stale_dir.mkdir()
    (stale_dir / "x").write_bytes(b"half")
    live.write_bytes(b"busy")
    other.write_bytes(b"x")
    atomic_write_text(tmp_path / "out.json", "{}")
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "out.json"])


def test_a_users_files_named_like_temporaries_are_never_touched(tmp_path: Path) -> None:
    # Named `.NAME.DIGITS.X.tmp|old` with no such process, they were removed (a folder's data/ moved out as a
    # target) by any command that claimed the folder, even one that then refused it: a breaker trial.
    out = tmp_path / "out"
    (out / ".photos.2023.summer.old" / "data").mkdir(parents=True)
    (out / ".photos.2023.summer.old" / "data" / "img1.jpg").write_text("pic")
    (out / ".notes.1999.draft.tmp").mkdir()
    (out / ".notes.1999.draft.tmp" / "a").write_text("keep")
    (out / ".cache.999999.abcdefgh.tmp").write_text("mine")
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    with pytest.raises(OptionError, match="holds other files"):
        claim_output_dir(out, writes=["manifest.json"])
    assert atomic.remove_stale_temps(out) == []
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before


def test_a_long_output_name_that_the_file_system_takes_is_written(tmp_path: Path) -> None:
    # A name of 251 bytes is a valid file name (NAME_MAX is 255); its temporary, `.<name>.ner-fast-<pid>.<random>.tmp`,
    # would not be: the temporary's stem is shortened (and told apart from a shorter name's by a hash).
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in ["o" * 245 + ".jsonl", "é" * 120 + ".jsonl"]:  # the limit is in bytes
        target = tmp_path / name
        atomic_write_text(target, "first")
        stale = tmp_path / f".{atomic._temp_stem(name)}.ner-fast-{dead.pid}.abc123.tmp"  # what a killed run left
        stale.write_bytes(b"half")
        with atomic_open(target, "w", encoding="utf-8") as f:
            f.write("second")
        assert target.read_text(encoding="utf-8") == "second" and not stale.exists()
    folder = tmp_path / ("d" * 250)
    for content in ["in", "again"]:  # a new folder, then one swapped for its own earlier output (`.old`)
        with atomic.atomic_dir(folder, lambda found: {"x"}) as tmp:
            (tmp / "x").write_text(content, encoding="utf-8")
        assert (folder / "x").read_text(encoding="utf-8") == content
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["o" * 245 + ".jsonl", "é" * 120 + ".jsonl", "d" * 250])
    assert atomic._temp_stem("out.json") == "out.json"  # a usual name is kept whole
    assert atomic._temp_stem("a" * 240) != atomic._temp_stem("a" * 239 + "b")


def test_write_errors_name_the_output_not_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.json"

    def disk_full(f: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        atomic_write_bytes(target, disk_full)
    assert info.value.errno == errno.ENOSPC and str(target) in str(info.value) and ".tmp" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no temporary left behind
    with pytest.raises(OSError) as info:
        with atomic_open(tmp_path / "missing" / "out.txt") as f:
            f.write(b"x")
    assert str(tmp_path / "missing" / "out.txt") in str(info.value) and ".tmp" not in str(info.value)


def _read_only_dir(tmp_path: Path) -> Path:
    """A folder this process cannot write (as root, permission bits do not stop it: use /sys)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    return folder


@pytest.mark.parametrize("command", [["prepare"], ["export", "RUN"], ["train", "--max-sentences", "30"]])
def test_a_read_only_out_is_one_line_naming_it(tmp_path: Path, command: list[str]) -> None:
    run = tmp_path / "run"
    make_checkpoint(run)
    out = _read_only_dir(tmp_path) / "ner-fast-out"
    args = [str(run) if a == "RUN" else a for a in command]
    result = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert str(out) in result.output and ".tmp" not in result.output
    assert not out.exists()


def test_files_written_together_are_replaced_together_or_not_at_all(tmp_path: Path) -> None:
    """`atomic_group`: an exception midway keeps the previous set; a process that died while renaming
    (its journal written, some files renamed) is finished by the next one to touch the folder, so the
    folder never holds half of one set and half of the other."""
    for name in ("a", "b", "c"):
        (tmp_path / name).write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_group(tmp_path) as group:
            group.write_bytes(tmp_path / "a", lambda f: f.write(b"new"))
            raise RuntimeError("stopped midway")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"a": "old", "b": "old", "c": "old"}

    with atomic.atomic_group(tmp_path) as group:
        for name in ("a", "b"):
            group.write_bytes(tmp_path / name, lambda f: f.write(b"new"))
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"a": "new", "b": "new", "c": "old"}

    # A dead process's group: journal written, "a" renamed, "b" and "c" not yet.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    temps = {name: f".{name}.ner-fast-{dead.pid}.x{name}.tmp" for name in ("a", "b", "c")}
    for name in ("b", "c"):
        (tmp_path / temps[name]).write_text("newer")
    (tmp_path / "a").write_text("newer")
    (tmp_path / atomic.GROUP_JOURNAL).write_text(json.dumps({"pid": dead.pid, "files": temps}))
    atomic_write_text(tmp_path / "other", "x")  # any write there first finishes the group, then cleans up
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"a": "newer", "b": "newer", "c": "newer", "other": "x"}

    # A live process's group is its own to finish: its files are neither renamed nor removed.
    live = {"a": f".a.ner-fast-{os.getppid()}.live.tmp"}
    (tmp_path / live["a"]).write_text("busy")
    (tmp_path / atomic.GROUP_JOURNAL).write_text(json.dumps({"pid": os.getppid(), "files": live}))
    assert atomic.finish_group(tmp_path) == [] and atomic.remove_stale_temps(tmp_path) == []
    assert (tmp_path / "a").read_text() == "newer" and (tmp_path / live["a"]).exists()


def test_an_output_folder_swapped_out_by_a_process_that_died_is_put_back(tmp_path: Path) -> None:
    """`atomic_dir` replaces an earlier output by two renames (the old folder aside, the new one in):
    a process killed between them left no package, and the next write removed the aside copy as a stale
    temporary: the earlier package was lost."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    aside = tmp_path / f".pkg.ner-fast-{dead.pid}.abc123.old"
    (aside / "data").mkdir(parents=True)
    (aside / "data" / "manifest.json").write_text("{}")
    half = tmp_path / f".pkg.ner-fast-{dead.pid}.def456.tmp"  # the new output, never renamed in
    half.mkdir()
    (half / "manifest.json").write_text('{"new": 1}')
    removed = atomic.remove_stale_temps(tmp_path, "pkg")
    assert sorted(p.name for p in removed) == sorted([aside.name, half.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]
    assert (tmp_path / "pkg" / "manifest.json").read_text() == "{}"
    # With the target there (the swap went through), the aside copy is a leftover and goes.
    (aside / "data").mkdir(parents=True)
    (aside / "data" / "manifest.json").write_text("older")
    atomic.remove_stale_temps(tmp_path, "pkg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]
    assert (tmp_path / "pkg" / "manifest.json").read_text() == "{}"


def test_an_npz_write_interrupted_midway_ends_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C or SIGTERM inside np.savez left numpy's ZipFile unclosed; finalized once its file was closed,
    it printed "Exception ignored ... ValueError: seek of closed file" with a traceback after the
    command's own "interrupted" line (seen on `ner-fast train` stopped while saving)."""
    import gc

    import numpy as np

    from ner_fast.checkpoint import save_params

    real = np.lib.format.write_array
    calls: list[int] = []

    def interrupted(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(*args, **kwargs)

    unraisable: list[Any] = []
    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    target = tmp_path / "last.params.npz"
    target.write_bytes(b"earlier")
    with pytest.raises(KeyboardInterrupt):
        save_params(target, {"a": np.zeros(3), "b": np.ones(3)})
    gc.collect()
    assert len(calls) == 2 and not unraisable, [u.exc_value for u in unraisable]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.params.npz"] and target.read_bytes() == b"earlier"


def test_an_input_error_inside_an_atomic_write_names_the_input(tmp_path: Path) -> None:
    # A Dask part reads its input while writing its output: an input removed meanwhile was reported as
    # "No such file or directory: 'out/part-00027.jsonl'", the output's name.
    missing = tmp_path / "input.txt"
    with pytest.raises(FileNotFoundError) as caught:
        with atomic_open(tmp_path / "part.jsonl", "w", encoding="utf-8") as f:
            f.write(missing.read_text())
    assert caught.value.filename == str(missing)
    assert list(tmp_path.iterdir()) == []  # no temporary left, no output published


def test_an_output_folder_under_a_file_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    """`--out data.conll/pkg` said "[Errno 20] Not a directory", exit 1, as if the machine had failed."""
    from ner_fast.errors import OptionError

    (tmp_path / "data.conll").write_text("x\tO\n")
    with pytest.raises(OptionError, match=rf"--out: {tmp_path}/data.conll/pkg/deeper: {tmp_path}/data.conll is a file, not a folder"):
        claim_output_dir(tmp_path / "data.conll" / "pkg" / "deeper")
    assert claim_output_dir(tmp_path / "new" / "pkg") is not None  # a missing parent is made, as before
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")  # "[Errno 17] File exists: 'gone'" before
    with pytest.raises(OptionError, match=rf"--out: {tmp_path}/gone/pkg: {tmp_path}/gone is a link to nothing, not a folder"):
        claim_output_dir(tmp_path / "gone" / "pkg")


def test_no_command_writes_into_a_folder_of_another_kind_even_with_force(tmp_path: Path) -> None:
    """`package.claim_folder`: prepare, train, export and tag --output-dir refuse a folder that holds another
    kind (with --force too). tag --output-dir into a run and export into prepared data went ahead: the new
    manifest.json hid the run (evaluate, --resume, export said it was tagged text) or the data (train DATA
    said it was a model package)."""
    from ner_fast.package import KIND_NAMES, folder_kind

    run, pkg, prepared, tagged = (tmp_path / name for name in ("run", "pkg", "prepared", "tagged"))
    make_checkpoint(run, with_pos=False)
    runner = CliRunner()
    assert runner.invoke(cli, ["export", str(run), "--out", str(pkg), "--buckets", "4"]).exit_code == 0
    assert runner.invoke(cli, ["prepare", "--out", str(prepared), "--max-sentences", "30"]).exit_code == 0
    tagged.mkdir()  # what `tag --output-dir` leaves: its manifest and parts (its own tests make real ones)
    (tagged / "manifest.json").write_text(json.dumps({"settings": {}, "partitions": [{"part": "part-00000.jsonl"}]}))
    (tagged / "part-00000.jsonl").write_text("{}\n")
    text = tmp_path / "in.txt"
    text.write_text("Paris\n", encoding="utf-8")
    folders = {"run": run, "package": pkg, "prepared": prepared, "tagged": tagged}
    assert {kind: folder_kind(path) for kind, path in folders.items()} == {kind: kind for kind in folders}
    writers = {
        "prepared": lambda out: ["prepare", "--out", str(out), "--max-sentences", "30", "--force"],
        "run": lambda out: ["train", "--out", str(out), "--max-sentences", "30", "--epochs", "1", "--force"],
        "package": lambda out: ["export", str(run), "--out", str(out), "--force"],
        "tagged": lambda out: ["tag", str(pkg), str(text), "--input-format", "text", "--output-dir", str(out), "--force"],
    }
    before = {kind: _snapshot(path) for kind, path in folders.items()}
    refused = 0
    for writes, args in writers.items():
        for kind, folder in folders.items():
            if kind != writes:
                _refused(runner.invoke(cli, args(folder)), f"{folder} is {KIND_NAMES[kind]}", "choose another folder")
                refused += 1
    assert refused == 12 and {kind: _snapshot(path) for kind, path in folders.items()} == before


def test_a_damaged_tagging_manifest_is_still_a_tagging_folder_and_names_only_parts(tmp_path: Path) -> None:
    from ner_fast.package import folder_kind, tagged_parts

    out = tmp_path / "tagged"
    out.mkdir()
    for manifest in ({"settings": {}}, {"partitions": "x"}, {"settings": {}, "partitions": [{"nopart": 1}, 3]}):
        (out / "manifest.json").write_text(json.dumps(manifest))
        assert folder_kind(out) == "tagged" and tagged_parts(out) == set()
    # A manifest edited to list someone's file: only part-NNNNN.jsonl names are the run's (--force removes them).
    (out / "manifest.json").write_text(json.dumps({"settings": {}, "partitions": [{"part": "notes.txt"}, {"part": "part-00001.jsonl"}]}))
    assert tagged_parts(out) == {"part-00001.jsonl"}
    assert folder_kind(tmp_path) is None


def test_a_folder_with_a_stray_file_of_another_kind_is_what_its_own_files_say(tmp_path: Path) -> None:
    """Someone's config.json beside prepared data made `folder_kind` say "a training run" (train DATA refused it);
    a prepared.json left in a run let `prepare --out RUN --force` replace the run's vocab.json."""
    from ner_fast.package import folder_kind

    runner = CliRunner()
    prepared = tmp_path / "prepared"
    assert runner.invoke(cli, ["prepare", "--out", str(prepared), "--max-sentences", "30"]).exit_code == 0
    (prepared / "config.json").write_text('{"x": 1}', encoding="utf-8")
    assert folder_kind(prepared) == "prepared"
    result = runner.invoke(cli, ["prepare", "--out", str(prepared), "--max-sentences", "30", "--force"])
    assert result.exit_code == 0 and (prepared / "config.json").read_text() == '{"x": 1}', result.output
    result = runner.invoke(cli, ["train", str(prepared), "--out", str(tmp_path / "r"), "--epochs", "1", "--hidden", "4",
                                 "--word-dim", "4", "--filters", "2", "--char-dim", "2", "--patience", "0"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    make_checkpoint(run, with_pos=False)
    (run / "prepared.json").write_text("{}", encoding="utf-8")
    before = _snapshot(run)
    _refused(runner.invoke(cli, ["prepare", "--out", str(run), "--max-sentences", "30", "--force"]), f"{run} is a training run")
    assert _snapshot(run) == before


def test_another_tools_manifest_or_config_is_no_kind(tmp_path: Path) -> None:
    """Any manifest.json made a folder "a model package" (a web app's, refused even with --force); a package's has
    a `files` object, a tagging run's its partitions; one that is not JSON may be a damaged package's."""
    from ner_fast.package import folder_kind

    web = tmp_path / "web"
    web.mkdir()
    (web / "manifest.json").write_text('{"name": "my app"}', encoding="utf-8")
    (web / "config.json").write_text('{"port": 80}', encoding="utf-8")
    (web / "vocab.json").write_text("{}", encoding="utf-8")
    assert folder_kind(web) is None
    result = CliRunner().invoke(cli, ["prepare", "--out", str(web), "--max-sentences", "30", "--force"])
    assert result.exit_code == 2 and "vocab.json" in result.output, result.output  # its own file, never replaced
    (web / "vocab.json").unlink()
    result = CliRunner().invoke(cli, ["prepare", "--out", str(web), "--max-sentences", "30", "--force"])
    assert result.exit_code == 0 and (web / "manifest.json").read_text() == '{"name": "my app"}', result.output
    (web / "manifest.json").write_text('{"files": ', encoding="utf-8")
    assert folder_kind(web) == "package"
