"""`ner-fast evaluate`: score a trained checkpoint, or a model package, on a corpus."""
from __future__ import annotations

from pathlib import Path

import click

from ner_fast.cli.terminal import echo_json, given
from ner_fast.cli.loading import RunArgument
from ner_fast.option_table import command_options, row


@click.command()
@click.argument("model", type=RunArgument(packages=True))
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=False))
@command_options("evaluate")
def evaluate_command(
    model: Path, data: str | None, which: str, fmt: str, batch_size: int, decode: str | None, progress: bool, as_json: bool
) -> None:
    """Print accuracy, the tutorial's token-level P/R/F1 and entity-level (conlleval) P/R/F1 with a
    per-type table for MODEL on the tagged corpus DATA. MODEL: a checkpoint folder (from `ner-fast
    train`), or a model package (a folder from `ner-fast export`, or a bundled package's name, default or
    ensemble), which is scored through the tagger as an application runs it.

    Without DATA a checkpoint is scored on the validation split it was trained with, rebuilt from the
    data settings in MODEL/config.json; a package needs DATA.
    """
    from ner_fast.cli.errors import user_errors
    from ner_fast.cli.terminal import bars_shown
    from ner_fast.metrics import format_table
    from ner_fast.training.evaluate import evaluate, evaluate_package

    if RunArgument.is_package(model):
        if data is None:
            raise click.UsageError(f"{model} is a model package, which keeps no validation split: give DATA, a tagged corpus")
        run_only = [row("evaluate", name).cli_flag for name in ("which", "decode") if given(name)]
        if run_only:  # a package has one set of parameters and decodes as it was exported
            raise click.UsageError(f"{', '.join(run_only)} applies to a training run, not to a model package")
        with user_errors(runtime="inference failed"):
            scores = evaluate_package(model, data, format=fmt, batch_size=batch_size)
    else:
        with user_errors():
            scores = evaluate(model, data, which=which, format=fmt, batch_size=batch_size, progress=bars_shown(progress), decode=decode)
    if as_json:
        echo_json(scores.to_dict())
    else:
        click.echo(format_table({data or "validation split": scores}))
