"""`ner-fast evaluate` on a model package: a user scores a package (exported, or bundled) on their own tagged
corpus through the tagger; it was refused ("a model package, not a training run folder"). The oracle is
seqeval's entity F1 on the tags `Tagger.tag_batch` gives, not the scoring code under test."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from seqeval.metrics import f1_score, precision_score, recall_score

from helpers import SENTENCES, TAGS, make_checkpoint, write_conll
from ner_fast.cli import cli
from ner_fast.corpus import bundled_corpus_path, read_corpus
from ner_fast.package import package_path
from ner_fast.tagger import Tagger
from ner_fast.training.export import export_model


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("evaluate")
    make_checkpoint(folder / "run", with_pos=False)
    return Path(export_model(folder / "run", folder / "pkg"))


def gold_corpus(tmp_path: Path) -> tuple[Path, list[list[str]], list[list[str]]]:
    """The helpers' sentences, each also with its first word swapped for another's, and their gold tags."""
    sentences = [*SENTENCES, *([SENTENCES[(i + 1) % 3][0], *s[1:]] for i, s in enumerate(SENTENCES))]
    tags = [*TAGS, *TAGS]
    path = write_conll(tmp_path / "gold.conll", [list(zip(s, t)) for s, t in zip(sentences, tags)])
    return path, sentences, tags


def gmb_slice(tmp_path: Path, n: int = 300) -> tuple[Path, list[list[str]], list[list[str]]]:
    """The bundled corpus's last `n` sentences (validation sentences of the bundled packages) as CoNLL."""
    corpus = read_corpus(bundled_corpus_path())
    bounds = list(zip(corpus.offsets[-n - 1 : -1].tolist(), corpus.offsets[-n:].tolist()))
    sentences = [corpus.words[a:b] for a, b in bounds]
    gold = [corpus.tags[a:b] for a, b in bounds]
    return write_conll(tmp_path / "gmb.conll", [list(zip(s, t)) for s, t in zip(sentences, gold)]), sentences, gold


@pytest.mark.parametrize("name", ["default", "ensemble"])
def test_a_package_is_scored_through_the_tagger(name: str, tmp_path: Path) -> None:
    path, sentences, gold = gmb_slice(tmp_path)
    predicted = Tagger.load(name).tag_batch(sentences)
    for model in (name, str(package_path(name))):  # a bundled name, or the package's folder
        result = CliRunner().invoke(cli, ["evaluate", model, str(path), "--json"])
        assert result.exit_code == 0, result.output
        scores = json.loads(result.output)
        assert scores["sentences"] == len(sentences) and scores["tokens"] == sum(map(len, sentences))
        assert scores["f1"] > 0.5  # a real score, not 0 == 0
        for key, oracle in (("f1", f1_score), ("precision", precision_score), ("recall", recall_score)):
            assert scores[key] == pytest.approx(oracle(gold, predicted), abs=1e-12)
    table = CliRunner().invoke(cli, ["evaluate", name, str(path)])
    assert table.exit_code == 0 and f"{scores['f1']:.4f}" in table.output


