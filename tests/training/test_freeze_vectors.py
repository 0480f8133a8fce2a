"""`train --freeze-vectors` (`training/frozen.py`): the first d numbers of every word row that started from a
vector stay exactly the vector through training, the average, `--resume` and export; rows without a vector
and the extra numbers of a wider embedding train; the refusals. The vectors are `test_vectors`' tiny GloVe
file (d = 12) and its plain word -> vector dict, parsed there by the test, not by the code under test."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ner_fast.checkpoint import AVERAGE_FILE, init_params, load_params, save_params
from ner_fast.cli import cli
from ner_fast.config import ModelConfig, OptionError, TrainConfig
from ner_fast.prepare import prepare
from ner_fast.train_options import command_line_config
from ner_fast.training.export import export_model
from ner_fast.training.init_source import load_source
from ner_fast.training.rows import frozen_entries
from ner_fast.training.train import train
from training.test_train import TINY
from training.test_vectors import DIM, NEW_WORDS, SENTENCES, _tiny_args, glove, training_words  # noqa: F401 (fixtures)

WIDE = 20  # the vectors' 12 numbers, then 8 more
DATA = ["--max-sentences", str(SENTENCES), "--buckets", "12,20,30", "--batch-size", "16", "--no-progress"]


def _train(out: Path, vectors: Path, *extra: str) -> None:
    args = ["train", *DATA, "--epochs", "2", "--patience", "0", "--vectors", str(vectors), "--out", str(out),
            *_tiny_args(), "--word-dim", str(WIDE), *extra]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def runs(glove: tuple[Path, dict[str, np.ndarray]], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two runs of 2 epochs, the vectors inside WIDE numbers, the tuned recipe (so with the average): frozen, and
    the same without --freeze-vectors (the control showing that training moves what the option keeps)."""
    path, _ = glove
    base = tmp_path_factory.mktemp("freeze")
    _train(base / "frozen", path, "--freeze-vectors")
    _train(base / "tuned", path)
    return base / "frozen", base / "tuned"


def _vector_rows(run: Path, plain: dict[str, np.ndarray]) -> tuple[list[str], list[int], list[int]]:
    """The run's words, the ids of those with a vector, and of those without (PAD and UNK left out)."""
    words = json.loads((run / "vocab.json").read_text())["words"]
    known = [i for i, w in enumerate(words) if w in plain]
    other = [i for i, w in enumerate(words) if w not in plain and i > 1]
    return words, known, other


def test_the_frozen_entries_are_the_rows_the_vectors_start() -> None:
    words = ["<pad>", "the", "cat", "sat"]
    vectors = np.array([[1, 2], [3, 4]], dtype=np.float32)
    mask, values = frozen_entries(words, {"sat": 0, "the": 1, "dog": 1}, vectors, 3)
    assert mask.tolist() == [[False] * 3, [True, True, False], [False] * 3, [True, True, False]]
    assert values.tolist() == [[0, 0, 0], [3, 4, 0], [0, 0, 0], [1, 2, 0]]


def test_frozen_rows_keep_their_vectors_and_the_rest_trains(glove: tuple[Path, dict[str, np.ndarray]],
                                                            runs: tuple[Path, Path]) -> None:
    _, plain = glove
    frozen, tuned = runs
    words, known, other = _vector_rows(frozen, plain)
    assert len(known) > 20 and len(other) > 20
    doc = json.loads((frozen / "config.json").read_text())
    assert doc["train"]["freeze_vectors"] is True and doc["model"]["word_dim"] == WIDE
    assert json.loads((tuned / "config.json").read_text())["train"]["freeze_vectors"] is False
    expected = np.stack([plain[words[i]] for i in known])
    fresh = init_params(ModelConfig.from_dict(doc["model"]), doc["train"]["seed"])["word_embed_weight"]
    for name in ("last.params.npz", "best.params.npz", AVERAGE_FILE):
        rows = load_params(frozen / name)["word_embed_weight"]
        np.testing.assert_array_equal(rows[known, :DIM], expected, err_msg=name)  # exactly the vectors
        assert np.count_nonzero(rows[known, DIM:]) > len(known), name  # the extra numbers learnt from zero
        moved = np.any(rows[other] != fresh[other], axis=1)  # rows without a vector trained
        assert moved.sum() > 0.8 * len(other), name
    # The control: without the option training moves the training words' vectors.
    rows = load_params(tuned / "last.params.npz")["word_embed_weight"]
    assert np.any(rows[known, :DIM] != expected, axis=1).sum() > 0.5 * len(known)


