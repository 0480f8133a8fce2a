"""User mistakes and damaged files get one line naming the file or option, exit 2 for usage and 1 for
data, never a traceback (issue 8, defect 6); options are honoured or refused, never ignored (defect 8)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ner_fast.buckets import MAX_BUCKET_LENGTH
from ner_fast.checkpoint import load_model
from ner_fast.cli import cli
from ner_fast.errors import OptionError
from ner_fast.package import load_package
from ner_fast.prepare import prepare
from ner_fast.training.export import export_model

TINY = ["--hidden", "4", "--word-dim", "4", "--filters", "2", "--char-dim", "3", "--no-progress"]


def _fails(result: Result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # a message, not a traceback
    for word in words:
        assert word in result.output, result.output


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("prep") / "p"
    prepare(max_sentences=120, buckets=[12, 20, 40], batch_size=16, lowercase=False, keep_long=False).save(folder)
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, prepared: Path) -> Path:
    """One finished epoch that never improves again (learning rate ~0), patience 1."""
    out = tmp_path_factory.mktemp("run") / "r"
    args = ["train", str(prepared), "--out", str(out), "--epochs", "1", "--patience", "1", "--lr", "1e-12",
            "--batch-size", "16", *TINY]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(run, target)
    return target


def test_force_keeps_the_earlier_run_until_the_new_one_is_set_up(copy: Path, tmp_path: Path) -> None:
    # `--force` starts a finished run over; it used to delete the earlier run's files before reading the
    # data, --init or --teacher, so a malformed corpus (or any refusal after that) lost the trained model
    # and wrote nothing in its place.
    from helpers import write_conll

    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    bad = tmp_path / "bad.conll"
    bad.write_text("Ann B-PER\nruns O\n\nBob B-PER x y\n", encoding="utf-8")
    _fails(CliRunner().invoke(cli, ["train", str(bad), "--out", str(copy), "--force", "--epochs", "1", *TINY]), 1,
           f"{bad}:4:")
    other = write_conll(tmp_path / "other.conll", [[("Ann", "B-PER"), ("runs", "O")]] * 20)
    _fails(CliRunner().invoke(cli, ["train", str(other), "--teacher", str(copy), "--out", str(copy), "--force",
                                    "--epochs", "1", *TINY]), 2, "--teacher", "must know every tag of the student")
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before
    # Set up, the new run replaces the earlier one's files: here it even starts from them (--init itself).
    result = CliRunner().invoke(cli, ["train", "--init", str(copy), "--out", str(copy), "--force", "--epochs", "1",
                                      "--max-sentences", "120", "--batch-size", "16", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (copy / "best.params.npz").read_bytes() != before["best.params.npz"]


def test_resume_without_state_json(copy: Path) -> None:
    (copy / "state.json").unlink()
    _fails(CliRunner().invoke(cli, ["train", "--resume", str(copy)]), 1, "state.json", "never finished an epoch")


def test_resume_with_no_epoch_left_says_so_and_changes_nothing(copy: Path) -> None:
    # It used to read the data and build the network, then report the finished run again as if resumed.
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    for epochs in ([], ["--epochs", "1"]):  # the run's own --epochs (1), and the same given again
        _fails(CliRunner().invoke(cli, ["train", "--resume", str(copy), *epochs]), 1,
               "already trained 1 epochs", "give --epochs more than 1")
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before


@pytest.mark.parametrize("name", ["last.params.npz", "last.states.npz"])
@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_resume_with_damaged_npz(copy: Path, name: str, damage: str) -> None:
    path = copy / name
    data = path.read_bytes()
    path.write_bytes(bytes(range(256)) * 8 if damage == "random" else data[: len(data) // 2])
    result = CliRunner().invoke(cli, ["train", "--resume", str(copy), "--epochs", "2"])
    _fails(result, 1, str(path))
    assert "pickled" not in result.output


@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_export_and_evaluate_with_damaged_params(copy: Path, tmp_path: Path, damage: str) -> None:
    path = copy / "best.params.npz"
    data = path.read_bytes()
    path.write_bytes(b"\x93NUMPY" + bytes(300) if damage == "random" else data[: len(data) // 3])
    for args in (["export", str(copy), "--out", str(tmp_path / "pkg")], ["evaluate", str(copy), "--no-progress"]):
        result = CliRunner().invoke(cli, args)
        _fails(result, 1, str(path))
        assert "pickled" not in result.output


@pytest.mark.parametrize(
    "edit,words",
    [
        (lambda d: d.pop("train"), ["config.json", "'train'"]),
        (lambda d: d["train"].update(colour="blue"), ["config.json", "colour"]),
        (lambda d: d["model"].update(colour="blue"), ["config.json", "colour"]),
        (lambda d: d.update(format_version=99), ["config.json", "format_version 99"]),
    ],
)
def test_bad_config_json(copy: Path, edit, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    path = copy / "config.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    _fails(CliRunner().invoke(cli, ["train", "--resume", str(copy), "--epochs", "2"]), 1, *words)
    _fails(CliRunner().invoke(cli, ["evaluate", str(copy), "--no-progress"]), 1, *words)


@pytest.mark.parametrize("name", ["state.json", "config.json", "metrics.jsonl"])
def test_invalid_json_names_the_file(copy: Path, name: str) -> None:
    (copy / name).write_text('{"epoch": 1,\n', encoding="utf-8")
    _fails(CliRunner().invoke(cli, ["train", "--resume", str(copy), "--epochs", "2"]), 1, str(copy / name))


# This run trained on a prepared folder, which holds the validation split and vocabulary its --dev and
# --vectors gave (never read again then: tests/test_prepare.py, "never read again"): those two as the files of
# a run on a corpus, here the examples' training file.
@pytest.mark.parametrize("field,flag", [("data", "DATA"), ("vectors", "--vectors"), ("dev", "--dev")])
def test_resume_names_a_file_it_reads_again_that_is_gone(copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         field: str, flag: str) -> None:
    # A config.json written before paths were recorded absolute (`config.recorded_path`) kept them as given,
    # relative to where the run started; resumed elsewhere they are not found.
    doc = json.loads((copy / "config.json").read_text())
    if field != "data":
        doc["train"]["data"] = str(Path(__file__).parents[1] / "examples" / "my-train.conll")
    doc["train"][field] = "started-here/file.txt"
    (copy / "config.json").write_text(json.dumps(doc))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["train", "--resume", str(copy), "--epochs", "2"])
    _fails(result, 1, f"{flag} started-here/file.txt", "a resumed run reads again", "resume from the folder")
    result = CliRunner().invoke(cli, ["evaluate", str(copy), "--no-progress"])
    _fails(result, 1, f"{flag} started-here/file.txt", "evaluate (rebuilding the validation split) reads again",
           "evaluate from the folder")


def test_resume_names_a_teacher_that_is_gone_and_evaluate_does_not_need_it(copy: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    doc = json.loads((copy / "config.json").read_text())
    doc["train"]["teacher"] = "default,started-here/teacher"  # the bundled model's name is no path
    (copy / "config.json").write_text(json.dumps(doc))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["train", "--resume", str(copy), "--epochs", "2"])
    _fails(result, 1, "--teacher started-here/teacher", "a resumed run reads again", "resume from the folder")
    assert CliRunner().invoke(cli, ["evaluate", str(copy), "--no-progress"]).exit_code == 0


def test_a_batch_size_past_the_training_sentences_and_the_default_is_refused(tmp_path: Path) -> None:
    # Every batch is padded to --batch-size rows: `train --max-sentences 100 --batch-size 100000` grew to 16 GB
    # and was killed by the kernel (exit 137, no message). Up to the default (50) stays allowed whatever the
    # corpus, so a tiny corpus trains as before. (TINY keeps this test small should the check be missing.)
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "o"), "--max-sentences", "40", "--epochs", "1",
                                      "--batch-size", "5000", *TINY])
    _fails(result, 2, "--batch-size: 5000 is more than the 32 training sentences", "give at most 50")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["prepare", "train"])
def test_split_with_dev_is_refused_not_ignored(tmp_path: Path, command: str) -> None:
    # With --dev all of DATA trains, so --split did nothing: `train data.conll --dev dev.conll --split 0.5`
    # trained on all of data.conll, silently. Options are honoured or refused, never ignored.
    from helpers import write_conll

    dev = write_conll(tmp_path / "dev.conll", [[("Ann", "B-PER"), ("runs", "O")]] * 3)
    small = ["--max-sentences", "40", *(["--epochs", "1", *TINY] if command == "train" else [])]
    result = CliRunner().invoke(cli, [command, "--out", str(tmp_path / "o"), "--dev", str(dev), "--split", "0.5", *small])
    _fails(result, 2, "--split", "does nothing with --dev")
    assert not (tmp_path / "o").exists()


def test_a_recipe_whose_data_options_the_prepared_folder_lacks_is_refused(prepared: Path, tmp_path: Path) -> None:
    # The fixture's folder is cased and cut (the tutorial's data options): `--recipe tuned` on it trained the
    # tuned network on cased, cut data without a word, and `--recipe tutorial` on a folder of the tuned
    # recipe was no tutorial run. Given alongside, the folder's own values are accepted.
    result = CliRunner().invoke(cli, ["train", str(prepared), "--out", str(tmp_path / "o"), "--recipe", "tuned",
                                      "--epochs", "1", *TINY])
    _fails(result, 2, "--recipe: DATA is a prepared folder made with --keep-long no, --lowercase no, not the tuned"
                      " recipe's data options: prepare it with --recipe tuned, or leave --recipe out")
    assert not (tmp_path / "o").exists()
    result = CliRunner().invoke(cli, ["train", str(prepared), "--out", str(tmp_path / "o"), "--recipe", "tuned",
                                      "--no-lowercase", "--no-keep-long", "--epochs", "1", "--batch-size", "16", *TINY])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("given", "said"), [
    (["--lm-vocab", "100"], "--lm-vocab: does nothing while --lm-aux-weight is 0.0 (no language-model loss)"),
    (["--lm-dim", "20"], "--lm-dim: does nothing while --lm-aux-weight is 0.0"),
    (["--casing-dim", "5", "--no-casing"], "--casing-dim: does nothing without --casing (no casing embedding)"),
    (["--casing-dim", "5", "--recipe", "tutorial"], "--casing-dim: does nothing without --casing"),  # the tutorial's
])
def test_an_option_of_a_head_or_an_embedding_left_out_is_refused(tmp_path: Path, given: list[str], said: str) -> None:
    # Recorded in config.json and ignored: no language-model head, no casing embedding (a lifecycle trial).
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "o"), "--max-sentences", "40", "--epochs", "1",
                                      *given, *TINY])
    _fails(result, 2, said)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("setting", [["--lr-decay", "1"], ["--recipe", "tutorial"]])
def test_decay_sentences_without_a_decay_is_refused(tmp_path: Path, setting: list[str]) -> None:
    # A constant learning rate (given, or the tutorial's) never steps: --lr-decay-sentences was ignored.
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "o"), "--max-sentences", "40", "--epochs", "1",
                                      "--lr-decay-sentences", "500", *setting, *TINY])
    _fails(result, 2, "--lr-decay-sentences: does nothing while --lr-decay is 1.0")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "command,args,flag",
    [("train", ["--vector-words", "5"], "--vector-words"), ("prepare", ["--vector-words", "5"], "--vector-words"),
     ("train", ["--freeze-epochs", "3"], "--freeze-epochs"), ("train", ["--init-lr-scale", "0.1"], "--init-lr-scale")],
)
def test_an_option_that_would_do_nothing_alone_is_refused(tmp_path: Path, command: str, args: list[str], flag: str) -> None:
    # Each acts only with another option (--vectors, --init); given alone it used to be ignored, silently.
    small = ["--max-sentences", "40", *(["--epochs", "1", *TINY] if command == "train" else [])]  # quick if it runs
    result = CliRunner().invoke(cli, [command, "--out", str(tmp_path / "o"), *args, *small])
    _fails(result, 2, flag, "applies only with --")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "args,flag",
    [(["--dropout", "2"], "--dropout"), (["--word-dim", "0"], "--word-dim"), (["--split", "1.5"], "--split"),
     (["--buckets", "0,4"], "--buckets"), (["--context", "tpu"], "--context"), (["--directions", "3"], "--directions"),
     (["--directions", "1", "--lm-aux-weight", "0.1"], "--lm-aux-weight"),
     # numpy's seeds are 0 .. 2**32 - 1; outside, its own words came out as exit 1, naming no option
     (["--seed", "-1"], "--seed"), (["--seed", str(2**32)], "--seed"),
     # sizes no memory holds: each allocated until the kernel killed the process (exit 137, no message)
     (["--hidden", "100000"], "--hidden"), (["--max-token-chars", "100000"], "--max-token-chars"),
     (["--word-dim", "5000"], "--word-dim"), (["--filter-widths", "3,200"], "--filter-widths")],
)  # fmt: skip
def test_bad_values_are_usage_errors_naming_the_option(tmp_path: Path, args: list[str], flag: str) -> None:
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "o"), *args])
    _fails(result, 2, flag)
    assert not (tmp_path / "o").exists()


def test_the_size_caps_bound_the_command_line_not_a_recorded_run(tmp_path: Path) -> None:
    # A run recorded before the caps (config.json's values are checked by the dataclasses) stays readable.
    from ner_fast.config import ModelConfig, TrainConfig

    cfg = TrainConfig(out=str(tmp_path / "o"), max_token_chars=200, arch={"hidden": 5000, "num_layers": 9})
    assert (cfg.max_token_chars, cfg.arch["hidden"], cfg.arch["num_layers"]) == (200, 5000, 9)
    assert ModelConfig(n_words=5, n_chars=5, n_tags=3, hidden=5000, max_token_chars=200).hidden == 5000
    result = CliRunner().invoke(cli, ["prepare", "--out", str(tmp_path / "p"), "--max-token-chars", "129"])
    _fails(result, 2, "--max-token-chars: must be at most 128")


HUGE = ["999999999999999999999", "9" * 400, "10,8193"]


@pytest.mark.parametrize("length", HUGE)
@pytest.mark.parametrize("command", ["prepare", "train", "export"])
def test_a_bucket_past_the_longest_is_a_usage_error(tmp_path: Path, command: str, length: str) -> None:
    # It went on to lay out (or export) a bucket that long: an OverflowError or MemoryError traceback.
    data = tmp_path / "x.conll"
    data.write_text("Paris NNP B-geo\n. . O\n\n" * 20, encoding="utf-8")
    first = str(tmp_path) if command == "export" else str(data)  # export's MODEL: an existing folder
    result = CliRunner().invoke(cli, [command, first, "--out", str(tmp_path / "o"), "--buckets", length])
    _fails(result, 2, "--buckets", f"at most {MAX_BUCKET_LENGTH}")
    assert not (tmp_path / "o").exists()


def test_the_longest_bucket_is_taken_even_when_no_sentence_reaches_it(tmp_path: Path) -> None:
    data = tmp_path / "x.conll"
    data.write_text("Paris NNP B-geo\n. . O\n\n" * 20, encoding="utf-8")
    buckets = f"3,{MAX_BUCKET_LENGTH}"
    result = CliRunner().invoke(cli, ["prepare", str(data), "--out", str(tmp_path / "o"), "--buckets", buckets])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "prepared.json").read_text())["settings"]["buckets"] == [3, MAX_BUCKET_LENGTH]
    with pytest.raises(OptionError, match="--buckets"):  # the Python API: the same check, before any work
        export_model(tmp_path / "no-such-run", tmp_path / "pkg", buckets=str(MAX_BUCKET_LENGTH + 1))


def test_the_default_buckets_stay_within_the_longest(tmp_path: Path) -> None:
    """The tutorial's rule (`buckets.default_buckets`) took any length: a corpus without blank lines, one
    long sentence, gave a bucket past the bound that `--buckets` refuses, and `export --buckets auto`
    wrote its graph."""
    from ner_fast.buckets import default_buckets

    longest = MAX_BUCKET_LENGTH + 808
    assert default_buckets([longest, 3], batch_size=50) == [MAX_BUCKET_LENGTH]
    assert default_buckets([3, longest, longest], batch_size=1) == [3, MAX_BUCKET_LENGTH]
    data = tmp_path / "x.conll"
    data.write_text("Paris NNP B-geo\n" * longest + "\n" + "Paris NNP B-geo\n. . O\n\n" * 4, encoding="utf-8")
    result = CliRunner().invoke(cli, ["prepare", str(data), "--out", str(tmp_path / "o"), "--no-keep-long"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "o" / "prepared.json").read_text())
    assert doc["settings"]["buckets"] == [MAX_BUCKET_LENGTH]
    assert doc["summary"]["cut"] == 1  # the long training sentence, cut to the bucket
    # --keep-long (the default) pads and cuts no more than that: no length holds 50 sentences, so the
    # tutorial's one bucket is the bound, and the long sentence is cut to it alike.
    result = CliRunner().invoke(cli, ["prepare", str(data), "--out", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "k" / "prepared.json").read_text())
    assert doc["settings"]["buckets"] == [MAX_BUCKET_LENGTH] and doc["summary"]["cut"] == 1


def test_gpu_context_on_a_cpu_only_build(prepared: Path, tmp_path: Path) -> None:
    import mxnet as mx

    if mx.runtime.Features().is_enabled("CUDA"):
        pytest.skip("this MXNet has CUDA")
    result = CliRunner().invoke(cli, ["train", str(prepared), "--out", str(tmp_path / "o"), "--context", "gpu:0", *TINY])
    _fails(result, 2, "--context", "CPU-only")
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- defect 8: no option ignored


@pytest.mark.slow
def test_resume_honours_patience_zero_and_the_other_resumable_options(copy: Path) -> None:
    # Patience 1 with no improvement would stop after epoch 2; --patience 0 (never) runs all 3.
    result = CliRunner().invoke(
        cli, ["train", "--resume", str(copy), "--epochs", "3", "--patience", "0", "--context", "cpu:0", "--json"]
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["stopped"] == "epochs" and len(outcome["history"]) == 3
    doc = json.loads((copy / "config.json").read_text())
    assert (doc["train"]["patience"], doc["train"]["epochs"], doc["train"]["context"]) == (0, 3, "cpu:0")


@pytest.mark.parametrize(
    "args,flag",
    [(["--lr", "0.1"], "--lr"), (["--hidden", "9"], "--hidden"), (["--lowercase"], "--lowercase"),
     (["--recipe", "tutorial"], "--recipe"), (["DATA"], "DATA"), (["--force"], "--force"),
     (["--directions", "1"], "--directions")],
)  # fmt: skip
def test_resume_refuses_options_it_cannot_honour(copy: Path, prepared: Path, args: list[str], flag: str) -> None:
    args = [str(prepared) if a == "DATA" else a for a in args]
    before = (copy / "config.json").read_bytes()
    _fails(CliRunner().invoke(cli, ["train", "--resume", str(copy), *args]), 2, flag)
    assert (copy / "config.json").read_bytes() == before


@pytest.mark.parametrize(
    "args,flag",
    [(["--lowercase"], "--lowercase"), (["--max-sentences", "10"], "--max-sentences"), (["--buckets", "5"], "--buckets"),
     (["--split", "0.5"], "--split"), (["--max-token-chars", "9"], "--max-token-chars"), (["--format", "conll"], "--format")],
)  # fmt: skip
def test_a_prepared_folder_refuses_other_data_options(prepared: Path, tmp_path: Path, args: list[str], flag: str) -> None:
    result = CliRunner().invoke(cli, ["train", str(prepared), "--out", str(tmp_path / "o"), *args, *TINY])
    _fails(result, 2, flag, "prepared folder")
    assert not (tmp_path / "o").exists()


def test_a_prepared_folder_is_recorded_as_used(run: Path) -> None:
    # The tuned recipe lower-cases, but this folder was prepared cased: the record says what was used.
    doc = json.loads((run / "config.json").read_text())
    assert doc["train"]["lowercase"] is False and doc["data"]["lowercase"] is False
    assert doc["train"]["max_sentences"] == 120 and doc["train"]["buckets"] == [12, 20, 40]


@pytest.mark.slow
def test_train_split_takes_one_fraction_like_prepare(tmp_path: Path) -> None:
    out = tmp_path / "s"
    result = CliRunner().invoke(
        cli, ["train", "--out", str(out), "--max-sentences", "60", "--split", "0.8", "--epochs", "1", "--buckets", "40",
              "--batch-size", "16", *TINY],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "config.json").read_text())
    assert doc["train"]["split"] == [0.8, 0.2] and doc["data"]["summary"]["splits"]["valid"]["sentences"] == 12


def test_evaluate_rebuilds_a_prepared_run_recorded_before_the_rule(copy: Path) -> None:
    # Runs trained before the rule recorded the recipe's lowercase over a cased prepared folder.
    path = copy / "config.json"
    doc = json.loads(path.read_text())
    doc["train"]["lowercase"] = True
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(cli, ["evaluate", str(copy), "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["tokens"] > 0


def test_evaluate_names_the_prepared_folder_prepared_again_since_the_run(copy: Path, tmp_path: Path) -> None:
    # The run trained on a prepared folder, later prepared again from other sentences: the message blamed
    # the bundled corpus the folder was first made from, which had not changed.
    folder = tmp_path / "prep"
    prepare(max_sentences=150, buckets=[12, 20, 40], batch_size=16, lowercase=False, keep_long=False).save(folder)
    path = copy / "config.json"
    doc = json.loads(path.read_text())
    doc["train"]["data"] = str(folder)
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(cli, ["evaluate", str(copy), "--no-progress"])
    _fails(result, 1, f"the prepared folder {folder} was prepared again since the run trained on it (other vocabularies",
           "pass the corpus to evaluate explicitly")
    assert "ner_dataset" not in result.output


@pytest.mark.parametrize("change", ["buckets", "max_token_chars", "split", "recase"])
def test_resume_and_evaluate_refuse_a_prepared_folder_prepared_again(copy: Path, tmp_path: Path, change: str) -> None:
    # `train --resume` blamed --buckets, which was never given, for a folder prepared again with other
    # buckets; with another --max-token-chars it trained on, rewriting the run's settings, and evaluate
    # failed on the features' shape; with another --split or --recase (options left at their defaults by the
    # run) both went on with other sentences, unsaid (found by breaker trials). The splits' digests tell.
    doc = json.loads((copy / "config.json").read_text())
    folder = Path(doc["train"]["data"])
    settings = json.loads((folder / "prepared.json").read_text())["settings"]
    again = tmp_path / "again"
    shutil.copytree(folder, again)
    kw = {"buckets": {"buckets": [12, 20]}, "max_token_chars": {"max_token_chars": 3}, "split": {"split": (0.7, 0.3)},
          "recase": {"recase": 0.5}}[change]
    kw = {"buckets": settings["buckets"], **kw} if change != "buckets" else kw
    prepare(max_sentences=120, batch_size=16, lowercase=False, keep_long=False, **kw).save(again, force=True)
    doc["train"]["data"] = str(again)
    (copy / "config.json").write_text(json.dumps(doc))
    before = (copy / "config.json").read_bytes()
    why = {"buckets": "--buckets 12,20, the run's", "max_token_chars": "--max-token-chars 3, the run's 20",
           "split": "other training sentences: 84, the run's 96", "recase": "other training sentences or tags: 144"}
    result = CliRunner().invoke(cli, ["train", "--resume", str(copy), "--epochs", "2", "--no-progress"])
    _fails(result, 1, f"the prepared folder {again} was prepared again since the run trained on it (", why[change])
    assert (copy / "config.json").read_bytes() == before
    if change != "buckets":
        result = CliRunner().invoke(cli, ["evaluate", str(copy), "--no-progress"])
        _fails(result, 1, f"the prepared folder {again} was prepared again since the run trained on it")


def test_a_run_recorded_before_directions_existed_is_a_bilstm(copy: Path, tmp_path: Path) -> None:
    # config.json of runs trained before the option: no "directions" in either section.
    path = copy / "config.json"
    doc = json.loads(path.read_text())
    assert doc["model"].pop("directions") == 2 and doc["train"]["arch"].pop("directions") == 2
    path.write_text(json.dumps(doc))
    config, params, _, _ = load_model(copy)
    assert config.directions == 2 and "lstm0_bwd_i2h_weight" in params
    result = CliRunner().invoke(cli, ["evaluate", str(copy), "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["train", "--resume", str(copy), "--epochs", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["export", str(copy), "--out", str(tmp_path / "pkg")])
    assert result.exit_code == 0, result.output
    assert load_package(tmp_path / "pkg").model["architecture"]["directions"] == 2


def test_a_run_recorded_before_decode_existed_decodes_by_argmax_everywhere(copy: Path, tmp_path: Path) -> None:
    # It selected its best epoch by argmax; export and evaluate said so, but `TrainConfig.from_dict` filled in
    # the table's default ("bio"), so a resumed run selected its epochs by another decoding.
    from ner_fast.config import resume_config

    path = copy / "config.json"
    doc = json.loads(path.read_text())
    assert doc["train"].pop("decode") == "bio"  # the tuned recipe's
    path.write_text(json.dumps(doc))
    assert resume_config(copy).decode == "argmax"
    assert load_package(export_model(copy, tmp_path / "pkg")).model["decode"] == "argmax"


def test_a_missing_engine_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import ner_fast.cli as cli_module

    def no_mxnet() -> None:
        raise ModuleNotFoundError("No module named 'mxnet'", name="mxnet")

    monkeypatch.setattr(cli_module, "cli", no_mxnet)
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["Error: this command needs mxnet: pip install 'ner-fast[train]'"]


@pytest.mark.parametrize(("command", "module", "extra"), [(["serve", "default"], "uvicorn", "serve"),
                                                          (["tag", "default", "IN", "--output-dir", "OUT"], "distributed", "dask")])
def test_a_missing_extra_is_said_as_every_command_says_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path, command: list[str], module: str, extra: str) -> None:
    # serve said "ner-fast serve needs the serve extra (...)", tag --output-dir "--output-dir needs Dask: ..." (and
    # only when ner_fast.dask failed to import, which imports distributed later): `errors.missing_extra`, the
    # console script's line, whoever meets the missing module.
    import sys

    import ner_fast.cli as cli_module

    (tmp_path / "in.txt").write_text("Paris\n", encoding="utf-8")
    command = [{"IN": str(tmp_path / "in.txt"), "OUT": str(tmp_path / "out")}.get(a, a) for a in command]
    monkeypatch.setitem(sys.modules, module, None)  # `import MODULE` raises ModuleNotFoundError(name=MODULE)
    for loaded in ("ner_fast.serve.server", "ner_fast.dask"):
        monkeypatch.delitem(sys.modules, loaded, raising=False)
    monkeypatch.setattr(sys, "argv", ["ner-fast", *command])
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main()
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"Error: this command needs {module}: pip install 'ner-fast[{extra}]'"]
    assert not (tmp_path / "out").exists()


def test_a_run_where_a_package_goes_and_a_package_where_a_run_goes_say_which_is_which(run: Path) -> None:
    # `ner-fast info RUN` / `tag RUN` said only "manifest.json is missing", `evaluate PACKAGE` / `export PACKAGE`
    # "config.json: no such file": the folder is fine, only of the other kind, and the message says so.
    from ner_fast.package import default_package_path

    for args in (["info", str(run)], ["tag", str(run), "--text", "Paris"]):
        result = CliRunner().invoke(cli, args)
        _fails(result, 1, f"{run}: a training run, not a model package", f"ner-fast export {run}")
    package = default_package_path()
    result = CliRunner().invoke(cli, ["export", str(package), "--out", str(run.parent / "never")])
    _fails(result, 1, f"{package}: a model package, not a training run folder")
    assert len(result.output.strip().splitlines()) == 1
    assert not (run.parent / "never").exists()
    # evaluate scores a package too (tests/test_evaluate_package.py), on DATA only: a package has no split.
    result = CliRunner().invoke(cli, ["evaluate", str(package)])
    _fails(result, 2, f"{package} is a model package, which keeps no validation split: give DATA")


def test_a_folder_with_another_tools_config_json_is_not_called_a_training_run(tmp_path: Path) -> None:
    # A Hugging Face model folder has a config.json too: `tag` told its user to `ner-fast export` it.
    folder = tmp_path / "bert-base"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["BertForTokenClassification"]}', encoding="utf-8")
    result = CliRunner().invoke(cli, ["tag", str(folder), "--text", "Paris"])
    _fails(result, 1, f"{folder}: not a model package (manifest.json is missing)")
    assert "export" not in result.output
    result = CliRunner().invoke(cli, ["train", "--init", str(folder), "--out", str(tmp_path / "never")])
    assert result.exit_code == 2 and "neither a training run folder" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_a_bundled_name_where_a_run_goes_is_named_as_a_package(command: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # `ner-fast export default`, as `tag`/`info`/`serve` take `default`, said only "Directory 'default' does not
    # exist." (`evaluate` takes a package since, and needs DATA for it.)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, [command, "ensemble"])
    if command == "evaluate":
        _fails(result, 2, "ensemble is a model package, which keeps no validation split: give DATA")
    else:
        _fails(result, 2, "ensemble: no such training run folder (ensemble is a bundled model package;",
               "what `ner-fast train --out` writes")
    (tmp_path / "ensemble").mkdir()  # export: a folder of that name is the folder, as everywhere a run is named
    result = CliRunner().invoke(cli, [command, "ensemble"])
    if command == "evaluate":  # which takes packages: the name is the bundled one unless the folder is a run
        _fails(result, 2, "ensemble is a model package, which keeps no validation split: give DATA")
    else:
        _fails(result, 1, f"{Path('ensemble') / 'config.json'}: no such file")


@pytest.mark.parametrize(("args", "words"), [
    (["info", "robust"], ["no such package folder", "default, ensemble"]),
    (["tag", "--batch-size", "0", "--text", "x"], ["--batch-size", "at least 1"]),
    (["train", "--no-such-option"], ["No such option"]),
    (["nope"], ["No such command"]),
])
def test_a_usage_mistake_is_one_line_naming_the_help(args: list[str], words: list[str]) -> None:
    # Not click's usage block: one line, `Error: ...` and where the help is, exit 2 (cli.OneLineErrors).
    result = CliRunner().invoke(cli, args, prog_name="ner-fast")
    _fails(result, 2, *words)
    [line] = result.output.splitlines()
    command = " ".join(["ner-fast", *args[:1]]) if args[0] != "nope" else "ner-fast"
    assert line.startswith("Error: ") and line.endswith(f"(see '{command} --help')"), line


def test_help_version_and_a_bare_group_keep_their_exits() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--help"]).exit_code == 0 and runner.invoke(cli, ["--version"]).exit_code == 0
    bare = runner.invoke(cli, [])
    assert bare.exit_code in (0, 2) and "Commands:" in bare.output  # click 8.2+: 2, as `no_args_is_help` exits


def test_a_value_that_is_no_package_is_refused_by_one_helper(tmp_path: Path) -> None:
    # `ner-fast info/serve PACKAGE` (cli.loading.PackageArgument) and `ner-fast tag`'s positional PACKAGE
    # (cli.tag.split_package) turn `package.package_path`'s refusal into one usage line through one helper.
    import click

    from ner_fast.cli.loading import refuse_no_package
    from ner_fast.errors import PackageError
    from ner_fast.package import package_path

    with pytest.raises(PackageError) as expected:
        package_path(" ")
    with pytest.raises(click.BadParameter) as got:
        refuse_no_package(" ", param_hint="PACKAGE")
    assert got.value.message == str(expected.value) and got.value.param_hint == "PACKAGE"
    for fine in ("default", str(tmp_path)):  # a bundled name or a folder passes (its contents are checked on load)
        refuse_no_package(fine)
    for args in (["info", " "], ["tag", " ", "--text", "Paris"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        assert str(expected.value) in result.output, result.output


def test_evaluate_prints_no_mxnet_graph_lines(run: Path, gmb_file: Path) -> None:
    # `ner-fast evaluate MODEL DATA` imports MXNet without the training set-up (`training/cpu.py`), and printed MXNet's
    # "Subgraph backend MKLDNN is activated" once per bound bucket graph on stderr until the training
    # package set MXNET_SUBGRAPH_VERBOSE itself. A fresh process: an in-process import has it set already.
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MXNET_SUBGRAPH_VERBOSE"}
    done = subprocess.run([sys.executable, "-m", "ner_fast", "evaluate", str(run), str(gmb_file), "--no-progress", "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sentences"] > 0
    assert "Subgraph backend" not in done.stderr, done.stderr


def test_an_edited_file_of_a_run_is_named_and_only_what_changed_is_said(tmp_path: Path) -> None:
    # A new-user trial: an edited --dev file was blamed on DATA ("the training data (train.conll) changed"),
    # and a new word in DATA also said "other validation sentences or tags", the validation file unchanged
    # (a split's digest is over word ids, which the new vocabulary moved).
    from helpers import write_conll
    from ner_fast.corpus import read_corpus

    corpus = read_corpus(None)
    rows = [list(zip(corpus.sentence(i).words, corpus.sentence(i).tags)) for i in range(80)]
    train, dev = write_conll(tmp_path / "train.conll", rows[:60]), write_conll(tmp_path / "dev.conll", rows[60:])
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(train), "--dev", str(dev), "--out", str(out), "--epochs", "1",
                                      "--batch-size", "16", *TINY])
    assert result.exit_code == 0, result.output
    original = dev.read_text()
    dev.write_text(original.replace("\tO\n", "\tB-org\n", 1))
    result = CliRunner().invoke(cli, ["evaluate", str(out), "--no-progress"])
    _fails(result, 1, f"the validation data (--dev {dev}) changed since the run trained on it (other validation "
                      "sentences or tags: 20, the run's 20)")
    assert str(train) not in result.output
    dev.write_text(original.replace("\tO\n", "\tB-xyz\n", 1))  # a tag type DATA lacks: the tag set is both files'
    result = CliRunner().invoke(cli, ["evaluate", str(out), "--no-progress"])
    _fails(result, 1, f"the training data ({train}) or the validation data (--dev {dev}) changed since the run trained"
                      " on it (another tag set (new: B-xyz))")
    dev.write_text(original)
    train.write_text(train.read_text() + "\nZyxwvut\tB-per\nleft\tO\n")
    result = CliRunner().invoke(cli, ["evaluate", str(out), "--no-progress"])
    _fails(result, 1, f"the training data ({train}) changed since the run trained on it (other vocabularies; other "
                      "training sentences: 61, the run's 60)")
    assert "validation" not in result.output


@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_a_run_stopped_before_its_first_epoch_says_so(copy: Path, tmp_path: Path, command: str) -> None:
    # It said "best.params.npz: no such file (expected a parameter file)", which read as a damaged run.
    for name in ("best.params.npz", "last.params.npz", "last.states.npz"):
        (copy / name).unlink(missing_ok=True)
    args = [command, str(copy), *(["--out", str(tmp_path / "pkg")] if command == "export" else ["--no-progress"])]
    result = CliRunner().invoke(cli, args)
    _fails(result, 1, f"{copy}: a training run that has not finished an epoch yet, so it has no parameters: resume it "
                      f"(ner-fast train --resume {copy})")
    (copy / "state.json").unlink()
    _fails(CliRunner().invoke(cli, args), 1, "has no parameters: start it again")
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize("command", ["evaluate", "export", "init"])
def test_a_run_interrupted_before_its_first_epoch_ended_says_so(copy: Path, tmp_path: Path, command: str) -> None:
    """Ctrl-C in epoch 1 saves last.params.npz and no best: evaluate, export and --init said
    "best.params.npz: no such file (expected a parameter file)", as of a damaged run."""
    (copy / "best.params.npz").unlink()
    args = {"evaluate": ["evaluate", str(copy), "--no-progress"],
            "export": ["export", str(copy), "--out", str(tmp_path / "pkg")],
            "init": ["train", "--init", str(copy), "--out", str(tmp_path / "run"), "--epochs", "1", "--no-progress"]}[command]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (1, 2) and "Traceback" not in result.output
    assert (f"{copy}: a training run stopped before its first epoch ended, so it has no best parameters yet: resume it"
            f" (ner-fast train --resume {copy}), or read its last ones (evaluate --which last, export --checkpoint last)"
            in " ".join(result.output.split()))
    assert not (tmp_path / "pkg").exists()


def test_resuming_a_parameter_server_run_outside_a_job_says_to_resume_it_through_launch(copy: Path,
                                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """It advised "run it through `ner-fast launch ... -- train --kvstore dist_sync ...`, or use local or
    device", and a resume refuses both (its kvstore is the run's)."""
    doc = json.loads((copy / "config.json").read_text())
    doc["train"]["kvstore"] = "dist_sync"
    (copy / "config.json").write_text(json.dumps(doc))
    result = CliRunner().invoke(cli, ["train", "--resume", str(copy), "--epochs", "2"])
    _fails(result, 2, f"--kvstore: {copy} trained with --kvstore dist_sync, on a parameter-server job: resume it through"
                      f" one, `ner-fast launch --workers N --servers M -- train --resume {copy}`")
    assert "local or device" not in result.output
    # The other way round: a run of one machine resumed as a worker of a launch job.
    doc["train"]["kvstore"] = "device"
    (copy / "config.json").write_text(json.dumps(doc))
    monkeypatch.setenv("DMLC_ROLE", "worker")
    result = CliRunner().invoke(cli, ["train", "--resume", str(copy), "--epochs", "2"])
    _fails(result, 2, f"--kvstore: {copy} trained with --kvstore device, on one machine: resume it there, `ner-fast train"
                      f" --resume {copy}`, not as a worker of `ner-fast launch`")
