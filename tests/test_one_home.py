"""Rules written once and read everywhere (issue 22): the error-to-exit mapping of every command, the
device list, and the range of each serve setting (its row of the option table)."""
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
from ner_fast.option_table import command_rows
from ner_fast.serve.settings import Settings, Timeouts, check_setting


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
    """Every serve option that is a setting has one range, its table row: `check_setting` (the `Batcher`'s and
    `Settings`' check) applies it, and the command line refuses the same values, naming the option."""
    settings = {f for f in Settings.__dataclass_fields__} | {f"{f}_timeout" for f in Timeouts.__dataclass_fields__}
    ranged = [o for o in command_rows("serve") if o.kind in ("int", "float") and o.low is not None]
    assert {"threads", "max_wait_ms", "max_batch_tokens", "headers_timeout"} <= {o.name for o in ranged}
    assert Settings().threads >= ranged[0].low
    checked = 0
    for opt in ranged:
        if opt.name not in settings and opt.name not in ("max_body_bytes", "max_texts", "max_text_chars"):
            continue  # host/port: not a setting of the server's code
        lowest = opt.low + (1e-3 if opt.low_open else 0)
        check_setting(opt.name, lowest)
        too_high = (opt.high * 2,) if opt.high is not None else ()
        for bad in (opt.low - 1, math.nan, *too_high):
            with pytest.raises(ValueError, match=rf"^{opt.name} (must be|nan is not a number)"):
                check_setting(opt.name, bad)
        result = CliRunner().invoke(cli, ["serve", "--port", "0", opt.cli_flag, f"{opt.low - 1:g}"])
        assert result.exit_code == 2 and opt.cli_flag in result.output, result.output
        result = CliRunner().invoke(cli, ["serve", "--port", "0", opt.cli_flag, "nan"])
        assert result.exit_code == 2 and opt.cli_flag in result.output, result.output
        checked += 1
    assert checked >= 12


def test_a_timeout_is_kept_as_the_number_its_check_made() -> None:
    """`Timeouts` keeps what its check returns: "5" (which the check, like every float option's, reads as 5.0)
    was kept as the string, and the server would have handed uvicorn a str; the old check refused it."""
    timeouts = Timeouts(headers="5", keep_alive=2)  # type: ignore[arg-type]
    assert timeouts.headers == 5.0 and type(timeouts.headers) is float and type(timeouts.keep_alive) is float
    assert Settings(timeouts=timeouts).timeouts.headers == 5.0
    with pytest.raises(ValueError, match="^headers_timeout "):
        Timeouts(headers="soon")  # type: ignore[arg-type]
