"""`ner-fast tag` on raw text: JSON lines of `Doc.to_dict()`, `--document`, stdin, `--text`, the pretty
view, the bundled package when no PACKAGE is given, and the mistakes that get one line and an exit code."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from ner_fast import Tagger
from ner_fast.cli import cli
from ner_fast.cli.tag import format_doc
from ner_fast.doc import Entity
from ner_fast.training.export import export_model
from helpers import make_checkpoint

LINES = [
    "Angela Merkel visited Paris on Monday. She met Emmanuel Macron.",
    "",
    "The UN met in New\tYork; prices rose 3.5% in 2009.",
    "Zyxwv straße don't \u2028 Ω",
]


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("textcli")
    make_checkpoint(folder / "model", buckets=[4, 9], with_pos=False)
    return export_model(folder / "model", folder / "pkg", quantize=None)


@pytest.fixture(scope="module")
def tagger(pkg: Path) -> Tagger:
    return Tagger.load(pkg, device="cpu")


def run(*args: str, input: str | bytes | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["tag", *args], input=input)
    return result.exit_code, result.output


def test_one_document_a_line_in_jsonl_out(pkg: Path, tagger: Tagger, tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes("\r\n".join(LINES).encode() + b"\r\n")  # CRLF line ends, U+2028 inside a line
    code, output = run(str(pkg), str(path), "--input-format", "text")
    assert code == 0, output
    lines = output.splitlines()
    assert len(lines) == len(LINES)  # blank lines are documents too: output line i answers input line i
    assert [json.loads(line) for line in lines] == [tagger(text).to_dict() for text in LINES]
    assert lines == [tagger(text).to_json() for text in LINES]
    assert sum(len(json.loads(line)["entities"]) for line in lines) > 0


def test_cr_only_line_ends_and_the_whole_file_as_one_document(pkg: Path, tagger: Tagger, tmp_path: Path) -> None:
    path = tmp_path / "mac.txt"
    path.write_bytes("\r".join(LINES).encode())
    code, output = run(str(pkg), str(path), "--input-format", "text")
    assert code == 0, output
    assert [json.loads(line)["text"] for line in output.splitlines()] == LINES
    code, output = run(str(pkg), str(path), "--input-format", "text", "--document")
    assert code == 0, output
    assert output.splitlines() == [tagger("\r".join(LINES)).to_json()]


def test_stdin_with_dash_or_no_input(pkg: Path, tagger: Tagger) -> None:
    text = "\n".join(LINES) + "\n"
    expected = [tagger(t).to_json() for t in LINES]
    for args in ([str(pkg), "-"], [str(pkg)]):
        code, output = run(*args, "--input-format", "text", input=text)
        assert code == 0, output
        assert output.splitlines() == expected


def test_text_option_prints_the_pretty_view(pkg: Path, tagger: Tagger) -> None:
    code, output = run(str(pkg), "--text", LINES[0])
    assert code == 0, output
    doc = tagger(LINES[0])
    assert doc.entities
    assert output == format_doc(doc, describe=tagger.label_map.describe)
    assert "\x1b[" not in output  # not a terminal: no colour codes
    first = doc.entities[0]
    assert f"[{first.text}]({first.label})" in output.splitlines()[0]
    assert len(output.splitlines()) == 1 + len(doc.entities) + 1  # text, one line per entity, a blank line
    code, output = run(str(pkg), "--text", LINES[0], "--output-format", "jsonl")
    assert code == 0 and output.splitlines() == [doc.to_json()]


def test_the_pretty_view_in_colour(tagger: Tagger) -> None:
    doc = tagger(LINES[0])
    coloured = format_doc(doc, colour=True)
    plain = format_doc(doc, colour=False)
    assert doc.entities and "\x1b[" in coloured and "\x1b[" not in plain
    for e in doc.entities:
        assert e.text in coloured and f"[{e.text}]({e.label})" in plain


def test_conll_output_of_raw_text(pkg: Path, tagger: Tagger) -> None:
    code, output = run(str(pkg), "--text", LINES[0], "--output-format", "conll")
    assert code == 0, output
    blocks = [b.splitlines() for b in output.strip("\n").split("\n\n")]
    doc = tagger(LINES[0])
    assert len(blocks) == len(doc.sentences) == 2
    assert [line.split("\t") for b in blocks for line in b] == [[t.text, t.tag] for t in doc.tokens]


def test_document_with_text_is_the_text(pkg: Path) -> None:
    # --text is one document already: --document changes nothing, as with --input-format text, where it
    # was accepted; alone it was refused with "give --input-format text", which --text does not need.
    plain = run(str(pkg), "--text", LINES[0])
    assert plain[0] == 0 and plain[1].strip()
    assert run(str(pkg), "--text", LINES[0], "--document") == plain
    assert run(str(pkg), "--text", LINES[0], "--input-format", "text", "--document") == plain


def test_output_file(pkg: Path, tagger: Tagger, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("\n".join(LINES) + "\n")
    out = tmp_path / "out.jsonl"
    code, output = run(str(pkg), str(tmp_path / "in.txt"), "--input-format", "text", "--output", str(out), "--workers", "2")
    assert code == 0, output
    assert out.read_text().splitlines() == [tagger(t).to_json() for t in LINES]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


def test_without_package_the_bundled_one(pkg: Path, tagger: Tagger, tmp_path: Path, move_bundled) -> None:
    move_bundled("default", tmp_path / "none")
    code, output = run("--text", LINES[0])
    assert code == 1 and "no bundled" in output and "Traceback" not in output
    move_bundled("default", pkg)
    code, output = run("--text", LINES[0])
    assert code == 0 and output == format_doc(tagger(LINES[0]), describe=tagger.label_map.describe)
    # One path that is a file: the input, with the bundled package.
    (tmp_path / "in.txt").write_text(LINES[0] + "\n")
    code, output = run(str(tmp_path / "in.txt"), "--input-format", "text")
    assert code == 0 and output.splitlines() == [tagger(LINES[0]).to_json()]


@pytest.mark.parametrize(
    "args, message",
    [
        (["{pkg}", "{file}", "--text", "x"], "INPUT or --text"),
        (["{pkg}", "--text", "Paris", "--input-format", "conll"], "--input-format conll does not apply"),
        (["{pkg}", "{file}", "--document"], "--input-format text"),
        (["{pkg}", "{file}", "--input-format", "tokens", "--output-format", "pretty"], "pretty"),
        (["{pkg}", "{file}", "{file}"], "at most two paths"),
        (["{file}", "{file}"], "not a folder"),
        (["{pkg}", "{pkg}/missing.txt"], "missing.txt does not exist"),
        (["{pkg}", "{pkg}"], "is a folder, not a file"),
        (["{pkg}", "{file}", "--resume"], "--resume applies to a cluster run: give --output-dir"),
        (["{file}", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler applies to a cluster run"),
        (["{file}", "--output-dir", "{pkg}/out", "--scheduler-timeout", "nan"], "nan is not a number"),
        # Options of a cluster run that have defaults: given without --output-dir they used to be ignored.
        (["{file}", "--scheduler-timeout", "5"], "--scheduler-timeout applies to a cluster run: give --output-dir"),
        (["{file}", "--partition-size", "5"], "--partition-size applies to a cluster run: give --output-dir"),
        (["{file}", "--text-field", "body"], "--text-field applies to a cluster run: give --output-dir"),
        (["{file}", "--output-dir", "{pkg}/out", "--scheduler-timeout", "5"], "--scheduler-timeout applies to --scheduler"),
    ],
)
def test_usage_mistakes_exit_2_with_one_line(pkg: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "in.txt").write_text("Hello world.\n")
    code, output = run(*[a.format(pkg=pkg, file=tmp_path / "in.txt") for a in args])
    assert code == 2 and message in output and "Traceback" not in output


def test_data_mistakes_exit_1_naming_file_and_line(pkg: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbad \xff byte\n")
    code, output = run(str(pkg), str(bad), "--input-format", "text")
    assert code == 1 and f"{bad}:2:" in output and "UTF-8" in output


@pytest.mark.parametrize("how", ["file", "stdin", "text", "document"])
@pytest.mark.parametrize("content", ["", " \t ", "\n\n"], ids=["empty", "blank", "two-blank-lines"])
def test_empty_and_blank_input_is_tagged_not_refused_at_every_door(pkg: Path, tagger: Tagger, tmp_path: Path, how: str,
                                                                   content: str) -> None:
    """Raw text is a document a line, blank ones too: an empty file or stdin holds no document (nothing
    written, exit 0), two blank lines are two empty documents (two records); --text, like --document, is
    one document whatever it holds, "" an empty one."""
    (tmp_path / "in.txt").write_text(content)
    args = {"file": [str(tmp_path / "in.txt")], "stdin": ["-"], "text": ["--text", content],
            "document": [str(tmp_path / "in.txt"), "--document"]}[how]
    code, output = run(str(pkg), *args, "--input-format", "text", "--output-format", "jsonl", input=content)
    assert code == 0, output
    documents = [content] if how in ("text", "document") else {"": [], " \t ": [" \t "], "\n\n": ["", ""]}[content]
    assert output.splitlines() == [tagger(d).to_json() for d in documents]
    assert all(json.loads(line)["text"] == d for line, d in zip(output.splitlines(), documents))


def test_an_empty_input_writes_nothing_in_every_output_format(pkg: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    for fmt in ("jsonl", "conll", "pretty"):
        assert run(str(pkg), str(tmp_path / "empty.txt"), "--input-format", "text", "--output-format", fmt) == (0, "")
        assert run(str(pkg), "-", "--input-format", "text", "--output-format", fmt, input=b"\xef\xbb\xbf") == (0, "")
    # Two blank lines: two empty documents, which hold no sentence (conll) and no text to show (pretty).
    (tmp_path / "blank.txt").write_bytes(b"\n\n")
    assert run(str(pkg), str(tmp_path / "blank.txt"), "--input-format", "text", "--output-format", "conll") == (0, "")
    assert run(str(pkg), str(tmp_path / "blank.txt"), "--input-format", "text", "--output-format", "pretty") == (0, "\n\n" * 2)
    assert run(str(pkg), "--text", "") == (0, "\n\n")  # pretty, --text's default: one empty document


def test_output_dash_is_stdout(pkg: Path, tagger: Tagger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text(LINES[0] + "\n")
    code, output = run(str(pkg), "in.txt", "--input-format", "text", "--output", "-")
    assert code == 0 and output.splitlines() == [tagger(LINES[0]).to_json()]
    assert not (tmp_path / "-").exists()


def test_a_pos_model_refuses_raw_text(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "model", buckets=[4], with_pos=True)
    pos_pkg = export_model(tmp_path / "model", tmp_path / "pkg", quantize=None)
    code, output = run(str(pos_pkg), "--text", "Angela Merkel visited Paris.")
    assert code == 1 and "POS" in output and "Traceback" not in output


def test_an_existing_output_is_replaced_only_with_force_and_never_the_input(pkg: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text(LINES[0] + "\n", encoding="utf-8")
    kept = tmp_path / "kept.jsonl"
    kept.write_text("mine\n", encoding="utf-8")
    code, output = run(str(pkg), str(source), "--input-format", "text", "--output", str(kept))
    assert code == 2 and "--force" in output and kept.read_text(encoding="utf-8") == "mine\n"
    code, _ = run(str(pkg), str(source), "--input-format", "text", "--output", str(kept), "--force")
    assert code == 0 and json.loads(kept.read_text(encoding="utf-8"))["text"] == LINES[0]
    code, output = run(str(pkg), str(source), "--input-format", "text", "--output", str(source), "--force")
    assert code == 2 and "is the input file" in output
    assert source.read_text(encoding="utf-8") == LINES[0] + "\n"


def test_a_wrong_package_is_refused_before_stdin_is_read(tmp_path: Path) -> None:
    not_a_package = tmp_path / "folder"
    not_a_package.mkdir()
    code, output = run(str(not_a_package), "-", "--input-format", "text", input="")
    assert code == 1 and "<stdin>" not in output and str(not_a_package) in output


def test_the_pretty_view_does_not_pass_terminal_controls_through(tagger: Tagger) -> None:
    text = "Angela Merkel \x1b[31mred\x1b[0m \x07 \u202eevil Paris"
    shown = format_doc(tagger(text), colour=False)
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "\\u001b" in shown and "\\u0007" in shown and "\\u202e" in shown


def test_the_pretty_view_shows_windows_line_ends_as_line_breaks() -> None:
    # A CRLF file read with --document: its lines, not `\u000d` at the end of each; a lone CR (which
    # would move the cursor back over the line) is still written as `\u000d`.
    text = "Angela Merkel visited Paris.\r\nShe met Emmanuel Macron.\r\n\r\nBack\rover"
    paris = Entity("geo", 22, 27, "Paris", 0.9, 3, 4)
    shown = format_doc(SimpleNamespace(text=text, entities=[paris]), colour=False)
    assert shown == ("Angela Merkel visited [Paris](geo).\nShe met Emmanuel Macron.\n\nBack\\u000dover\n"
                     "  geo      22-27    Paris  (0.90)\n\n")


def test_pipe_refuses_a_single_string(tagger: Tagger) -> None:
    with pytest.raises(TypeError, match="not one str"):
        tagger.pipe("Paris is nice")


def test_a_missing_package_folder_and_a_cuda_request_get_one_line(pkg: Path, tmp_path: Path) -> None:
    code, output = run(str(tmp_path / "nowhere"), "--text", "Paris")
    assert code != 0 and "Traceback" not in output
    result = CliRunner().invoke(cli, ["tag", str(pkg), "--text", "Paris", "--device", "cuda"])
    assert result.exit_code == 0
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        warning_lines = [line for line in result.output.splitlines() if "CUDA" in line]
        assert len(warning_lines) == 1 and warning_lines[0].startswith("Warning: ")
        assert "Tagger.load(" not in result.output  # no source line of ours


def test_labels_option_maps_the_entities_and_describes_them(tmp_path: Path) -> None:
    bundled = Tagger.load(device="cpu")  # the bundled package: real GMB labels on real text
    text = "Angela Merkel visited Paris on Monday. The Red Cross met Iraqi officials."
    doc = bundled(text)
    names = {"per": "PER", "geo": "LOC", "org": "ORG", "gpe": "MISC"}
    expected = [(names[e.label], e.start, e.end) for e in doc.entities if e.label in names]
    assert len(expected) >= 4 and any(e.label == "tim" for e in doc.entities)
    code, output = run("--text", text, "--labels", "conll", "--output-format", "jsonl")
    assert code == 0, output
    assert [(e["label"], e["start"], e["end"]) for e in json.loads(output)["entities"]] == expected  # tim dropped
    code, output = run("--text", text, "--labels", "conll")
    assert code == 0 and "  location" in output and "  person" in output
    assert "Monday" not in output.split("\n", 1)[1] and "[Paris](LOC)" in output
    # Pre-tokenized input: the same map.
    (tmp_path / "in.tokens").write_text("Angela Merkel visited Paris on Monday .\n")
    code, output = run(str(tmp_path / "in.tokens"), "--input-format", "tokens", "--output-format", "jsonl", "--labels", "conll")
    assert code == 0, output
    assert [(e["type"], e["text"]) for e in json.loads(output)["entities"]] == [("PER", "Angela Merkel"), ("LOC", "Paris")]
    # The conll columns are the package's tags, which a map does not rename: refused, not ignored.
    code, output = run(str(tmp_path / "in.tokens"), "--input-format", "tokens", "--labels", "conll")
    assert code == 2 and output.strip().splitlines()[-1].startswith(
        "Error: --labels renames entities, and --output-format conll writes the package's own tags"), output
    code, output = run(str(tmp_path / "in.tokens"), "--input-format", "tokens", "--labels", "package")
    assert code == 0 and "B-per" in output
    # A bad map file: one line naming it, exit 1.
    (tmp_path / "map.json").write_text('{"geo": 5}')
    code, output = run("--text", text, "--labels", str(tmp_path / "map.json"))
    assert code == 1 and output.strip().splitlines() == [
        f"Error: {tmp_path / 'map.json'}: label 'geo' must map to a label (a non-empty string) or null, got 5"]
