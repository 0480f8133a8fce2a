"""`ner-fast train`: train the BiLSTM-CNN tagger with MXNet bucketing."""
from __future__ import annotations

import json
from typing import Any

import click


def _int_list(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError as err:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from err


@click.command()
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=True))
@click.option("--out", type=click.Path(file_okay=False), help="Checkpoint folder to create (required unless --resume).")
@click.option("--resume", "resume_dir", type=click.Path(exists=True, file_okay=False), help="Continue the run in this folder.")
@click.option("--format", "fmt", default="auto", show_default=True, type=click.Choice(["auto", "gmb", "conll"]), help="Corpus format.")
@click.option("--dev", type=click.Path(exists=True, dir_okay=False), help="Validate on this corpus instead of a split of DATA.")
@click.option("--split", default="0.8,0.2", show_default=True, help="Sequential train,valid fractions of DATA.")
@click.option("--max-sentences", type=int, help="Use only the first N sentences of DATA (quick runs).")
@click.option("--max-token-chars", default=20, show_default=True, help="Characters kept per token.")
@click.option("--buckets", help="Comma-separated bucket lengths (default: the tutorial's rule).")
@click.option("--recipe", default="tuned", show_default=True, type=click.Choice(["tuned", "tutorial"]),
              help="Defaults of the options marked [tuned: ...; tutorial: ...]: the tuned ones, or exactly the tutorial's.")
@click.option("--lowercase/--no-lowercase", default=None, help="Look words up lower-cased.  [tuned: yes; tutorial: no]")
@click.option("--batch-size", default=50, show_default=True)
@click.option("--epochs", type=int, help="Epoch cap.  [default: 30]")
@click.option("--patience", type=int, help="Stop after this many epochs without a better validation entity F1 (0: never).  [default: 5]")
@click.option("--lr", "learning_rate", type=float, help="Adam learning rate.  [tuned: 0.002; tutorial: 0.01]")
@click.option("--beta1", default=0.9, show_default=True)
@click.option("--beta2", default=0.999, show_default=True)
@click.option("--epsilon", default=1e-8, show_default=True)
@click.option("--lr-decay", type=float, help="Multiply the learning rate by this after every epoch (1: constant).  [tuned: 0.9; tutorial: 1]")
@click.option("--clip-gradient", type=float, help="Clip each gradient element to [-x, x] (0: never).  [tuned: 5; tutorial: 0]")
@click.option("--word-dropout", type=float, help="Replace training words by UNK with this probability.  [tuned: 0.1; tutorial: 0]")
@click.option("--decode", type=click.Choice(["bio", "argmax"]),
              help="Tag decoding for metrics and model selection: best valid BIO sequence, or per-token argmax (with --crf: the CRF's best path).  [tuned: bio; tutorial: argmax]")
@click.option("--char-dim", default=25, show_default=True)
@click.option("--filter-widths", default="3", show_default=True, help="Comma-separated character convolution widths.")
@click.option("--filters", default=53, show_default=True, help="Filters per width.")
@click.option("--word-dim", default=150, show_default=True)
@click.option("--casing/--no-casing", "use_casing", default=None, help="Add a casing-class embedding.  [tuned: yes; tutorial: no]")
@click.option("--casing-dim", default=10, show_default=True)
@click.option("--pos/--no-pos", "use_pos", default=None, help="Use one-hot POS where the corpus has it.  [tuned: yes; tutorial: yes]")
@click.option("--pos-aux-weight", type=float,
              help="Weight of the auxiliary POS output head's loss (multi-task, predicts the corpus's POS column; needs --no-pos); 0: no head.  [tuned: 0; tutorial: 0]")
@click.option("--lm-aux-weight", type=float,
              help="Weight of the auxiliary language-model loss (Rei 2017: next/previous word from the forward/backward LSTM); 0: none.  [tuned: 0; tutorial: 0]")
