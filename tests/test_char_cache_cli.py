"""`ner-fast tag --char-cache ROWS` and `ner-fast serve --char-cache ROWS`: one option-table row, its default
`Tagger.load`'s, handed down to the tagger (its cache's capacity); the tags do not depend on it; a bad value
is one line and exit 2."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import ner_fast.cli.loading as loading
from ner_fast.char_cache import DEFAULT_CHAR_CACHE
from ner_fast.cli import cli
from ner_fast.option_table import row

DOCUMENTS = [
    "Angela Merkel visited Paris on Monday with officials from the European Union.",
    "The United Nations said on Tuesday that Merkel and the French president met in Paris.",
    "Officials in Baghdad said the attack killed 12 people near the Iraqi capital on Monday.",
    "Paris and Berlin called for talks at the United Nations in New York.",
]


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The taggers the commands load, in order (`cli.loading.load_tagger`, which both commands call)."""
    taggers: list[Any] = []
    real = loading.load_tagger

    def record(*args: Any, **kwargs: Any) -> Any:
        taggers.append(real(*args, **kwargs))
        return taggers[-1]

    monkeypatch.setattr(loading, "load_tagger", record)
    return taggers


def _tag(tmp_path: Path, package: str, *options: str) -> str:
    source = tmp_path / "docs.txt"
    source.write_text("\n".join(DOCUMENTS) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["tag", package, str(source), "--input-format", "text", "--output-format",
                                      "jsonl", "--batch-size", "1", *options])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_row_is_one_for_both_commands_with_the_taggers_default() -> None:
    assert row("tag", "char_cache") is row("serve", "char_cache")
    assert row("tag", "char_cache").default == DEFAULT_CHAR_CACHE
    import inspect

    from ner_fast.tagger import Tagger

    assert inspect.signature(Tagger.load).parameters["char_cache"].default == row("tag", "char_cache").default


def test_tag_hands_the_capacity_to_the_tagger_and_the_tags_do_not_change(loaded: list[Any], tmp_path: Path) -> None:
    outputs = {rows: _tag(tmp_path, "default", "--char-cache", str(rows)) for rows in (0, 5)}
    outputs[None] = _tag(tmp_path, "default")  # the default
    caches = [t._chars for t in loaded]
    assert all(c is not None for c in caches)  # the bundled default has a character graph (format 2)
    assert [c.capacity for c in caches] == [0, 5, DEFAULT_CHAR_CACHE]
    # 0 keeps nothing; 5 is full (the documents have far more word forms); the default keeps every one.
    assert [len(c) for c in caches[:2]] == [0, 5] and len(caches[2]) > 5
    docs = [json.loads(line) for line in outputs[None].splitlines()]
    assert len(docs) == len(DOCUMENTS) and any(d["entities"] for d in docs)
    assert outputs[0] == outputs[5] == outputs[None]


def test_a_package_without_a_character_graph_ignores_it(loaded: list[Any], tmp_path: Path) -> None:
    with_option = _tag(tmp_path, "ensemble", "--char-cache", "3")
    assert loaded[-1]._chars is None  # format 1: the graphs compute the features
    assert with_option == _tag(tmp_path, "ensemble") and with_option.strip()


def test_serve_hands_the_capacity_to_the_tagger(loaded: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import ner_fast.serve.server as server

    served: list[Any] = []
    monkeypatch.setattr(server, "serve", lambda tagger, *a, **k: served.append(tagger))
    for args, expected in ((["--char-cache", "7"], 7), (["--char-cache", "0"], 0), ([], DEFAULT_CHAR_CACHE)):
        result = CliRunner().invoke(cli, ["serve", "default", "--port", "0", *args])
        assert result.exit_code == 0, result.output
        assert served[-1] is loaded[-1] and loaded[-1]._chars.capacity == expected
    assert len(served) == 3


@pytest.mark.parametrize("command", ["tag", "serve"])
@pytest.mark.parametrize("value", ["-1", "1.5", "many", "nan"])
def test_a_bad_value_is_one_line_and_exit_2(command: str, value: str, loaded: list[Any]) -> None:
    args = ["--text", "Paris"] if command == "tag" else ["--port", "0"]
    result = CliRunner().invoke(cli, [command, "default", *args, "--char-cache", value])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "--char-cache" in lines[0], result.output
    assert loaded == []  # refused before any package is opened


def test_a_cluster_run_refuses_it(tmp_path: Path) -> None:
    source = tmp_path / "docs.txt"
    source.write_text(DOCUMENTS[0] + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["tag", str(source), "--output-dir", str(tmp_path / "out"), "--char-cache", "9"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--char-cache" in lines[0] and "--output-dir" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["tag", "serve"])
@pytest.mark.parametrize("value", [str(10**14), str(10**21)])
def test_a_cache_too_large_to_allocate_is_one_line(command: str, value: str) -> None:
    """Rows that no memory holds (the table is preallocated): numpy's MemoryError was a traceback, and a
    value past numpy's largest dimension blamed the package's chars.onnx ('Maximum allowed dimension exceeded')."""
    args = ["--text", "Paris"] if command == "tag" else ["--port", "0"]
    result = CliRunner().invoke(cli, [command, "default", *args, "--char-cache", value])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: char_cache: ") and "chars.onnx" not in lines[0], result.output
    assert f"{int(value):,} rows" in lines[0] and "give fewer rows" in lines[0]
