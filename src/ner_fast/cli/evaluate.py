"""`ner-fast evaluate`: score a trained checkpoint on a corpus."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ner_fast.cli.loading import RunArgument
from ner_fast.option_table import command_options


@click.command()
@click.argument("model", type=RunArgument())
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=False))
@command_options("evaluate")
def evaluate_command(
    model: Path, data: str | None, which: str, fmt: str, batch_size: int, decode: str | None, progress: bool, as_json: bool
) -> None:
    """Print accuracy, the tutorial's token-level P/R/F1 and entity-level (conlleval) P/R/F1 with a
    per-type table for the checkpoint folder MODEL (from `ner-fast train`) on the tagged corpus DATA.

    Without DATA the model is scored on the validation split it was trained with, rebuilt from the
    data settings in MODEL/config.json.
    """
    from ner_fast.cli.errors import user_errors
    from ner_fast.metrics import format_table
    from ner_fast.training.evaluate import evaluate

    with user_errors():
        scores = evaluate(model, data, which=which, format=fmt, batch_size=batch_size, progress=progress, decode=decode)
    if as_json:
        click.echo(json.dumps(scores.to_dict()))
    else:
        click.echo(format_table({data or "validation split": scores}))
