"""Pretrained vectors inside a wider word embedding (`--vectors` of d numbers with `--word-dim D`, D > d;
`training.rows`): the parameters a run starts from, the refusal of D < d, training, resume, export,
`Tagger.load` and `--init` from such a run. The vectors are `test_vectors`' tiny GloVe file (d = 12)
and its plain word -> vector dict, parsed there by the test, not by the code under test."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ner_fast.checkpoint import init_params, load_params
from ner_fast.cli import cli
from ner_fast.config import OptionError, TrainConfig
from ner_fast.package import load_package
from ner_fast.prepare import prepare
from ner_fast.tagger import Tagger
from ner_fast.train_options import command_line_config
from ner_fast.training.export import export_model
from ner_fast.training.init_source import load_source
from ner_fast.training.run_dir import module_canonical
from ner_fast.training.run_setup import make_trainer, set_up
from training.test_train import TINY
from training.test_vectors import DIM, NEW_WORDS, SENTENCES, _tiny_args, glove, training_words  # noqa: F401 (fixtures)

WIDE = 20  # D: the vectors' 12 numbers, then 8 more
DATA = ["--max-sentences", str(SENTENCES), "--buckets", "12,20,30", "--batch-size", "16"]
# The words the vectors add beyond the training data (lower-case: the vocabulary is looked up lower-cased).
ADDED = [w for w in NEW_WORDS if w == w.lower()]


def _quiet(msg: str) -> None:
    pass


def _wide_row(vector: np.ndarray) -> np.ndarray:
    return np.concatenate([vector, np.zeros(WIDE - DIM, dtype=np.float32)])


@pytest.fixture(scope="module")
def wide_run(glove: tuple[Path, dict[str, np.ndarray]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained one epoch with the vectors inside a word embedding of WIDE numbers, from the command line."""
    path, _ = glove
    out = tmp_path_factory.mktemp("wide") / "run"
    args = ["train", *DATA, "--epochs", "1", "--patience", "0", "--no-progress", "--vectors", str(path),
            "--out", str(out), *_tiny_args(), "--word-dim", str(WIDE)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return out


def test_a_wide_run_starts_with_the_vectors_then_zeros(glove: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    path, plain = glove
    cfg = TrainConfig.from_options(str(tmp_path / "run"), vectors=str(path), word_dim=WIDE, batch_size=16,
                                   max_sentences=SENTENCES, buckets=[12, 20, 30],
                                   **{k: v for k, v in TINY.items() if k != "word_dim"})
    assert cfg.arch["word_dim"] == WIDE
    said: list[str] = []
    run, data, params, kv, contexts = set_up(cfg, False, False, said.append)
    make_trainer(run, data, params, kv, contexts, False, said.append)
    rows = module_canonical(run.module, run.config)["word_embed_weight"]
    fresh = init_params(run.config, cfg.seed)["word_embed_weight"]  # the draw every row starts from without vectors
    words = data.vocabs.words.itos
    assert rows.shape == (len(words), WIDE)
    known = [w for w in words if w in plain]
    assert set(ADDED) <= set(known) and len(known) == len(plain) - 1  # all but "Wombat" (never looked up)
    for i, w in enumerate(words):
        np.testing.assert_array_equal(rows[i], _wide_row(plain[w]) if w in plain else fresh[i], err_msg=w)
    unknown = [i for i, w in enumerate(words) if w not in plain]
    assert len(unknown) > 20 and np.all(rows[unknown, DIM:] != 0)  # the fresh draw in all WIDE columns
    assert any(f"then {WIDE - DIM} zeros" in line for line in said)
    doc = json.loads((tmp_path / "run" / "config.json").read_text())
    assert doc["model"]["word_dim"] == WIDE and doc["data"]["vectors_source"]["dim"] == DIM


def test_a_word_dim_narrower_than_the_vectors_is_refused(glove: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    path, _ = glove
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", *DATA, "--vectors", str(path), "--out", str(out), *_tiny_args(),
                                      "--word-dim", str(DIM - 1)])
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()  # one line: `Error: MESSAGE (see '... train --help')`
    assert line.startswith("Error: ") and (
        f"--word-dim: {DIM - 1} conflicts with --vectors {path}, whose vectors have {DIM} numbers a word; give at least"
        f" {DIM} (the vectors fill the first {DIM} numbers of each word) or leave --word-dim out (the word dimension"
        " follows the vectors) (see ") in line
    assert "Traceback" not in result.output and not out.exists()
    # A prepared folder's vectors: left out, the word dimension is theirs; given, it must hold them.
    folder = tmp_path / "prepared"
    prepare(max_sentences=SENTENCES, buckets=[12, 20, 30], batch_size=16, vectors=str(path)).save(folder)
    for given, expected in (({}, DIM), ({"word_dim": DIM}, DIM), ({"word_dim": WIDE}, WIDE)):
        cfg = command_line_config(data=str(folder), out=str(out), resume=None, recipe_name=None, given=given)
        assert cfg.arch["word_dim"] == expected
    with pytest.raises(OptionError, match=f"^--word-dim: {DIM - 1} conflicts"):
        command_line_config(data=str(folder), out=str(out), resume=None, recipe_name=None, given={"word_dim": DIM - 1})


def test_train_resume_export_and_tag_with_a_wide_embedding(
    glove: tuple[Path, dict[str, np.ndarray]], wide_run: Path, tmp_path: Path
) -> None:
    _, plain = glove
    doc = json.loads((wide_run / "config.json").read_text())
    assert doc["model"]["word_dim"] == WIDE and doc["data"]["vectors_source"]["dim"] == DIM
    words = json.loads((wide_run / "vocab.json").read_text())["words"]
    assert words[-len(ADDED):] == ADDED
    last = load_params(wide_run / "last.params.npz")["word_embed_weight"]
    assert last.shape == (len(words), WIDE)
    # Words training never shows keep their vector and zero tail; training words learnt theirs from zero.
    for w in ADDED:
        np.testing.assert_array_equal(last[words.index(w)], _wide_row(plain[w]))
    trained = [words.index(w) for w in plain if w in words and w not in ADDED]
    assert len(trained) > 10 and np.count_nonzero(last[trained, DIM:]) > len(trained)

    resumed = tmp_path / "resumed"  # a copy: the module's other tests read the run as trained
    shutil.copytree(wide_run, resumed)
    result = CliRunner().invoke(cli, ["train", "--resume", str(resumed), "--epochs", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len((resumed / "metrics.jsonl").read_text().splitlines()) == 2
    again = load_params(resumed / "last.params.npz")["word_embed_weight"]
    assert again.shape == (len(words), WIDE) and not np.array_equal(again[trained], last[trained])
    np.testing.assert_array_equal(again[words.index(ADDED[0])], _wide_row(plain[ADDED[0]]))

    package = export_model(wide_run, tmp_path / "pkg", quantize="none")
    model = load_package(package).model
    assert model["architecture"]["word_dim"] == WIDE and model["vectors"]["dim"] == DIM
    # The package holds the run's rows: read back (as --init reads a package), they are best.params' own.
    np.testing.assert_array_equal(load_source(str(package)).params["word_embed_weight"],
                                  load_params(wide_run / "best.params.npz")["word_embed_weight"])
    tagger = Tagger.load(package)
    sentences = [["A", "quokka", "met", "an", "axolotl", "in", "London", "."], ["The", "numbat", "said", "no", "."]]
    tagged = tagger.tag_batch(sentences)
    assert [len(t) for t in tagged] == [len(s) for s in sentences] and all(t in tagger.tags for s in tagged for t in s)
    int8 = Tagger.load(export_model(wide_run, tmp_path / "pkg8"))
    assert [len(t) for t in int8.tag_batch(sentences)] == [len(s) for s in sentences]


@pytest.mark.parametrize("what", ["run", "package", "package-and-vectors"])
def test_init_from_a_wide_run(what: str, glove: tuple[Path, dict[str, np.ndarray]], wide_run: Path, tmp_path: Path) -> None:
    """--init from a wide run or its package takes its word dimension (WIDE) and rows: the rows of words
    training never shows stay SOURCE's exactly after an epoch. With --vectors too, the vectors fit inside."""
    path, plain = glove
    source = wide_run if what == "run" else export_model(wide_run, tmp_path / "pkg", quantize="none")
    out = tmp_path / "again"
    extra = ["--vectors", str(path)] if what == "package-and-vectors" else []
    result = CliRunner().invoke(cli, ["train", *DATA, "--epochs", "1", "--patience", "0", "--no-progress",
                                      "--init", str(source), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "config.json").read_text())
    assert doc["model"]["word_dim"] == WIDE and doc["init"]["kind"] == ("run" if what == "run" else "package")
    theirs = load_params(wide_run / "best.params.npz")["word_embed_weight"]
    their_words = json.loads((wide_run / "vocab.json").read_text())["words"]
    words = json.loads((out / "vocab.json").read_text())["words"]
    rows = load_params(out / "last.params.npz")["word_embed_weight"]
    assert rows.shape == (len(words), WIDE)
    # SOURCE's best parameters are its average (`--average`), whose rows of unseen words are their vectors
    # within float32 rounding and whose zero tails stay zero.
    for w in ADDED:
        np.testing.assert_array_equal(rows[words.index(w)], theirs[their_words.index(w)])
        assert not rows[words.index(w), DIM:].any() and rows[words.index(w), :DIM].any()
