"""Every `--option` of every command comes from the option table (`ner_fast.option_table`, issue 22): its
flag, help and default are its row's, and nothing else writes a `click.option`."""
from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import ner_fast
from ner_fast.cli import cli
from ner_fast.option import Option
from ner_fast.option_table import ROWS, TABLE, command_options, command_rows
from ner_fast.training.bundle import build_command

#: Every command with options: the `ner-fast` group's, and `python -m ner_fast.training.bundle`.
COMMANDS: dict[str, click.Command] = {**cli.commands, "bundle": build_command}
#: click's own options, not ner-fast's: the group's --version (--help is not among `params`).
CLICKS_OWN = {"version"}
#: click's "no default" (8.3 and later; before, None).
UNSET = getattr(click.core, "UNSET", None)


def _differences(name: str, command: click.Command) -> list[str]:
    """What differs between `command`'s options and the rows of `name` in the table (empty: they agree)."""
    found = []
    offered = [p for p in command.params if isinstance(p, click.Option)]
    for param in offered:
        opt = ROWS.get((name, param.name or ""))
        if opt is None:
            found.append(f"{name} {' '.join(param.opts)}: no row in the table")
            continue
        training = opt.feeds is not None
        if opt.cli_flag not in param.opts:
            found.append(f"{name} {' '.join(param.opts)}: the row's flag is {opt.cli_flag}")
        if (param.help or "") != (opt.help_text() if training else opt.help):
            found.append(f"{name} {opt.cli_flag}: help {param.help!r} is not the row's")
        default = None if training else opt.default
        if opt.required != param.required:
            found.append(f"{name} {opt.cli_flag}: required {param.required}, the row's {opt.required}")
        elif opt.required:
            if param.default not in (None, UNSET):  # a required option has no default (click's None or UNSET)
                found.append(f"{name} {opt.cli_flag}: required, yet a default {param.default!r}")
        elif param.default != default and not (opt.multiple and param.default in (None, ())):
            found.append(f"{name} {opt.cli_flag}: default {param.default!r}, the row's {default!r}")
        if opt.kind == "choice" and tuple(param.type.choices) != opt.choices:  # type: ignore[attr-defined]
            found.append(f"{name} {opt.cli_flag}: choices {param.type} are not the row's")
    missing = {o.name for o in command_rows(name)} - {p.name for p in offered}
    found += [f"{name} --{m}: a row that the command does not offer" for m in sorted(missing)]
    return found