def test_resume_keeps_them_frozen_and_export_holds_the_table(glove: tuple[Path, dict[str, np.ndarray]],
                                                             runs: tuple[Path, Path], tmp_path: Path) -> None:
    _, plain = glove
    frozen, _ = runs
    words, known, other = _vector_rows(frozen, plain)
    expected = np.stack([plain[words[i]] for i in known])
    before = load_params(frozen / "last.params.npz")["word_embed_weight"]
    resumed = tmp_path / "resumed"
    shutil.copytree(frozen, resumed)
    result = CliRunner().invoke(cli, ["train", "--resume", str(resumed), "--epochs", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "--freeze-vectors:" in result.output
    after = load_params(resumed / "last.params.npz")["word_embed_weight"]
    np.testing.assert_array_equal(after[known, :DIM], expected)
    assert not np.array_equal(after[other], before[other]) and not np.array_equal(after[known, DIM:], before[known, DIM:])
    # The package holds the run's ordinary table (read back as --init reads a package): the vectors in their place.
    package = export_model(resumed, tmp_path / "pkg", quantize="none")
    table = load_source(str(package)).params["word_embed_weight"]
    np.testing.assert_array_equal(table, load_params(resumed / "best.params.npz")["word_embed_weight"])
    np.testing.assert_array_equal(table[known, :DIM], expected)


def test_resume_refuses_rows_that_are_no_longer_the_vectors(glove: tuple[Path, dict[str, np.ndarray]],
                                                            runs: tuple[Path, Path], tmp_path: Path) -> None:
    _, plain = glove
    frozen, _ = runs
    resumed = tmp_path / "changed"
    shutil.copytree(frozen, resumed)
    params = load_params(resumed / "last.params.npz")
    _, known, _ = _vector_rows(frozen, plain)
    params["word_embed_weight"][known[0], 0] += 1.0
    save_params(resumed / "last.params.npz", params)
    result = CliRunner().invoke(cli, ["train", "--resume", str(resumed), "--epochs", "3", "--no-progress"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "the word rows that --freeze-vectors keeps are not the vectors' values" in result.output


def test_refusals(glove: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    path, _ = glove
    out = tmp_path / "run"
    for extra, message in (
        ([], "--freeze-vectors: applies only with --vectors; give that too, or leave --freeze-vectors out"),
        (["--vectors", str(path), "--init", "default"], "--freeze-vectors: not with --init (SOURCE's rows replace the vectors')"),
    ):
        result = CliRunner().invoke(cli, ["train", *DATA, "--out", str(out), "--freeze-vectors", *extra])
        assert result.exit_code == 2, result.output
        [line] = result.output.strip().splitlines()
        assert line.startswith("Error: ") and message in line, line
        assert not out.exists()
    with pytest.raises(OptionError, match="^--freeze-vectors: not with --kvstore dist_sync"):
        TrainConfig(out=str(out), vectors=str(path), freeze_vectors=True, kvstore="dist_sync", arch=TINY)
    # A prepared folder made with vectors gives them: --freeze-vectors needs no --vectors there.
    folder = tmp_path / "with-vectors"
    prepare(max_sentences=SENTENCES, buckets=[12, 20, 30], batch_size=16, vectors=str(path)).save(folder)
    cfg = command_line_config(data=str(folder), out=str(out), resume=None, recipe_name=None, given={"freeze_vectors": True})
    assert cfg.freeze_vectors and cfg.vectors == str(path)
    # A prepared folder made without vectors (the Python API, where --vectors' need is not checked first).
    folder = tmp_path / "prepared"
    prepare(max_sentences=SENTENCES, buckets=[12, 20, 30], batch_size=16).save(folder)
    with pytest.raises(OptionError, match="^--freeze-vectors: applies only with --vectors"):
        train(TrainConfig(out=str(out), data=str(folder), batch_size=16, freeze_vectors=True, arch=TINY), progress=False,
              echo=lambda msg: None)


def test_init_from_a_frozen_run(glove: tuple[Path, dict[str, np.ndarray]], runs: tuple[Path, Path], tmp_path: Path) -> None:
    """--init reads a frozen run as any other: its one word table, whose vector rows start the new run's."""
    _, plain = glove
    frozen, _ = runs
    out = tmp_path / "again"
    result = CliRunner().invoke(cli, ["train", *DATA, "--epochs", "1", "--patience", "0", "--init", str(frozen),
                                      "--freeze-epochs", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "config.json").read_text())
    assert doc["init"]["kind"] == "run" and doc["train"]["freeze_vectors"] is False and doc["model"]["word_dim"] == WIDE
    theirs = load_params(frozen / "best.params.npz")["word_embed_weight"]
    words, known, _ = _vector_rows(frozen, plain)
    mine = json.loads((out / "vocab.json").read_text())["words"]
    rows = load_params(out / "last.params.npz")["word_embed_weight"]
    # Vector words training never shows keep SOURCE's rows, which are their vectors then zeros.
    unseen = [words.index(w) for w in NEW_WORDS if w == w.lower()]  # a lower-cased vocabulary skips "Wombat"
    assert len(unseen) == 4 and set(unseen) <= set(known)
    for i in unseen:
        np.testing.assert_array_equal(rows[mine.index(words[i])], theirs[i])
        np.testing.assert_array_equal(theirs[i, :DIM], plain[words[i]])


def test_a_ctrl_c_between_an_adam_step_and_its_restore_saves_the_vectors(glove: tuple[Path, dict[str, np.ndarray]],
                                                                         tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C lands between bytecodes: after `FrozenAdam`'s Adam step, before its restore. The saved parameters
    held the moved entries, and --resume then refused the run ('not the vectors' values')."""
    from ner_fast.training.frozen import FrozenEntries

    path, plain = glove
    real = FrozenEntries.restore
    calls = {"n": 0}

    def stopped_before_the_restore(self: FrozenEntries, weight: object) -> None:
        calls["n"] += 1
        if calls["n"] == 5:  # the 5th update of the word table: mid-epoch 1
            raise KeyboardInterrupt
        real(self, weight)

    monkeypatch.setattr(FrozenEntries, "restore", stopped_before_the_restore)
    out = tmp_path / "stopped"
    args = ["train", *DATA, "--epochs", "2", "--patience", "0", "--vectors", str(path), "--out", str(out),
            *_tiny_args(), "--word-dim", str(WIDE), "--freeze-vectors"]
    result = CliRunner().invoke(cli, args)
    assert calls["n"] >= 5 and "interrupted: parameters saved" in result.output, result.output
    monkeypatch.undo()
    words, known, _ = _vector_rows(out, plain)
    expected = np.stack([plain[words[i]] for i in known])
    np.testing.assert_array_equal(load_params(out / "last.params.npz")["word_embed_weight"][known, :DIM], expected)
    result = CliRunner().invoke(cli, ["train", "--resume", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(load_params(out / "last.params.npz")["word_embed_weight"][known, :DIM], expected)
