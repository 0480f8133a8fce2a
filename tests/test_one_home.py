"""Rules written once and read everywhere (issue 22): the error-to-exit mapping of every command, the
device list, and the range of each serve setting."""
from __future__ import annotations

import math

import click
import pytest
from click.testing import CliRunner

from ner_fast.cli import cli
from ner_fast.cli.errors import user_errors
from ner_fast.corpus import CorpusError
from ner_fast.devices import DEVICES
from ner_fast.errors import OptionError, PackageError
from ner_fast.serve.settings import RANGES, Settings, check_setting


@click.command()
@click.argument("kind")
def _command(kind: str) -> None:
    errors = {"option": OptionError("--x", "bad"), "corpus": CorpusError("bad line", "f.txt", 3),
              "package": PackageError("pkg: bad"), "os": FileNotFoundError("no such file"),
              "runtime": RuntimeError("CUDA out of memory"), "other": KeyError("bug")}
    with user_errors(runtime="inference failed"):
        raise errors[kind]


@pytest.mark.parametrize(("kind", "code", "line"), [
    ("option", 2, "Error: --x: bad"), ("corpus", 1, "Error: f.txt:3: bad line"), ("package", 1, "Error: pkg: bad"),
    ("os", 1, "Error: no such file"), ("runtime", 1, "Error: inference failed: CUDA out of memory"),
])
def test_user_errors_give_one_line_and_an_exit_code(kind: str, code: int, line: str) -> None:
    result = CliRunner().invoke(_command, [kind])
    assert result.exit_code == code and line in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output and lines[-1] == line and len(lines) <= 3  # usage lines before it for 2


def test_user_errors_let_a_bug_through() -> None:
    result = CliRunner().invoke(_command, ["other"])
    assert isinstance(result.exception, KeyError)
    with pytest.raises(RuntimeError), user_errors():  # without `runtime`, a RuntimeError is not the user's
        raise RuntimeError("x")


def test_every_device_option_offers_the_one_device_list() -> None:
    for name in ("tag", "serve"):
        choices = {p.name: p.type for p in cli.commands[name].params}["device"]
        assert isinstance(choices, click.Choice) and tuple(choices.choices) == DEVICES


def test_serve_settings_have_one_range_each() -> None:
    """Every serve option that is a setting is checked by `check_setting`, with the same message as the batcher's."""
    assert Settings().threads >= RANGES["threads"][0]
    for name, (low, high) in RANGES.items():
        check_setting(name, low)
        for bad in (low - 1, math.nan) + ((high * 2,) if high != math.inf else ()):
            with pytest.raises(ValueError, match=rf"^{name} must be"):
                check_setting(name, bad)
        option = "--" + name.replace("_", "-")
        result = CliRunner().invoke(cli, ["serve", "--port", "0", option, str(low - 1)])
        assert result.exit_code == 2 and f"{name} must be" in result.output and option in result.output, result.output