@click.option("--lm-vocab", default=7500, show_default=True, help="Words the language-model loss predicts (the most frequent; the rest count as unknown).")
@click.option("--lm-dim", default=50, show_default=True, help="Width of the language-model head's tanh layer.")
@click.option("--hidden", default=275, show_default=True, help="LSTM units per direction.")
@click.option("--layers", "num_layers", default=1, show_default=True, help="BiLSTM layers.")
@click.option("--dropout", type=float, help="Dropout on the LSTM inputs and outputs.  [tuned: 0.5; tutorial: 0.1]")
@click.option("--crf/--no-crf", default=None, help="Linear-chain CRF output layer, or per-token softmax.  [tuned: yes; tutorial: no]")
@click.option("--fused/--unfused", default=True, show_default=True, help="Fused RNN operator or unrolled LSTM cells.")
@click.option("--seed", default=0, show_default=True, help="Seeds initialisation, shuffling and dropout.")
@click.option("--context", default="cpu", show_default=True, help="cpu, gpu:0 or several: gpu:0,gpu:1.")
@click.option(
    "--kvstore",
    default="device",
    show_default=True,
    type=click.Choice(["local", "device", "dist_sync", "dist_device_sync", "dist_async"]),
    help="How gradients are combined across devices / machines (dist_*: see `ner-fast launch`).",
)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's result as JSON on stdout.")
def train_command(
    data: str | None,
    out: str | None,
    resume_dir: str | None,
    fmt: str,
    dev: str | None,
    split: str,
    max_sentences: int | None,
    max_token_chars: int,
    buckets: str | None,
    recipe: str,
    lowercase: bool | None,
    batch_size: int,
    epochs: int | None,
    patience: int | None,
    learning_rate: float | None,
    beta1: float,
    beta2: float,
    epsilon: float,
    lr_decay: float | None,
    clip_gradient: float | None,
    word_dropout: float | None,
    decode: str | None,
    filter_widths: str,
    progress: bool,
    as_json: bool,
    **arch: Any,
) -> None:
    """Train the BiLSTM-CNN tagger on DATA into the checkpoint folder --out.

    DATA is a corpus (GMB-style CSV or CoNLL columns) or a folder from `ner-fast prepare`; without
    it the bundled GMB corpus is used, split sequentially 80/20. Each epoch prints training and
    validation loss, accuracy, the tutorial's token-level F1 and the entity-level (conlleval)
    P/R/F1 with a per-type table; the best model by validation entity F1 is kept. Ctrl-C saves
    and exits; --resume DIR continues (with --epochs / --patience to change the stopping rule).
    Options marked [tuned: ...; tutorial: ...] default to the value of the --recipe chosen
    (docs/TRAINING.md: what each setting gave on the GMB corpus).
    """
    from ner_fast.train import ARCH_RECIPE_KEYS, TrainConfig, recipe_options, resume_config, train

    patience_value = None if patience == 0 else patience
    try:
        if resume_dir is not None:
            cfg = resume_config(resume_dir, epochs=epochs, patience=patience_value)
        else:
            if out is None:
                raise click.UsageError("--out is required (or --resume DIR)")
            try:
                fractions = tuple(float(v) for v in split.split(","))
            except ValueError as err:
                raise click.BadParameter(f"expected two fractions like 0.8,0.2, got {split!r}") from err
            arch["filter_widths"] = _int_list(filter_widths)
            # The recipe fills every recipe option left unset on the command line.
            settings, recipe_arch = recipe_options(recipe)
            given = {
                "learning_rate": learning_rate, "lr_decay": lr_decay, "lowercase": lowercase,
                "word_dropout": word_dropout, "decode": decode,
            }  # fmt: skip
            settings.update({k: v for k, v in given.items() if v is not None})
            if clip_gradient is not None:
                settings["clip_gradient"] = clip_gradient or None  # 0: never
            for key in ARCH_RECIPE_KEYS:
                value = arch.pop(key)
                arch[key] = recipe_arch[key] if value is None else value
            cfg = TrainConfig(
                out=out,
                data=data,
                format=fmt,
                dev=dev,
                split=fractions,  # type: ignore[arg-type]
                max_sentences=max_sentences,
                max_token_chars=max_token_chars,
                buckets=_int_list(buckets),
                batch_size=batch_size,
                epochs=30 if epochs is None else epochs,
                patience=5 if patience is None else patience_value,
                beta1=beta1,
                beta2=beta2,
                epsilon=epsilon,
                seed=arch.pop("seed"),
                context=arch.pop("context"),
                kvstore=arch.pop("kvstore"),
                arch=arch,
                **settings,
            )
        result = train(cfg, resume=resume_dir is not None, progress=progress)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    elif result.best_epoch is not None:
        best = result.history[result.best_epoch - 1]["valid"]
        click.echo(
            f"best epoch {result.best_epoch}: validation entity F1 {best['f1']:.4f}, token F1 (tutorial)"
            f" {best['token_f1']:.4f}; stopped by {result.stopped} after {len(result.history)} epochs,"
            f" {result.seconds:.0f} s; "
            + (f"model in {result.out}" if result.rank == 0 else f"worker {result.rank}: worker 0 writes the model")
        )
