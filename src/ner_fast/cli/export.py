"""`ner-fast export`: a training checkpoint folder -> a self-describing ONNX model package."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ner_fast.package import DEFAULT_BUCKETS, DEFAULT_QUANTIZE, QUANTIZATIONS


def package_summary(package: Path) -> dict:
    """Facts about a written package: its path, buckets, quantization and file sizes in bytes."""
    from ner_fast.package import load_package

    pkg = load_package(package)
    sizes = {p.name: p.stat().st_size for p in sorted(package.iterdir())}
    return {
        "package": str(package),
        "buckets": pkg.buckets,
        "quantization": pkg.model["quantization"],
        "tags": len(pkg.tags),
        "files": sizes,
        "bytes": sum(sizes.values()),
    }


def _check_buckets(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Refuse a malformed --buckets as a usage error (exit 2) before anything is loaded."""
    from ner_fast.training.export import parse_buckets

    try:
        parse_buckets(value, [])
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    return value


@click.command()
@click.argument("model", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Package folder to write (default: export/<MODEL folder name>/): new, empty or an earlier package,"
                   " replaced only when complete.")
@click.option("--force", is_flag=True,
              help="Also write into a non-empty folder that is not a package (its other files are kept).")
@click.option("--buckets", default=DEFAULT_BUCKETS, show_default=True, callback=_check_buckets,
              help="'dynamic' (one graph, free length; the fastest on CPU, docs/ARCHITECTURE.md), 'auto' (one "
                   "graph per training bucket too) or lengths like 10,20,40. The dynamic graph is always written.")
@click.option("--quantize", type=click.Choice(QUANTIZATIONS), default=DEFAULT_QUANTIZE, show_default=True,
              help="int8: int8 weights, batch-invariant (a sentence's tags and scores do not depend on what it is"
                   " batched with; the same F1 as float32, 4x smaller); int8-dynamic: activations quantized with one"
                   " scale per batch, faster on some CPUs but NOT batch-invariant; none: float32 weights (exact"
                   " parity with MXNet).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="Which parameters of the training folder to export.")
@click.option("--ensemble", type=click.Path(exists=True, file_okay=False, path_type=Path), multiple=True,
              help="Another training folder with the same vocabularies (the same data): MODEL and these become one"
                   " graph whose tag probabilities are the members' geometric mean (repeatable).")
@click.option("--max-words", type=click.IntRange(min=3), default=None,
              help="Keep the embeddings of this many most frequent words only (<pad> and <unk> included); the"
                   " others read as unknown. Makes the package smaller.")
@click.option("--json", "as_json", is_flag=True, help="Print the package summary as JSON.")
def export_command(
    model: Path, out: Path | None, force: bool, buckets: str, quantize: str | None, checkpoint: str,
    ensemble: tuple[Path, ...], max_words: int | None, as_json: bool,
) -> None:
    """Export the trained model in MODEL (a `ner-fast train` folder) as an ONNX model package: the dynamic
    graph (plus one per bucket length with --buckets), weights stored once, vocabularies and a checksummed
    manifest."""
    from ner_fast.cli.errors import user_errors
    from ner_fast.training.export import export_model

    with user_errors():
        package = export_model(model, out, buckets=buckets, quantize=quantize, which=checkpoint, force=force,
                               ensemble=ensemble, max_words=max_words)
    summary = package_summary(package)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        lengths = summary["buckets"]
        shown = ", ".join(map(str, lengths)) if len(lengths) <= 12 else f"{lengths[0]}..{lengths[-1]} ({len(lengths)} lengths)"
        click.echo(f"wrote {package}: buckets {shown or 'none'} + dynamic, {summary['tags']} tags, "
                   f"{summary['bytes'] / 1e6:.1f} MB{f' ({quantize})' if quantize not in (None, 'none') else ''}")
