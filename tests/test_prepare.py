"""`prepare()` and `ner-fast prepare`: splits, vocabularies, buckets on disk, failure leaves nothing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import write_conll
from ner_fast.cli import cli
from ner_fast.corpus import Corpus
from ner_fast.features import ROW_POS, ROW_WORD
from ner_fast.prepare import PreparedData, prepare, split_corpus
from ner_fast.vocab import UNK


def small_corpus(n: int = 40) -> Corpus:
    """Sentences of varied lengths (1..13) with a word that only occurs late (validation)."""
    sentences, tags = [], []
    for i in range(n):
        length = 1 + (i * 7) % 13
        words = [f"w{(i + j) % 9}" for j in range(length)]
        if i >= n - 3:
            words[0] = "only-in-valid"
        sentences.append(words)
        tags.append(["B-X" if j == 0 else "O" for j in range(length)])
    return Corpus.from_sentences(sentences, pos=[["NN"] * len(s) for s in sentences], tags=tags)


def test_sequential_split() -> None:
    corpus = small_corpus(10)
    train, valid = split_corpus(corpus, (0.8, 0.2))
    assert (len(train), len(valid)) == (8, 2)
    assert train.words == corpus.words[: corpus.offsets[8]] and valid.words == corpus.words[corpus.offsets[8] :]
    assert [len(p) for p in split_corpus(corpus, (0.5, 0.3))] == [5, 3]
    for bad in [(0.9, 0.2), (0.0, 1.0), (1.0,)]:
        with pytest.raises(ValueError, match="split"):
            split_corpus(corpus, bad)


def test_prepare_small_corpus_layout() -> None:
    corpus = small_corpus()
    prepared = prepare(corpus, buckets=[4, 8], max_token_chars=5, keep_long=False)
    train, valid = split_corpus(corpus, (0.8, 0.2))
    s = prepared.summary
    assert (s["sentences"], s["tokens"]) == (40, corpus.n_tokens)
    assert s["splits"]["train"]["sentences"] == 32 and s["splits"]["valid"]["tokens"] == valid.n_tokens
    assert s["cut"] == int((train.lengths > 8).sum()) > 0
    assert s["buckets"] == [4, 8] and s["has_pos"] is True
    # Vocabularies from the training split only.
    assert "only-in-valid" not in prepared.vocabs.words.stoi
    assert [b.length for b in prepared.splits["train"]] == [4, 8]
    # Validation is never cut: its long sentences get buckets of their own length.
    assert [b.length for b in prepared.splits["valid"]] == sorted({4, 8} | {int(n) for n in valid.lengths if n > 8})
    valid_tokens = sum(int(b.lengths.sum()) for b in prepared.splits["valid"])
    assert valid_tokens == valid.n_tokens
    first = next(b for b in prepared.splits["valid"] if (b.indices == len(valid) - 1).any())
    row = int(np.flatnonzero(first.indices == len(valid) - 1)[0])
    assert first.features[row, ROW_WORD, 0] == UNK
    assert first.features.shape[1] == 3 + 5
    assert (first.features[row, ROW_POS, : first.lengths[row]] > 1).all()
    assert (first.tags[row, first.lengths[row] :] == -1).all()


def tutorial_and_long_buckets(lengths: np.ndarray, batch_size: int) -> tuple[list[int], list[int]]:
    """The reference of `default_buckets`, written out: every length with at least `batch_size` sentences
    (the tutorial), then (`--keep-long`) the longer sentences one by one, shortest first, a bucket
    closing after the last sentence of a length once it holds `batch_size`; a remainder makes the last."""
    tutorial = [n for n in range(1, int(lengths.max()) + 1) if (lengths == n).sum() >= batch_size]
    longer = sorted(int(n) for n in lengths if n > tutorial[-1])
    ends: list[int] = []
    held = 0
    for i, n in enumerate(longer):
        held += 1
        if held >= batch_size and (i + 1 == len(longer) or longer[i + 1] != n):
            ends.append(n)
            held = 0
    if held:
        ends.append(longer[-1])
    return tutorial, sorted(set(tutorial) | set(ends))


def test_prepare_defaults_on_the_bundled_corpus(bundled: Corpus) -> None:
    prepared = prepare(bundled)
    s = prepared.summary
    assert (s["sentences"], s["tokens"]) == (47_959, 1_048_575)
    assert s["splits"]["train"]["sentences"] == 38_367 and s["splits"]["valid"]["sentences"] == 9_592
    train_lengths = bundled.lengths[:38_367]
    tutorial, kept_long = tutorial_and_long_buckets(train_lengths, 50)
    assert s["buckets"] == kept_long and kept_long[-1] == int(train_lengths.max())
    assert s["cut"] == 0 and prepared.settings["keep_long"] is True
    assert sum(int(b.lengths.sum()) for b in prepared.splits["train"]) == int(train_lengths.sum())
    # The tutorial's rule (--no-keep-long): the long training sentences are cut to its largest bucket.
    cut = prepare(bundled, keep_long=False).summary
    assert cut["buckets"] == tutorial and cut["cut"] == int((train_lengths > tutorial[-1]).sum()) > 0


def test_save_load_round_trip_and_replace(tmp_path: Path) -> None:
    prepared = prepare(small_corpus(), buckets=[5, 10], keep_long=False)
    out = tmp_path / "prep"
    prepared.save(out)
    assert sorted(p.name for p in out.iterdir()) == ["prepared.json", "train.npz", "valid.npz", "vocab.json"]
    with np.load(out / "train.npz", allow_pickle=False) as npz:
        assert npz["buckets"].tolist() == [5, 10]
        assert npz["features_5"].dtype == np.int32 and npz["indices_5"].dtype == np.int64
    loaded = PreparedData.load(out)
    assert loaded.vocabs == prepared.vocabs and loaded.summary == prepared.summary
    for name in ("train", "valid"):
        for a, b in zip(loaded.splits[name], prepared.splits[name]):
            assert a.length == b.length
            for field in ("features", "tags", "lengths", "indices"):
                assert np.array_equal(getattr(a, field), getattr(b, field))
    # Saving again replaces the directory as a whole and leaves no temporary folders.
    prepare(small_corpus(20), buckets=[5]).save(out)
    assert PreparedData.load(out).summary["sentences"] == 20
    assert [p.name for p in tmp_path.iterdir()] == ["prep"]


def test_newer_format_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "prep"
    prepare(small_corpus(), buckets=[5]).save(out)
    doc = json.loads((out / "prepared.json").read_text())
    doc["format_version"] = 99
    (out / "prepared.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="not supported"):
        PreparedData.load(out)


@pytest.mark.parametrize("missing", ["train.npz", "valid.npz"])
def test_a_prepared_folder_missing_a_split_is_named_in_one_line(tmp_path: Path, missing: str) -> None:
    # `save` writes both splits; one gone is a damaged folder. It was skipped on load, and
    # `ner-fast train PREPARED` ended in a traceback, KeyError: 'train' (or 'valid').
    train = write_conll(tmp_path / "train.conll", [[("Ann", "B-PER"), ("runs", "O")], [("Bob", "B-PER")]] * 30)
    out = tmp_path / "prep"
    assert CliRunner().invoke(cli, ["prepare", str(train), "--out", str(out), "--batch-size", "30"]).exit_code == 0
    (out / missing).unlink()
    with pytest.raises(ValueError, match=f"{out / missing}: no such file"):
        PreparedData.load(out)
    result = CliRunner().invoke(cli, ["train", str(out), "--out", str(tmp_path / "run"), "--epochs", "1", "--no-progress"])
    assert result.exit_code == 1, result.exception
    assert result.output.strip().splitlines()[-1] == f"Error: {out / missing}: no such file (expected a prepared split)"
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_a_folder_prepared_from_a_corpus_in_memory_trains(tmp_path: Path) -> None:
    # prepare() takes a Corpus; its folder recorded the corpus's format, "memory", which is no --format:
    # `ner-fast train FOLDER` (and train() on it) refused it, "--format: must be one of auto, gmb, conll".
    out = tmp_path / "prep"
    prepare(small_corpus(), buckets=[5, 10]).save(out)
    assert PreparedData.load(out).settings["format"] == "auto"
    args = ["train", str(out), "--out", str(tmp_path / "run"), "--epochs", "1", "--no-progress",
            "--hidden", "4", "--word-dim", "4", "--filters", "2", "--char-dim", "2", "--batch-size", "8"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "best.params.npz").is_file()


def test_a_folder_of_another_kind_is_named_as_what_it_is(tmp_path: Path) -> None:
    # `train FOLDER` said "FOLDER/prepared.json: no such file", `evaluate`/`export` of a prepared folder
    # "config.json: no such file (expected a ner-fast training config)", `tag` "manifest.json is missing".
    from helpers import make_checkpoint

    prepared, plain, run = tmp_path / "prep", tmp_path / "plain", tmp_path / "run"
    prepare(small_corpus(), buckets=[5, 10]).save(prepared)
    plain.mkdir()
    make_checkpoint(run)
    runner = CliRunner()
    for data, what in ((plain, "a folder without prepared.json"), (run, "a training run")):
        result = runner.invoke(cli, ["train", str(data), "--out", str(tmp_path / "out")])
        assert result.exit_code == 2, result.output
        assert f"DATA: {data} is {what}: give a tagged corpus file, or a folder `ner-fast prepare` wrote" in result.output
    for command in (["evaluate", str(prepared)], ["export", str(prepared), "--out", str(tmp_path / "pkg")]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 1 and f"{prepared}: a prepared folder (`ner-fast prepare`: data, not a model), not a training run" in result.output
    result = runner.invoke(cli, ["tag", str(prepared), "--text", "Paris"])
    assert result.exit_code == 1 and "a prepared folder (`ner-fast prepare`: data, not a model), not a model package" in result.output
    result = runner.invoke(cli, ["train", str(prepared), "--init", str(prepared), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and (f"{prepared}: a prepared folder (`ner-fast prepare`: data, not a model); give a"
                                      " training run, a model package or a bundled name") in result.output, result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "pkg").exists()


def test_cli_conll_without_pos_with_dev(tmp_path: Path) -> None:
    train = write_conll(tmp_path / "train.tsv", [[("Ann", "B-PER"), ("runs", "O")], [("Bob", "I-PER")]] * 30)
    dev = write_conll(tmp_path / "dev.tsv", [[("Cy", "B-PER"), ("walks", "O"), ("far", "O")]])
    out = tmp_path / "prep"
    result = CliRunner().invoke(cli, ["prepare", str(train), "--dev", str(dev), "--out", str(out), "--json", "--max-token-chars", "4", "--batch-size", "30"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["has_pos"] is False and summary["splits"]["valid"]["sentences"] == 1
    assert summary["buckets"] == [1, 2]
    prepared = PreparedData.load(out)
    assert prepared.vocabs.pos is None and prepared.settings["dev"] == str(dev)
    assert all(not b.features[:, ROW_POS].any() for b in prepared.splits["train"])
    assert prepared.vocabs.tags.itos == ["O", "B-PER"]  # IOB1 "I-PER" alone became B-PER
    assert [b.length for b in prepared.splits["valid"]] == [3]


def test_a_relative_dev_is_recorded_absolute_and_never_read_again_from_a_prepared_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prepared.json kept `--dev data/dev.tsv` as typed: `train PREP` from another folder resolved it there
    (another file, or none), so evaluate and --resume refused the run ("not found: put it back") though the
    folder holds the validation split, and the same dev file spelled from there was refused."""
    project = tmp_path / "project"
    data = project / "data"
    data.mkdir(parents=True)
    write_conll(data / "train.tsv", [[("Ann", "B-PER"), ("runs", "O")], [("Bob", "B-PER"), ("sits", "O")]] * 30)
    write_conll(data / "dev.tsv", [[("Cy", "B-PER"), ("walks", "O"), ("far", "O")]] * 4)
    (data / "vec.txt").write_text("ann 0.1 0.2 0.3 0.4\nruns 0.5 0.1 0.0 0.2\nfar 0.3 0.3 0.1 0.0\n", encoding="utf-8")
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["prepare", "data/train.tsv", "--dev", "data/dev.tsv", "--vectors", "data/vec.txt",
                                      "--out", "prep", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    assert PreparedData.load(project / "prep").settings["dev"] == str((data / "dev.tsv").resolve())
    monkeypatch.chdir(tmp_path)  # elsewhere, where data/dev.tsv is no file
    tiny = ["--epochs", "1", "--no-progress", "--hidden", "4", "--filters", "2", "--char-dim", "2", "--batch-size", "8"]
    result = CliRunner().invoke(cli, ["train", "project/prep", "--dev", "project/data/dev.tsv", "--out", "run", *tiny])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["dev"] == str((data / "dev.tsv").resolve())
    (data / "dev.tsv").rename(tmp_path / "moved.tsv")  # the run reads its validation split from the folder,
    (data / "vec.txt").rename(tmp_path / "vec.txt")  # and its vocabulary and rows (the vectors are not frozen)
    result = CliRunner().invoke(cli, ["evaluate", "run", "--no-progress"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["train", "--resume", "run", "--epochs", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    # A run on the corpus itself reads its --dev again: gone, it is named.
    (tmp_path / "moved.tsv").rename(data / "dev.tsv")
    result = CliRunner().invoke(cli, ["train", "project/data/train.tsv", "--dev", "project/data/dev.tsv", "--out", "direct",
                                      "--word-dim", "4", *tiny])
    assert result.exit_code == 0, result.output
    (data / "dev.tsv").unlink()
    result = CliRunner().invoke(cli, ["evaluate", "direct", "--no-progress"])
    assert result.exit_code == 1 and f"was started with --dev {(data / 'dev.tsv').resolve()}, which evaluate" in result.output


def test_a_dev_corpus_in_memory_is_recorded_as_such_not_as_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Resolved as a path, it read "/the/current/folder/<memory>" in prepared.json, warnings and config.json.
    monkeypatch.chdir(tmp_path)
    dev = Corpus.from_sentences([["w1", "w2"]], pos=[["NN", "NN"]], tags=[["B-X", "O"]])
    prepare(small_corpus(), dev=dev, buckets=[5, 10]).save(tmp_path / "prep")
    assert PreparedData.load(tmp_path / "prep").settings["dev"] == "<memory>"


def test_a_dev_corpus_whose_entity_types_training_never_has_is_refused(tmp_path: Path) -> None:
    # `train mine.conll --dev other.conll` where the two name their types differently (PER/LOC against
    # GMB's per/geo) trained a network whose validation F1 is 0 whatever it learns: model selection and
    # early stopping blind, and nothing said. One type in common is enough (a rare type may be missing).
    train = write_conll(tmp_path / "train.tsv", [[("Ann", "B-PER"), ("runs", "O")], [("Rome", "B-LOC")]] * 30)
    other = write_conll(tmp_path / "other.tsv", [[("Ann", "B-per"), ("runs", "O")], [("Rome", "B-geo")]])
    some = write_conll(tmp_path / "some.tsv", [[("Ann", "B-PER"), ("Corp", "B-ORG")]])
    out = tmp_path / "prep"
    result = CliRunner().invoke(cli, ["prepare", str(train), "--dev", str(other), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: {other}: its entity types (geo, per) are none of the training data's (LOC, PER): a validation"
        " corpus must use the training data's tags, else its F1 is 0 whatever the model learns"
    ]
    assert not out.exists()
    assert "B-ORG" in prepare(str(train), dev=str(some), buckets=[2]).vocabs.tags.itos


def test_a_corpus_mixing_iob2_and_iobes_is_refused_at_its_line(tmp_path: Path) -> None:
    # One stray S- tag in a BIO corpus made the tag set IOBES, whose "bio" decoder forbids `B-X O`:
    # `train mixed.conll --dev dev.conll` ran, and tagged so that validation entity F1 was 0.0000.
    bio = [[("Ann", "B-PER"), ("runs", "O")], [("Bob", "B-PER"), ("Lee", "I-PER")]] * 30
    mixed = write_conll(tmp_path / "mixed.tsv", bio + [[("Cy", "S-PER")]])
    out = tmp_path / "prep"
    result = CliRunner().invoke(cli, ["prepare", str(mixed), "--out", str(out), "--buckets", "2"])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: {mixed}:1: 'B-PER' then 'O' is not IOBES, the scheme of 'S-PER' at {mixed}:181: write every"
        " corpus in one scheme (IOB2: B-/I-; IOBES: B-/I-/E-/S-)"
    ]
    assert not out.exists()
    # The same across files: an IOBES dev corpus makes the training data's tag set IOBES too.
    train = write_conll(tmp_path / "train.tsv", bio[1:])
    dev = write_conll(tmp_path / "dev.tsv", [[("Cy", "B-PER"), ("Ng", "E-PER"), ("ran", "O")]])
    with pytest.raises(ValueError, match=rf"^{train}:2: 'I-PER' ends its sentence, which is not IOBES, the scheme of 'E-PER' at {dev}:2"):
        prepare(str(train), dev=str(dev), buckets=[2])
    # Each scheme alone is fine.
    iobes = write_conll(tmp_path / "iobes.tsv", [[("Ann", "S-PER"), ("runs", "O")], [("Bob", "B-PER"), ("Lee", "E-PER")]] * 30)
    assert prepare(str(iobes), dev=str(dev), buckets=[2]).vocabs.tags.itos == ["O", "B-PER", "E-PER", "S-PER"]
    assert "I-PER" in prepare(str(train), buckets=[2]).vocabs.tags.itos
    # An IOB1 entity's first I- is read as B-: the message quoted 'B-GEO' for a line that says 'I-GEO'.
    iob1 = write_conll(tmp_path / "iob1.tsv", [[("Cy", "S-PER")], [("e", "O"), ("Fa", "I-GEO"), ("g", "O")]])
    with pytest.raises(ValueError, match=rf"^{iob1}:4: 'B-GEO' then 'O' .* \(tags are read as IOB2: an entity's first I- is a B-\)$"):
        prepare(str(iob1), buckets=[2])


def test_cli_human_summary_and_options(gmb_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "prep"
    result = CliRunner().invoke(
        cli, ["prepare", str(gmb_file), "--out", str(out), "--split", "0.5", "--buckets", "3,6", "--lowercase"]
    )
    assert result.exit_code == 0, result.output
    assert "sentences 2" in result.output and "tokens 10" in result.output and "cut" in result.output
    prepared = PreparedData.load(out)
    assert prepared.settings["split"] == [0.5, 0.5] and prepared.settings["lowercase"] is True
    assert prepared.vocabs.lowercase and "thousands" in prepared.vocabs.words.stoi


def test_failures_write_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"Sentence #,Word,POS,Tag\nSentence: 1,a,DT,O\n,b,NN\n")
    out = tmp_path / "prep"
    result = CliRunner().invoke(cli, ["prepare", str(bad), "--out", str(out)])
    assert result.exit_code != 0
    assert f"{bad}:3:" in result.output
    assert not out.exists()
    # An existing good directory survives a failed run untouched.
    prepare(small_corpus(), buckets=[5]).save(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = CliRunner().invoke(cli, ["prepare", str(bad), "--out", str(out)])
    assert result.exit_code != 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "prep"]
    result = CliRunner().invoke(cli, ["prepare", "--out", str(out), "--buckets", "a,b"])
    assert result.exit_code == 2 and "Invalid value" in result.output


def test_prepare_argument_errors() -> None:
    with pytest.raises(ValueError, match="max-token-chars"):
        prepare(small_corpus(), max_token_chars=0)
    with pytest.raises(ValueError, match="tagged"):
        prepare(Corpus.from_sentences([["a"], ["b"]]))
    with pytest.raises(ValueError, match="positive"):
        prepare(small_corpus(), buckets=[0, 3])


def test_training_data_without_an_entity_is_refused_in_one_line(tmp_path: Path) -> None:
    # It trained without a word (to F1 0), and a --dev corpus was refused for sharing no type with
    # "the training data's ()".
    all_o = write_conll(tmp_path / "o.tsv", [[("Ann", "O"), ("runs", "O")]] * 40)
    dev = write_conll(tmp_path / "dev.tsv", [[("Ann", "B-PER"), ("runs", "O")]] * 5)
    out = tmp_path / "prep"
    for extra in ([], ["--dev", str(dev)]):
        result = CliRunner().invoke(cli, ["prepare", str(all_o), "--out", str(out), "--buckets", "2", *extra])
        assert result.exit_code == 1, result.output
        assert result.output.strip().splitlines() == [f"Error: {all_o}: every tag is O: a tagger learns no entity from it"]
        assert not out.exists()
    # One entity is enough.
    one = write_conll(tmp_path / "one.tsv", [[("Ann", "O"), ("runs", "O")]] * 39 + [[("Ann", "B-PER"), ("runs", "O")]])
    assert prepare(str(one), dev=str(dev), buckets=[2]).vocabs.tags.itos == ["O", "B-PER"]


def test_a_dev_corpus_with_a_type_training_lacks_is_named_in_a_warning(tmp_path: Path) -> None:
    # A --dev type the training data never uses is one the model is not trained to tag: it silently capped
    # the validation F1. One shared type still runs (a small corpus may lack a rare type), with one line said.
    train = write_conll(tmp_path / "train.tsv", [[("Ann", "B-PER"), ("runs", "O")], [("Rome", "B-LOC")]] * 30)
    dev = write_conll(tmp_path / "dev.tsv", [[("Ann", "B-PER"), ("Corp", "B-ORG")], [("Nile", "B-NAT"), ("Rome", "B-LOC")]])
    same = write_conll(tmp_path / "same.tsv", [[("Cy", "B-PER"), ("in", "O"), ("Rome", "B-LOC")]])
    result = CliRunner().invoke(cli, ["prepare", str(train), "--dev", str(dev), "--out", str(tmp_path / "prep"), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        f"Warning: {dev}: entity types NAT, ORG never occur in the training data {train}: the model is not trained"
        " to tag them, so their entities count as missed and cap the validation F1"
    ]
    assert json.loads(result.stdout)["dev_types_not_trained"] == ["NAT", "ORG"]
    assert PreparedData.load(tmp_path / "prep").summary["dev_types_not_trained"] == ["NAT", "ORG"]
    for extra in (["--dev", str(same)], []):  # the same types, or the split of the training data: nothing said
        result = CliRunner().invoke(cli, ["prepare", str(train), *extra, "--out", str(tmp_path / "ok"), "--force"])
        assert result.exit_code == 0, result.output
        assert result.stderr == "" and "Warning" not in result.output


def test_a_validation_split_of_data_with_a_type_its_training_split_lacks_is_named_in_a_warning(tmp_path: Path) -> None:
    # Without --dev the validation split is the end of DATA: a type only there caps the validation F1 just as a
    # --dev type does, and gets the same warning (`prepare.valid_types_warning`, the one rule for both).
    head = [[("Ann", "B-PER"), ("runs", "O")], [("Rome", "B-LOC")]] * 20
    tail = [[("Corp", "B-ORG"), ("Ann", "B-PER")], [("Nile", "B-NAT")]] * 5
    data = write_conll(tmp_path / "data.tsv", head + tail)
    corpus_types = lambda sentences: {t[2:] for s in sentences for _, t in s if t != "O"}
    assert corpus_types(tail) - corpus_types(head) == {"NAT", "ORG"}  # the oracle, from the sentences written
    prepared = prepare(str(data), split=(0.8, 0.2), buckets=[2])
    assert len(prepared.corpora["train"]) == len(head)  # the split falls where the new types start
    result = CliRunner().invoke(cli, ["prepare", str(data), "--split", "0.8", "--buckets", "2", "--out",
                                      str(tmp_path / "prep"), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        f"Warning: {data}: entity types NAT, ORG occur in the validation split (--split 0.8,0.2) but never in the"
        " training split: the model is not trained to tag them, so their entities count as missed and cap the"
        " validation F1"
    ]
    assert json.loads(result.stdout)["dev_types_not_trained"] == ["NAT", "ORG"]
    assert PreparedData.load(tmp_path / "prep").summary["dev_types_not_trained"] == ["NAT", "ORG"]
    # One type: said in the singular. The same data with the new types inside the training split: nothing said.
    one = write_conll(tmp_path / "one.tsv", head + [[("Corp", "B-ORG"), ("Ann", "B-PER")]] * 10)
    result = CliRunner().invoke(cli, ["prepare", str(one), "--buckets", "2", "--out", str(tmp_path / "one")])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        f"Warning: {one}: entity type ORG occurs in the validation split (--split 0.8,0.2) but never in the training"
        " split: the model is not trained to tag it, so its entities count as missed and cap the validation F1"
    ]
    mixed = write_conll(tmp_path / "mixed.tsv", tail + head)
    result = CliRunner().invoke(cli, ["prepare", str(mixed), "--buckets", "2", "--out", str(tmp_path / "mixed")])
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and "Warning" not in result.output


def test_keep_long_keeps_long_training_sentences_whole_and_is_a_data_option(tmp_path: Path) -> None:
    # A few hundred sentences at batch size 16 made the tutorial's largest bucket short, and prepare cut
    # every longer training sentence to it (500 wikigold sentences lost 23% of their tokens).
    from ner_fast.config import OptionError, TrainConfig
    from ner_fast.train_options import fixed_by_prepared

    sentences = [[("w", "O"), ("Paris", "B-geo"), (".", "O")]] * 40 + [[("w", "O")] * 19 + [("Rome", "B-geo")]] * 5
    data = write_conll(tmp_path / "long.tsv", sentences)
    args = ["prepare", str(data), "--dev", str(data), "--batch-size", "8"]
    assert CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "kept")]).exit_code == 0
    kept = PreparedData.load(tmp_path / "kept")
    assert kept.settings["buckets"] == [3, 20] and kept.settings["keep_long"] is True and kept.summary["cut"] == 0
    assert sum(int(b.lengths.sum()) for b in kept.splits["train"]) == 40 * 3 + 5 * 20
    result = CliRunner().invoke(cli, [*args, "--no-keep-long", "--out", str(tmp_path / "cut")])
    assert result.exit_code == 0, result.output
    cut = PreparedData.load(tmp_path / "cut")
    assert cut.settings["buckets"] == [3] and cut.summary["cut"] == 5
    # Buckets given by hand: the same, past their largest.
    assert CliRunner().invoke(cli, [*args, "--buckets", "2,3", "--out", str(tmp_path / "given")]).exit_code == 0
    given = PreparedData.load(tmp_path / "given")
    assert given.settings["buckets"] == [2, 3, 20] and given.summary["cut"] == 0
    result = CliRunner().invoke(cli, [*args, "--buckets", "2,3", "--no-keep-long", "--out", str(tmp_path / "given-cut")])
    assert result.exit_code == 0, result.output
    assert PreparedData.load(tmp_path / "given-cut").summary["cut"] == 5
    # A prepared folder's own value, given again, is accepted.
    again = CliRunner().invoke(cli, ["train", str(tmp_path / "kept"), "--keep-long", "--epochs", "1", "--no-progress",
                                     "--hidden", "4", "--word-dim", "4", "--filters", "2", "--char-dim", "2",
                                     "--batch-size", "8", "--out", str(tmp_path / "run")])  # fmt: skip
    assert again.exit_code == 0, again.output
    # The --buckets a folder was prepared with, given again, is its own value too (it records them with the
    # buckets --keep-long added: 2,3 was refused as "made with --buckets 2,3,20"); others are refused.
    assert fixed_by_prepared(given.settings, {"buckets": [3, 2]})["buckets"] == [2, 3, 20]
    assert fixed_by_prepared(given.settings, {"buckets": [2, 3, 20]})["buckets"] == [2, 3, 20]
    with pytest.raises(OptionError, match=r"made with --buckets 2,3 \(buckets 2,3,20 with --keep-long's\);"):
        fixed_by_prepared(given.settings, {"buckets": [2, 4]})  # it named 2,3,20, which it then accepts
    # Folders and runs from before the option were cut: read so, not as the new default.
    older = {k: v for k, v in cut.settings.items() if k != "keep_long"}
    assert fixed_by_prepared(older, {"keep_long": False})["keep_long"] is False
    with pytest.raises(OptionError, match="--keep-long"):
        fixed_by_prepared(older, {"keep_long": True})
    section = TrainConfig.from_options(str(tmp_path / "run"), str(data)).to_dict()
    assert section["keep_long"] is True
    section.pop("keep_long")
    assert TrainConfig.from_dict(section).keep_long is False


def test_the_python_api_names_a_run_given_as_prepared_data(tmp_path: Path) -> None:
    # `train(TrainConfig(data=RUN))` took any folder for a prepared one and failed on "RUN/prepared.json: no such
    # file" (the command line checks first, `train_options._check_prepared`).
    from helpers import make_checkpoint

    make_checkpoint(tmp_path / "run")
    with pytest.raises(ValueError, match=r"run: a training run, not a prepared folder \(what `ner-fast prepare` writes\)"):
        PreparedData.load(tmp_path / "run")
    # A prepared folder (it has vocab.json) that a config.json of someone else's joined is still one.
    prepare(small_corpus(), buckets=[5, 10]).save(tmp_path / "prep")
    (tmp_path / "prep" / "config.json").write_text("{}", encoding="utf-8")
    assert len(PreparedData.load(tmp_path / "prep").splits["train"]) > 0