def test_the_walk_finds_every_command_and_its_options() -> None:
    assert {"prepare", "train", "evaluate", "export", "tag", "launch", "serve", "info", "bundle"} <= set(COMMANDS)
    options = [p for c in COMMANDS.values() for p in c.params if isinstance(p, click.Option)]
    assert len(options) > 120  # the 56 training options twice (prepare: the data ones), and every other command's
    assert all(command_rows(name) for name in COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_of_a_command_is_its_row(name: str) -> None:
    command = COMMANDS[name]
    assert [p for p in command.params if isinstance(p, click.Option)]
    assert _differences(name, command) == []


def test_the_group_has_no_option_of_its_own() -> None:
    assert {p.name for p in cli.params if isinstance(p, click.Option)} <= CLICKS_OWN


def test_every_row_is_offered_by_the_commands_it_names() -> None:
    named = {c for o in TABLE for c in o.commands}
    assert named == set(COMMANDS)
    for (command, name), opt in ROWS.items():
        params = {p.name: p for p in COMMANDS[command].params}
        assert name in params and opt.cli_flag in params[name].opts, (command, name)


def test_a_hand_written_option_is_found() -> None:
    """The check above can fail: an option written beside the table's, or differing from its row, is reported."""

    @click.command()
    @click.option("--extra", default=3, help="Written by hand.")
    @command_options("info")
    def hand(extra: int, as_json: bool) -> None:
        """A command with one option the table does not know."""

    assert _differences("info", hand) == ["info --extra: no row in the table"]
    other = Option("as_json", "flag", False, "Another help.", flag="--json", commands=("info",))

    @click.command()
    @other.click_option()
    def changed(as_json: bool) -> None:
        """A command whose --json has another help than its row."""

    assert len(_differences("info", changed)) == 1 and "help" in _differences("info", changed)[0]


REQUIRED = sorted((c, o.cli_flag) for o in TABLE if o.required for c in o.commands)


def test_the_table_has_required_options() -> None:
    assert ("prepare", "--out") in REQUIRED and ("bundle", "--command") in REQUIRED and ("bundle", "--out") in REQUIRED


@pytest.mark.parametrize(("name", "flag"), REQUIRED)
def test_a_required_option_left_out_is_a_usage_error(name: str, flag: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """One line and exit 2 before anything is read (click 8.3 let an option whose default is None through:
    `ner-fast prepare` without --out went on and ended in a TypeError traceback)."""
    monkeypatch.chdir(tmp_path)
    others = [arg for c, other in REQUIRED if c == name and other != flag for arg in (other, "x")]
    result = CliRunner().invoke(COMMANDS[name], others)
    assert result.exit_code == 2, result.output
    assert f"Missing option '{flag}'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert list(tmp_path.iterdir()) == []


def test_no_click_option_is_written_outside_the_option_module() -> None:
    package = Path(ner_fast.__file__).parent
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 30
    written = [str(p.relative_to(package)) for p in sources
               if p.name != "option.py" and re.search(r"click\.option\(|click\.version_option\(", p.read_text("utf-8"))]
    assert written == ["cli/__init__.py"]  # the group's --version alone (click's own)


BIG = "9" * 400  # an integer past float's range (1.8e308)


def test_an_integer_past_floats_range_is_checked_whole() -> None:
    """An int option takes any integer whole, and refuses one out of its range in one line (the check's
    float() of it overflowed: a traceback for `--seed 9...9`, `--port 9...9`)."""
    from ner_fast.errors import OptionError
    from ner_fast.option_table import BY_NAME, row

    assert BY_NAME["epochs"].check(int(BIG)) == int(BIG)
    # A bound past float's precision is written whole too (--seed's 2**32 - 1 was "4.29497e+09").
    with pytest.raises(OptionError, match=f"--seed: must be at least 0 and at most {2**32 - 1}, got {BIG}$"):
        BY_NAME["seed"].check(int(BIG))
    assert row("tag", "batch_size").check(int(BIG)) == int(BIG)
    with pytest.raises(OptionError, match=f"must be at least 0 and at most 65535, got {BIG}$"):
        row("serve", "port").check(int(BIG))
    with pytest.raises(OptionError, match="^--lr: "):
        BY_NAME["learning_rate"].check(int(BIG))
    for args in (["serve", "--port", BIG], ["train", "--directions", BIG], ["launch", "--workers", "-" + BIG]):
        result = CliRunner().invoke(COMMANDS[args[0]], args[1:])
        assert result.exit_code == 2 and args[1] in result.output, result.output


WRITTEN = [(name, row.cli_flag) for name in COMMANDS for row in command_rows(name) if row.kind in ("folder", "output")]


def test_the_table_has_paths_to_write() -> None:
    assert ("tag", "--output") in WRITTEN and ("prepare", "--out") in WRITTEN


@pytest.mark.parametrize(("name", "flag"), WRITTEN)
def test_an_empty_path_to_write_is_refused(name: str, flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Path("")` is the current folder: `tag --output ""` said ". exists: add --force" (and with --force
    tried to replace it). An empty name is a usage error, and nothing is written."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(COMMANDS[name], [flag, ""])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{flag}': must not be empty" in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_recorded_build_command_must_not_be_empty(tmp_path: Path) -> None:
    """`bundle --command` is what model.json records as the command that built the package: an empty one
    records nothing, so it is refused (one line, exit 2) before any work."""
    result = CliRunner().invoke(COMMANDS["bundle"], [str(tmp_path), "--command", " ", "--out", str(tmp_path / "pkg")])
    assert result.exit_code == 2, result.output
    assert "--command" in result.output and "must not be empty" in result.output
    assert list(tmp_path.iterdir()) == []
