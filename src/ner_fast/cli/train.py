"""`ner-fast train`: train the BiLSTM-CNN tagger with MXNet bucketing.

Its options come from the option table (`ner_fast.option_table`), as do their defaults, ranges and help.
"""
from __future__ import annotations

from typing import Any

import click

from ner_fast.cli.terminal import echo_json
from ner_fast.option_table import command_options


#: How the summary line says why a run ended (`train`'s `stopped`).
STOPPED = {"epochs": "stopped at the --epochs cap", "patience": "stopped by --patience",
           "interrupted": "interrupted (Ctrl-C; --resume continues it)"}


@click.command()
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=True))
@command_options("train")
def train_command(
    data: str | None,
    out: str | None,
    resume_dir: str | None,
    force: bool,
    recipe_name: str | None,
    progress: bool,
    as_json: bool,
    **values: Any,
) -> None:
    """Train the BiLSTM-CNN tagger on DATA into the checkpoint folder --out.

    DATA is a corpus (GMB-style CSV or CoNLL columns) or a folder from `ner-fast prepare` (whose
    data options are then fixed); without it the bundled GMB corpus is used, split sequentially
    80/20. Each epoch prints training and validation loss, accuracy, the tutorial's token-level F1
    and the entity-level (conlleval) P/R/F1 with a per-type table; the best model by validation
    entity F1 is kept. Ctrl-C (exit 1) or SIGTERM (exit 143) saves and exits; --resume DIR continues (with --epochs / --patience /
    --context to change the stopping rule or the devices). Options marked [tuned: ...; tutorial: ...]
    default to the value of the --recipe chosen (docs/TRAINING.md: what each setting gave on the GMB corpus).
    --init SOURCE (a run, a package, or a bundled model's name: `default`, `ensemble`; `./default` is the folder) starts from SOURCE's parameters
    (words, characters and tags matched by name) and takes the sizes of its network.
    """
    from ner_fast.cli.errors import user_errors
    from ner_fast.cli.terminal import bars_shown
    from ner_fast.config import given_options
    from ner_fast.train_options import command_line_config
    from ner_fast.training.train import spin_openmp_threads, train

    spin_openmp_threads()  # this process only trains

    with user_errors():
        given = given_options(values)
        if given.get("init") and resume_dir is None:
            from ner_fast.training.init_source import inherit_architecture

            given = inherit_architecture(given["init"], given)  # sizes left out are SOURCE's
        cfg = command_line_config(data=data, out=out, resume=resume_dir, recipe_name=recipe_name, given=given)
        result = train(cfg, resume=resume_dir is not None, force=force, progress=bars_shown(progress))
    if as_json:
        echo_json(result.to_dict())
    elif result.best_epoch is not None:
        best = result.history[result.best_epoch - 1]["valid"]
        click.echo(
            f"best epoch {result.best_epoch}: validation entity F1 {best['f1']:.4f}, token F1 (tutorial)"
            f" {best['token_f1']:.4f}; {STOPPED[result.stopped]} after {len(result.history)} epoch"
            f"{'s' if len(result.history) != 1 else ''},"
            f" {result.seconds:.0f} s; "
            + (f"model in {result.out}" if result.rank == 0 else f"worker {result.rank}: worker 0 writes the model")
        )
    if result.stopped == "interrupted":
        # Ctrl-C: saved (the line above says where), but a stop, not a finished run: exit 1 as every
        # command's Ctrl-C, so `ner-fast train ... && ner-fast export ...` does not go on.
        raise SystemExit(1)