def test_a_bundled_name_is_the_bundled_package_even_beside_a_folder_of_that_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As `tag` and `info` read it (review: `evaluate default` took a ./default folder); a training run of that
    # name is still the run, as before packages were taken.
    path, sentences, gold = gold_corpus(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").mkdir()  # an empty folder: not a package, not a run
    result = CliRunner().invoke(cli, ["evaluate", "default", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["f1"] == pytest.approx(f1_score(gold, Tagger.load("default").tag_batch(sentences)),
                                                           abs=1e-12)
    make_checkpoint(tmp_path / "ensemble", with_pos=False)  # a run named like the other bundled package
    result = CliRunner().invoke(cli, ["evaluate", "ensemble", str(path), "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["loss"] is not None  # scored as a run (MXNet), which reports its loss


def test_an_exported_package_folder_is_scored(package: Path, tmp_path: Path) -> None:
    path, sentences, gold = gold_corpus(tmp_path)
    result = CliRunner().invoke(cli, ["evaluate", str(package), str(path), "--json"])
    assert result.exit_code == 0, result.output
    predicted = Tagger.load(package).tag_batch(sentences)
    assert json.loads(result.output)["accuracy"] == pytest.approx(
        sum(p == g for ps, gs in zip(predicted, gold) for p, g in zip(ps, gs)) / sum(map(len, gold)), abs=1e-12)


@pytest.mark.parametrize(("extra", "said"), [
    ([], "is a model package, which keeps no validation split: give DATA"),
    (["DATA", "--which", "last"], "--which applies to a training run, not to a model package"),
    (["DATA", "--decode", "argmax"], "--decode applies to a training run, not to a model package"),
])
def test_what_applies_to_a_run_only_is_refused_for_a_package(package: Path, tmp_path: Path, extra: list[str],
                                                             said: str) -> None:
    path, _, _ = gold_corpus(tmp_path)
    args = [str(path) if a == "DATA" else a for a in extra]
    result = CliRunner().invoke(cli, ["evaluate", str(package), *args])
    assert result.exit_code == 2 and said in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_tag_the_package_does_not_know_is_one_line_naming_it(package: Path, tmp_path: Path) -> None:
    # As for a training run (the same check, `read_scored_corpus`): the line too, which the package path left out.
    path = write_conll(tmp_path / "other.conll", [[("He", "O"), ("is", "O")], [("in", "O"), ("Paris", "B-LOC")]])
    result = CliRunner().invoke(cli, ["evaluate", str(package), str(path)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: {path}:5: tag 'B-LOC' is not one the model knows (O, "), result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(("content", "said"), [
    # Read as tokens by the sniffer, the first was "scoring needs a tagged corpus", the second offered
    # `--input-format`, which evaluate does not have.
    (b"He\tO\nvisited\tO\nNew York\tB-geo\n\nShe\tO\nleft\tO\n", "mine.txt:3: expected 2 columns, found 3"),
    (b'{"text": "John Smith visited Paris."}\n', "mine.txt:1: a JSON object: not a tagged corpus"),
    (b"John\tB-per\n", None),  # one line of word and tag is CoNLL where a tagged corpus is needed
])
def test_data_is_read_as_a_tagged_corpus(package: Path, tmp_path: Path, content: bytes, said: str | None) -> None:
    path = tmp_path / "mine.txt"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["evaluate", str(package), str(path)])
    if said is None:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1 and said in result.output and "--input-format" not in result.output, result.output


def test_a_package_with_a_pos_head_scores_its_pos_tags(package: Path, tmp_path: Path) -> None:
    # `evaluate PACKAGE` reported pos_accuracy null for every package, though a package of a run with a POS head
    # (the tuned recipe on a corpus with POS) tags POS too. Oracles: MXNet's head (`evaluate RUN`, the same
    # network exported as float32), and for the bundled package the share of its POS tags equal to the corpus's,
    # counted here, on a corpus with some POS tags made wrong (so that neither 0 nor 1 is the answer).
    from helpers import POS

    make_checkpoint(tmp_path / "run", use_pos=False, pos_aux_weight=1.0)
    headed = export_model(tmp_path / "run", tmp_path / "pkg", quantize=None)
    sentences = [*SENTENCES, *SENTENCES[::-1]]
    gold_pos, tags = [*POS, *POS[::-1]], [*TAGS, *TAGS[::-1]]
    with_pos = write_conll(tmp_path / "pos.conll", [list(zip(s, p, t)) for s, p, t in zip(sentences, gold_pos, tags)])
    scores = [json.loads(CliRunner().invoke(cli, ["evaluate", str(model), str(with_pos), "--json"]).output)["pos_accuracy"]
              for model in (tmp_path / "run", headed)]
    assert scores[0] is not None and 0 < scores[0] < 1 and scores[0] == scores[1], scores
    wrong = [[*p[:-1], "VBZ" if p[-1] != "VBZ" else "NN"] for p in gold_pos[:3]] + gold_pos[3:]
    corrupted = write_conll(tmp_path / "wrong.conll", [list(zip(s, p, t)) for s, p, t in zip(sentences, wrong, tags)])
    _, predicted = Tagger.load("default").tag_batch(sentences, return_pos=True)  # the bundled package has a POS head
    pairs = [(p, g) for ps, gs in zip(predicted, wrong) for p, g in zip(ps, gs)]
    assert len(pairs) == sum(map(len, sentences))
    expected = sum(p == g for p, g in pairs) / len(pairs)
    assert 0 < expected < 1
    result = CliRunner().invoke(cli, ["evaluate", "default", str(corrupted), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["pos_accuracy"] == pytest.approx(expected, abs=1e-12)
    # Without POS tags in the corpus, or with a package that has no POS head: none.
    without, _, _ = gold_corpus(tmp_path)
    # Another tag set (UPOS "X", a CoNLL file's chunk column): no gold tag the head knows, none either (it read 0.0).
    upos = write_conll(tmp_path / "upos.conll", [[(w, "X", t) for w, t in zip(s, ts)] for s, ts in zip(sentences, tags)])
    for model, data in ((headed, without), (package, with_pos), (tmp_path / "run", upos), (headed, upos), ("default", upos)):
        result = CliRunner().invoke(cli, ["evaluate", str(model), str(data), "--json"])
        assert result.exit_code == 0 and json.loads(result.output)["pos_accuracy"] is None, result.output
