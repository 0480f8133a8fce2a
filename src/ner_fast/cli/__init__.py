"""The `ner-fast` command line: a click group with one module per command.

Each command module parses options and calls a plain, tested function elsewhere in the package;
heavy imports (mxnet, onnx) happen inside the commands so `ner-fast --help` stays fast.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Any, NoReturn

import click

from ner_fast import __version__
from ner_fast.cli.evaluate import evaluate_command
from ner_fast.cli.export import export_command
from ner_fast.cli.info import info_command
from ner_fast.cli.launch import launch_command
from ner_fast.cli.prepare import prepare_command
from ner_fast.cli.serve import serve_command
from ner_fast.cli.tag import tag_command
from ner_fast.cli.train import train_command
from ner_fast.errors import missing_extra
from ner_fast.signals import Terminated, raise_on_sigterm, stop_behind


# click 8.2 and later raise it for a group called with nothing (8.1 shows the help and exits 0 itself).
_NO_ARGS_IS_HELP: type[Exception] | tuple[()] = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _closed_pipe() -> NoReturn:
    """The reader of the output left: not an error, and what was written stands. Point stdout and stderr at
    devnull so that the interpreter's final flush does not raise again, and stop quietly (exit 0)."""
    null = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        os.dup2(null, stream.fileno())
    sys.exit(0)


class OneLineErrors(click.Group):
    """The group, with a usage mistake reported in one line: `Error: MESSAGE (see 'ner-fast CMD --help')` on
    stderr, exit 2, instead of click's usage block, hint and blank line before it (the house rule: one line
    and an exit code). Everything else is click's own handling."""

    # A closed output pipe (`ner-fast tag ... | head`) ends any command quietly, exit 0 (click's own handling
    # exits 1): in `make_context` for the group's --help and --version, in `invoke` for the commands.
    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            _closed_pipe()

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _closed_pipe()

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _NO_ARGS_IS_HELP as err:  # `ner-fast` alone: the help, as click shows it
            err.show()
            sys.exit(err.exit_code)
        except click.UsageError as err:
            see = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
            click.echo(f"Error: {err.format_message()}{see}", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            err.show()
            sys.exit(err.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        # A command's return value is not an exit status (click's standalone mode ends with 0 too); an
        # explicit exit (--help, --version, ctx.exit(n)) comes back as its code.
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ner-fast")
def cli() -> None:
    """ner-fast: train a BiLSTM-CNN named-entity tagger once, embed it everywhere."""


# Each command and the line `ner-fast --help` lists it with (click cut the docstrings' long first
# sentences mid-phrase: "Print the model card of the package PACKAGE (a folder, or a...").
COMMANDS: dict[str, tuple[click.Command, str]] = {
    "prepare": (prepare_command, "Split and index a tagged corpus once, for several training runs."),
    "train": (train_command, "Train the BiLSTM-CNN tagger on a tagged corpus."),
    "evaluate": (evaluate_command, "Score a training run or a model package on a tagged corpus."),
    "export": (export_command, "Export a training run as an ONNX model package."),
    "tag": (tag_command, "Tag text or files with a model package."),
    "launch": (launch_command, "Train across machines on MXNet parameter servers."),
    "serve": (serve_command, "Serve a model package over HTTP."),
    "info": (info_command, "Print a model package's card: labels, scores, size, provenance."),
}
for _name, (_command, _short) in COMMANDS.items():
    _command.short_help = _short
    cli.add_command(_command, _name)


def main() -> None:
    """Console-script entry point.

    SIGTERM unwinds the command as Ctrl-C does (the default action would end the process on the spot):
    `finally` blocks and context managers run, so a file being written leaves no temporary behind
    (`atomic_open`), a launcher stops its children, a Dask cluster closes. Then one line and exit
    143 (128 + SIGTERM, the status of a death by that signal). SIGHUP (a closed terminal) the same, exit
    129. `ner-fast serve` handles SIGTERM itself
    while it serves; a SIGTERM ignored by the parent (SIG_IGN) stays ignored. `ner-fast train` saves
    its parameters first, as for Ctrl-C (`--resume` continues).

    A stop while an engine's compiled module initialises (its import raises ImportError from the
    KeyboardInterrupt or `Terminated`, `signals.stop_behind`) ends the same way, not in a traceback."""
    raise_on_sigterm()
    try:
        cli()
    except Terminated as err:
        _terminated(err)
    except ImportError as err:
        stop = stop_behind(err)
        if isinstance(stop, Terminated):
            _terminated(stop)
        if stop is not None:
            click.echo("Aborted!", err=True)  # click's own line for a Ctrl-C inside a command
            raise SystemExit(1) from None
        # The engines come with extras; without one a command says which, in one line.
        message = missing_extra(err)
        if message is None:
            raise
        click.echo(f"Error: {message}", err=True)
        raise SystemExit(1) from None


def _terminated(stop: Terminated) -> NoReturn:
    click.echo(f"Aborted: terminated ({signal.Signals(stop.signum).name}).", err=True)
    raise SystemExit(128 + stop.signum) from None
