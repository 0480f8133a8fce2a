"""`ner-fast export`: a training checkpoint folder -> a self-describing ONNX model package."""
from __future__ import annotations

from pathlib import Path

import click

from ner_fast.cli.terminal import echo_json, given
from ner_fast.cli.loading import RunArgument
from ner_fast.option_table import command_options


def package_summary(package: Path) -> dict:
    """Facts about a written package: its path, buckets, quantization and file sizes in bytes."""
    from ner_fast.package import load_package, quantization_scheme, shown_path

    pkg = load_package(package)
    sizes = pkg.file_sizes
    return {
        "package": shown_path(package),  # ./ensemble: the bare name reads back as the bundled package
        "buckets": pkg.buckets,
        "quantization": quantization_scheme(pkg.model),  # "none", as info and /v1/model say
        "tags": len(pkg.tags),
        "files": sizes,
        "bytes": sum(sizes.values()),
    }


@click.command()
@click.argument("model", type=RunArgument())
@command_options("export")
def export_command(
    model: Path, out: Path | None, force: bool, buckets: str, quantize: str | None, checkpoint: str,
    ensemble: tuple[Path, ...], max_words: int | None, char_graph: bool, as_json: bool,
) -> None:
    """Export the trained model in MODEL (a `ner-fast train` folder) as an ONNX model package: the dynamic
    graph (plus one per bucket length with --buckets), weights stored once, vocabularies and a checksummed
    manifest."""
    from ner_fast.cli.errors import user_errors
    from ner_fast.training.export import export_model

    if ensemble and char_graph and given("char_graph"):  # honoured or refused, never ignored
        raise click.UsageError("--char-graph: an ensemble is always one graph (its members' character CNNs differ);"
                               " leave --char-graph out")
    with user_errors():
        package = export_model(model, out, buckets=buckets, quantize=quantize, which=checkpoint, force=force,
                               ensemble=ensemble, max_words=max_words, char_graph=char_graph)
    summary = package_summary(package)
    if as_json:
        echo_json(summary)
    else:
        lengths = summary["buckets"]
        shown = ", ".join(map(str, lengths)) if len(lengths) <= 12 else f"{lengths[0]}..{lengths[-1]} ({len(lengths)} lengths)"
        click.echo(f"wrote {summary['package']}: buckets {shown or 'none'} + dynamic, {summary['tags']} tags, "
                   f"{summary['bytes'] / 1e6:.1f} MB ({summary['quantization']})")
