"""User mistakes at run time get one clear line: evaluate's POS and tag checks, prepare's POS mismatch,
non-string POS tags in the tagger."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ner_fast import Tagger
from ner_fast.cli import cli
from ner_fast.training.export import export_model
from helpers import POS, SENTENCES, TAGS, make_checkpoint


def write_conll(path: Path, with_pos: bool, tags: list[list[str]] = TAGS) -> Path:
    blocks = []
    for ws, ps, ts in zip(SENTENCES, POS, tags):
        blocks.append("".join(f"{w} {p} {t}\n" if with_pos else f"{w} {t}\n" for w, p, t in zip(ws, ps, ts)))
    path.write_text("\n".join(blocks))
    return path


@pytest.fixture(scope="module")
def pos_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("evaluate") / "model"
    make_checkpoint(folder)
    return folder


def test_evaluate_refuses_a_pos_model_on_a_corpus_without_pos(pos_model: Path, tmp_path: Path) -> None:
    data = write_conll(tmp_path / "nopos.conll", with_pos=False)
    result = CliRunner().invoke(cli, ["evaluate", str(pos_model), str(data), "--no-progress"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {data}: this model reads POS tags, which the corpus does not have: give CoNLL columns or a GMB CSV with POS"]
    # With POS the same corpus is scored.
    result = CliRunner().invoke(cli, ["evaluate", str(pos_model), str(write_conll(tmp_path / "pos.conll", True)), "--no-progress", "--json"])
    assert result.exit_code == 0, result.output


def test_evaluate_names_file_and_line_of_an_unknown_tag(pos_model: Path, tmp_path: Path) -> None:
    tags = [list(t) for t in TAGS]
    tags[1][2] = "B-art"  # sentence 2, token 3: line 8 + 1 blank line + 3 = line 11
    data = write_conll(tmp_path / "art.conll", with_pos=True, tags=tags)
    assert data.read_text().splitlines()[10].split() == ["met", "VBD", "B-art"]
    result = CliRunner().invoke(cli, ["evaluate", str(pos_model), str(data), "--no-progress"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"Error: {data}:11: tag 'B-art' is not one the model knows")


@pytest.mark.parametrize("train_pos", [True, False])
def test_prepare_says_which_corpus_lacks_pos(tmp_path: Path, train_pos: bool) -> None:
    train = write_conll(tmp_path / "train.conll", with_pos=train_pos)
    dev = write_conll(tmp_path / "dev.conll", with_pos=not train_pos)
    result = CliRunner().invoke(cli, ["prepare", str(train), "--dev", str(dev), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    has = {True: "has", False: "has no"}
    assert f"{dev} {has[not train_pos]} POS tags but {train} {has[train_pos]}" in result.output


def test_inputs_of_the_wrong_type_are_named_at_the_api(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "m")
    tagger = Tagger.load(export_model(tmp_path / "m", tmp_path / "pkg", buckets="dynamic", quantize=None), device="cpu")
    with pytest.raises(TypeError, match=r"^POS tag 1 of sentence 0 is None \(NoneType\): POS tags must be strings$"):
        tagger.tag(["Paris", "is"], pos=["NNP", None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^token 0 of sentence 1 is 3 \(int\)"):
        tagger.tag_batch([["a"], [3]], pos=[["NN"], ["CD"]])  # type: ignore[list-item]
    # A sentence given as a one-pass iterator (the outer list may be one: `_listed` reads it).
    with pytest.raises(TypeError, match=r"^sentence 1 is a list_iterator: each sentence must be a list or tuple of tokens$"):
        tagger.tag_batch([["a"], iter(["b", "c"])], pos=[["NN"], ["NN", "NN"]])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^tokens is a generator: pass a list or tuple of tokens$"):
        tagger.tag((w for w in ["Paris", "is"]), pos=["NNP", "VBZ"])  # type: ignore[arg-type]
    # The POS tags so too (a Python-API trial: "object of type 'generator' has no len()").
    with pytest.raises(TypeError, match=r"^pos is a generator: pass a list or tuple of POS tags$"):
        tagger.tag(["Paris", "is"], pos=(p for p in ["NNP", "VBZ"]))  # type: ignore[arg-type]
    # Wrong types at the API's door are named there, not deep inside Python or pathlib (a breaker trial).
    with pytest.raises(TypeError, match=r"^tag takes one pre-tokenized sentence, a list of tokens, not a str"):
        tagger.tag("Paris is", pos=["NNP", "VBZ"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^pass a list of pre-tokenized sentences, got NoneType None$"):
        tagger.tag_batch(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^pipe takes an iterable of texts, got NoneType None$"):
        tagger.pipe(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^package must be a folder .* got int 5$"):
        Tagger.load(5)  # type: ignore[arg-type]
    # A dict was tagged as its keys, a str of four letters taken for the POS tags of four tokens, and an
    # unknown tag or provider name got a bare KeyError or onnxruntime's banner and the CPU.
    with pytest.raises(TypeError, match=r"^sentence 1 is a dict: each sentence must be a list or tuple of tokens$"):
        tagger.tag_batch([["Paris"], {"Paris": 1}], pos=[["NNP"], ["NNP"]])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^pos must hold a list of POS tags for each sentence, not a string$"):
        tagger.tag(["Paris", "is", "big", "."], pos="NNPS")  # type: ignore[arg-type]
    tags, probs = tagger.tag(["Paris"], pos=["NNP"], proba=True)
    assert tagger.chosen_probabilities(tags, probs).shape == (1,)
    with pytest.raises(ValueError, match=r"^tag 'X' is not one of this model's \(O, "):
        tagger.chosen_probabilities(["X"], probs)
    with pytest.raises(ValueError, match=r"^providers: 'Bogus' is no onnxruntime execution provider"):
        Tagger.load(tmp_path / "pkg", providers=["Bogus"])
    with pytest.raises(TypeError, match=r"^threads must be an int, got str '2'$"):
        Tagger.load(tmp_path / "pkg", threads="2")  # type: ignore[arg-type]
    # Every count of threads has one rule (`cores.check_threads`): workers="2" failed on a comparison,
    # 2.5 was kept as the tagger's workers, and threads=10**6 grew a process to 20 GB without loading.
    with pytest.raises(TypeError, match=r"^workers must be an int, got str '2'$"):
        Tagger.load(tmp_path / "pkg", workers="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^workers must be an int, got float 2.5$"):
        tagger.tag_batch([["Paris"]], workers=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^n_threads must be an int, got float 1.5$"):
        list(tagger.pipe(["Paris"], n_threads=1.5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^threads must be at most \d+ \(4 per usable core, of \d+\), got 1000000$"):
        Tagger.load(tmp_path / "pkg", threads=10**6)


def test_a_corpus_too_small_to_split_is_named(tmp_path: Path) -> None:
    # One sentence split 80/20 leaves validation empty: the message named neither the file nor a way out.
    data = tmp_path / "one.conll"
    data.write_text("Paris B-geo\n. O\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["prepare", str(data), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and not (tmp_path / "out").exists()
    assert f"{data}: split (0.8, 0.2) of 1 sentences leaves a split empty (give more sentences, or a validation" \
        " file with --dev)" in result.output and "Traceback" not in result.output


def test_prepare_on_untagged_tokens_says_how_it_read_them(tmp_path: Path) -> None:
    data = tmp_path / "plain.txt"
    data.write_text("Angela Merkel visited Paris .\nThe UN met .\n")
    result = CliRunner().invoke(cli, ["prepare", str(data), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and not (tmp_path / "out").exists()
    assert f"{data}: training needs a tagged corpus (read as tokens: no tag column; see --format)" in result.output


@pytest.mark.parametrize("line_says", ["I-art", "B-art"])
def test_an_unknown_iob1_tag_is_named_as_read(pos_model: Path, tmp_path: Path, line_says: str) -> None:
    # IOB1's I-art after an O is read as B-art: the message said 'B-art' of a line that says I-art, so it
    # says why; where the line says B-art itself, that hint would send the user looking for an I-.
    tags = [list(t) for t in TAGS]
    tags[1][2] = line_says
    data = write_conll(tmp_path / "art.conll", with_pos=True, tags=tags)
    result = CliRunner().invoke(cli, ["evaluate", str(pos_model), str(data), "--no-progress"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"Error: {data}:11: tag 'B-art' is not one the model knows")
    hinted = "tags are read as IOB2: an entity's first I- is a B-" in result.output
    assert hinted == (line_says == "I-art")
