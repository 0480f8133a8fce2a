"""`ner-fast export` and `ner-fast tag`: formats in and out, stdin, errors with file and line, atomic output."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ner_fast import Tagger
from ner_fast.cli import cli
from helpers import POS, SENTENCES, TAGS, make_checkpoint


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    make_checkpoint(folder / "pos")
    make_checkpoint(folder / "nopos", with_pos=False)
    runner = CliRunner()
    out = {}
    # One package with export's default quantization (int8), one with float32 weights.
    # The scheme as the option names it and info says it ("none"; export --json said null).
    for name, options, quantization in (("pos", [], "int8"), ("nopos", ["--quantize", "none"], "none")):
        result = runner.invoke(
            cli, ["export", str(folder / name), "--out", str(folder / f"pkg_{name}"), "--buckets", "3,5", "--json", *options]
        )
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        assert summary["buckets"] == [3, 5] and summary["quantization"] == quantization
        out[name] = Path(summary["package"])
    return out


def conll_text() -> str:
    return "".join(
        "".join(f"{w} {p} {t}\n" for w, p, t in zip(ws, ps, ts)) + "\n" for ws, ps, ts in zip(SENTENCES, POS, TAGS)
    )


def read_conll_output(text: str) -> list[list[tuple[str, str]]]:
    blocks = [b for b in text.split("\n\n") if b.strip()]
    return [[tuple(line.split("\t")) for line in b.strip("\n").split("\n")] for b in blocks]


def test_conll_in_conll_out_equals_the_library(packages: dict, tmp_path: Path) -> None:
    (tmp_path / "in.conll").write_text(conll_text())
    out = tmp_path / "out.conll"
    result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), str(tmp_path / "in.conll"), "--output", str(out), "--threads", "1", "--workers", "2"])
    assert result.exit_code == 0, result.output
    expected = Tagger.load(packages["pos"], device="cpu").tag_batch(SENTENCES, POS)
    got = read_conll_output(out.read_text())
    assert [[w for w, _ in s] for s in got] == SENTENCES
    assert [[t for _, t in s] for s in got] == expected


def test_gmb_csv_in_jsonl_out(packages: dict, tmp_path: Path) -> None:
    rows = ["Sentence #,Word,POS,Tag"]
    for i, (ws, ps, ts) in enumerate(zip(SENTENCES, POS, TAGS), 1):
        rows += [f"{f'Sentence: {i}' if j == 0 else ''},{w},{p},{t}" for j, (w, p, t) in enumerate(zip(ws, ps, ts))]
    (tmp_path / "in.csv").write_text("\r\n".join(rows) + "\r\n")
    result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), str(tmp_path / "in.csv"), "--output-format", "jsonl"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    tagger = Tagger.load(packages["pos"], device="cpu")
    assert [d["tokens"] for d in lines] == SENTENCES
    for d, ws, ps in zip(lines, SENTENCES, POS):
        assert d["tags"] == tagger.tag(ws, ps)
        expected = tagger.entities(ws, ps)
        assert [(e["type"], e["start"], e["end"], e["text"]) for e in d["entities"]] == [(e.label, e.token_start, e.token_end, e.text) for e in expected]


def test_a_jsonl_line_is_one_sentence_whatever_its_tokens_hold(packages: dict, tmp_path: Path) -> None:
    # A CoNLL token may hold U+2028 (the reader splits at spaces and tabs only): the pre-tokenized lines were
    # json.dumps's, which writes it raw, and `str.splitlines` (older JavaScript too) cut the record in three.
    words = [["Merkel\u2028x", "visited", "Paris\u0085"], ["Rome\u2029", "."]]
    path = tmp_path / "in.conll"
    path.write_text("\n\n".join("\n".join(f"{w}\tNN\tO" for w in ws) for ws in words) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), str(path), "--output-format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["tokens"] for line in result.output.splitlines()] == words


def test_tokens_from_stdin(packages: dict) -> None:
    text = "Angela Merkel visited Paris .\n\n  The UN met in New  York .\n"
    result = CliRunner().invoke(cli, ["tag", str(packages["nopos"]), "-", "--input-format", "tokens"], input=text)
    assert result.exit_code == 0, result.output
    got = read_conll_output(result.output)
    sentences = [["Angela", "Merkel", "visited", "Paris", "."], ["The", "UN", "met", "in", "New", "York", "."]]
    assert [[w for w, _ in s] for s in got] == sentences
    assert [[t for _, t in s] for s in got] == Tagger.load(packages["nopos"], device="cpu").tag_batch(sentences)


def test_a_byte_order_mark_is_not_part_of_the_first_token(packages: dict, tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("Angela Merkel visited Paris .\n".encode("utf-8-sig"))
    result = CliRunner().invoke(cli, ["tag", str(packages["nopos"]), str(path), "--input-format", "tokens"])
    assert result.exit_code == 0, result.output
    assert read_conll_output(result.output)[0][0][0] == "Angela"


def test_malformed_stdin_names_stdin_and_line(packages: dict) -> None:
    text = "Paris NNP B-geo\nis VBZ O\n\nNice JJ\n"
    result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), "-", "--input-format", "conll"], input=text)
    assert result.exit_code != 0 and "<stdin>:4: expected 3 columns" in result.output


def test_a_pos_model_refuses_input_without_pos(packages: dict, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("Angela Merkel visited Paris .\n")
    result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), str(tmp_path / "in.txt")])
    assert result.exit_code != 0 and "this model reads POS tags, which the input does not have: give CoNLL columns" in result.output
    # Raw text: the remedy is the command line's, not the Python API's ("tagger.tag / tagger.tag_batch with pos=").
    for raw in (["--text", "Angela Merkel visited Paris."], [str(tmp_path / "in.txt"), "--input-format", "text"]):
        result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), *raw])
        assert result.exit_code == 1 and "this model reads POS tags, which raw text does not have" in result.output
        assert "(CoNLL columns, or a GMB CSV with POS)" in result.output and "pos=" not in result.output


def test_malformed_input_names_file_and_line_and_writes_nothing(packages: dict, tmp_path: Path) -> None:
    bad = tmp_path / "bad.conll"
    bad.write_text("Paris NNP B-geo\nis VBZ O\n\nNice JJ\n")
    out = tmp_path / "out.conll"
    out.write_text("previous results\n")
    result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), str(bad), "--input-format", "conll", "--output", str(out), "--force"])
    assert result.exit_code != 0
    assert f"{bad}:4:" in result.output
    assert out.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.conll", "out.conll"]  # no temporary file left

    (tmp_path / "latin1.txt").write_bytes("Paris\nstra\xdfe ok\n".encode("latin-1"))
    result = CliRunner().invoke(cli, ["tag", str(packages["nopos"]), str(tmp_path / "latin1.txt"), "--input-format", "tokens"])
    assert result.exit_code != 0 and "latin1.txt:2:" in result.output


@pytest.mark.parametrize("fmt", ["auto", "conll", "gmb", "tokens"])
@pytest.mark.parametrize("how", ["file", "stdin"])
def test_an_empty_input_tags_to_an_empty_output(packages: dict, tmp_path: Path, fmt: str, how: str) -> None:
    """Nothing to tag is no error: nothing written, exit 0 (blank lines too: pre-tokenized input skips them);
    a POS model does not ask an input without sentences for POS."""
    for content in (b"", b"\xef\xbb\xbf", b"\n \r\n\t\n"):
        (tmp_path / "in.txt").write_bytes(content)
        for package in ("nopos", "pos"):
            for out_format in ("conll", "jsonl"):
                args = [str(tmp_path / "in.txt")] if how == "file" else ["-"]
                result = CliRunner().invoke(cli, ["tag", str(packages[package]), *args, "--input-format", fmt,
                                                  "--output-format", out_format], input=content)
                assert (result.exit_code, result.output) == (0, ""), (content, package, out_format)
    out = tmp_path / "out.conll"  # --output: the file is made, empty
    result = CliRunner().invoke(cli, ["tag", str(packages["nopos"]), str(tmp_path / "in.txt"), "--input-format", fmt,
                                      "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == b""


def test_an_empty_corpus_is_still_refused_for_training_and_scoring(tmp_path: Path) -> None:
    """What tagging reads as nothing to tag, prepare, train and evaluate refuse: nothing to learn from or score."""
    empty = tmp_path / "empty.conll"
    empty.write_bytes(b"\n\n")
    make_checkpoint(tmp_path / "run", with_pos=False)
    for args in (["prepare", str(empty), "--out", str(tmp_path / "prepared")],
                 ["train", str(empty), "--out", str(tmp_path / "trained")],
                 ["evaluate", str(tmp_path / "run"), str(empty), "--no-progress"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.strip().splitlines() == [f"Error: {empty}:1: empty file"], args
    assert not (tmp_path / "prepared").exists() and not (tmp_path / "trained").exists()


def test_a_one_sentence_conll_file_is_read_as_conll(packages: dict, tmp_path: Path) -> None:
    # No blank line at all: the old sniffer read it as `tokens` and tagged "Angela NNP B-per" as a sentence.
    path = tmp_path / "one.txt"
    path.write_text("".join(f"{w} {p} {t}\n" for w, p, t in zip(SENTENCES[0], POS[0], TAGS[0])))
    result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), str(path)])
    assert result.exit_code == 0, result.output
    got = read_conll_output(result.output)
    assert [[w for w, _ in s] for s in got] == [SENTENCES[0]]
    assert [[t for _, t in s] for s in got] == [Tagger.load(packages["pos"], device="cpu").tag(SENTENCES[0], POS[0])]


def test_two_word_lines_are_tokens_not_conll(packages: dict) -> None:
    # The old sniffer read this as CoNLL (word, tag) and tagged only "Hello" and "Good".
    result = CliRunner().invoke(cli, ["tag", str(packages["nopos"]), "-"], input="Hello world\n\nGood morning\n")
    assert result.exit_code == 0, result.output
    assert [[w for w, _ in s] for s in read_conll_output(result.output)] == [["Hello", "world"], ["Good", "morning"]]


def test_ambiguous_input_names_input_format(packages: dict, tmp_path: Path) -> None:
    path = tmp_path / "raw.txt"
    path.write_text("Hello, world.\nGood morning.\n")
    result = CliRunner().invoke(cli, ["tag", str(packages["nopos"]), str(path)])
    assert result.exit_code == 1
    assert f"{path}:1:" in result.output and "--input-format" in result.output and "Traceback" not in result.output
    # The explicit flag reads it anyway.
    result = CliRunner().invoke(cli, ["tag", str(packages["nopos"]), str(path), "--input-format", "tokens"])
    assert result.exit_code == 0, result.output
    assert [[w for w, _ in s] for s in read_conll_output(result.output)] == [["Hello,", "world."], ["Good", "morning."]]


def test_a_cr_only_file_is_read_line_by_line(packages: dict, tmp_path: Path) -> None:
    # Old Mac line ends: the old readers saw one line and tagged only its first token.
    path = tmp_path / "mac.conll"
    path.write_bytes(conll_text().replace("\n", "\r").encode())
    result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), str(path)])
    assert result.exit_code == 0, result.output
    assert [[w for w, _ in s] for s in read_conll_output(result.output)] == SENTENCES


def test_a_tab_inside_a_gmb_word_is_refused_for_conll_output(packages: dict, tmp_path: Path) -> None:
    path = tmp_path / "tab.csv"
    path.write_text("Sentence #,Word,POS,Tag\nSentence: 1,Paris,NNP,B-geo\n,New\tYork,NNP,B-geo\n")
    out = tmp_path / "out.conll"
    result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), str(path), "--output", str(out)])
    assert result.exit_code == 1 and f"{path}:3:" in result.output and "--output-format jsonl" in result.output
    assert not out.exists()
    result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), str(path), "--output-format", "jsonl"])
    assert result.exit_code == 0 and json.loads(result.output)["tokens"] == ["Paris", "New\tYork"]


def test_a_closed_pipe_ends_quietly(packages: dict, tmp_path: Path) -> None:
    import subprocess
    import sys

    # Enough output to fill the pipe's buffer many times over.
    (tmp_path / "in.tokens").write_text("Angela Merkel visited Paris on Monday .\n" * 20000)
    command = [sys.executable, "-c", "from ner_fast.cli import main; main()", "tag", str(packages["nopos"]), str(tmp_path / "in.tokens"), "--batch-size", "256"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline().startswith(b"Angela\t")
        process.stdout.close()  # what `| head -1` does
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err.decode()
    assert b"Error" not in err and b"Traceback" not in err


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["info", "default"], ["tag", "--help"]])
def test_a_pipe_closed_before_anything_is_read_ends_any_command_quietly(args: list[str]) -> None:
    # `ner-fast --help | head -0`: the group's own --help and --version print before any command runs.
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "from ner_fast.cli import main; main()", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        process.stdout.close()
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err.decode()
    assert err == b""


@pytest.mark.parametrize(
    "model, options, exit_code, names",
    [
        ("run", ["--buckets", "abc"], 2, ["--buckets", "abc"]),
        ("run", ["--buckets", "0"], 2, ["--buckets", "0"]),
        ("run", ["--buckets", "4,-1"], 2, ["--buckets", "4,-1"]),
        ("run", ["--buckets", ","], 2, ["--buckets"]),
        ("run", ["--quantize", "int4"], 2, ["--quantize", "int4"]),
        ("run", ["--checkpoint", "middle"], 2, ["--checkpoint", "middle"]),
        ("run", ["--checkpoint", "last"], 1, ["last.params.npz"]),  # make_checkpoint writes only best
        ("run", ["--out", "{file}"], 2, ["--out"]),  # an existing file is no package folder
        ("empty", [], 1, ["config.json"]),  # a folder that holds no training run
        ("missing", [], 2, ["MODEL"]),
    ],
)
def test_export_refuses_bad_options(tmp_path: Path, model: str, options: list[str], exit_code: int, names: list[str]) -> None:
    make_checkpoint(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("not a folder")
    options = [o.format(file=tmp_path / "file") for o in options]
    if "--out" not in options:
        options += ["--out", str(tmp_path / "pkg")]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(cli, ["export", str(tmp_path / model), *options])
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # an exit code, no traceback
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and all(name in errors[0] for name in names), result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written
    assert (tmp_path / "file").read_text() == "not a folder"


def test_a_zipped_corpus(packages: dict, tmp_path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp_path / "in.zip", "w") as archive:
        archive.writestr("in.conll", conll_text())
    result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), str(tmp_path / "in.zip")])
    assert result.exit_code == 0, result.output
    assert [[w for w, _ in s] for s in read_conll_output(result.output)] == SENTENCES


def test_the_gmb_quirks_survive_tagging(packages: dict, gmb_file: Path) -> None:
    result = CliRunner().invoke(cli, ["tag", str(packages["pos"]), str(gmb_file), "--output-format", "jsonl"])
    assert result.exit_code == 0, result.output
    tokens = [json.loads(line)["tokens"] for line in result.output.splitlines()]
    assert tokens == [["Thousands", "of", "London", "10,000", '"', "None"], ["5\xa0storm", "It\u2019s", "NA", "null"]]


def test_the_pretty_view_is_coloured_on_a_terminal_unless_no_color_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from ner_fast.cli.terminal import coloured

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert coloured(terminal) and not coloured(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "")  # empty: as if unset (no-color.org)
    assert coloured(terminal)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not coloured(terminal)
