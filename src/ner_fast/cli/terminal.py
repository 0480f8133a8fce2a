"""What a command writes to the terminal beside its output: whether it draws progress bars (the one rule of
`train`, `evaluate` and `tag`), and its `--json` result (`echo_json`, every command's)."""
from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

import click
from click.core import ParameterSource


def given(name: str) -> bool:
    """Whether the option `name` of the running command was given (on the command line, or in the
    environment), not left at its default: the one test of `tag`, `evaluate`, `export` and `bars_shown`."""
    context = click.get_current_context(silent=True)
    source = None if context is None else context.get_parameter_source(name)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.PROMPT)


def bars_shown(asked: bool = True) -> bool:
    """A progress bar where `asked` (`--progress`, the default) and someone watches it: stderr is a terminal
    (bars in a redirected log, `train ... 2> log`, are lines of carriage returns). `--progress` given on the
    command line draws them anyway (`... 2>&1 | tee log`, a container without a terminal)."""
    if asked and given("progress"):
        return True
    return asked and sys.stderr is not None and sys.stderr.isatty()


def coloured(out: IO[str]) -> bool:
    """Whether output to `out` is coloured: standard output on a terminal, unless `NO_COLOR` is set to
    anything but an empty string (no-color.org)."""
    return out is sys.stdout and out.isatty() and not os.environ.get("NO_COLOR")


def echo_json(result: Any) -> None:
    """A command's `--json` result on stdout: one line of JSON (`prepare`, `train`, `evaluate`, `export`, `info`)."""
    click.echo(json.dumps(result))
