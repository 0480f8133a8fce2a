"""`ner-fast prepare`: corpus -> vocabularies and bucket tensors on disk."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ner_fast.cli.terminal import echo_json
from ner_fast.option import DEFAULT_RECIPE
from ner_fast.option_table import command_options


def format_summary(summary: dict) -> str:
    """The human-readable summary printed after a run."""
    splits = summary["splits"]
    lines = [
        f"sentences {summary['sentences']:,}  tokens {summary['tokens']:,}  POS {'yes' if summary['has_pos'] else 'no'}",
    ]
    for name, c in splits.items():
        lines.append(f"  {name:<6} {c['sentences']:>8,} sentences {c['tokens']:>10,} tokens {c['buckets']:>4} buckets")
    b = summary["buckets"]
    shown = ", ".join(map(str, b)) if len(b) <= 12 else f"{b[0]}..{b[-1]} ({len(b)} lengths)"
    lines.append(f"buckets {shown}; training sentences cut to the largest bucket: {summary['cut']:,}")
    v = summary["vocab"]
    lines.append(f"vocabularies: {v['words']:,} words, {v['chars']:,} chars, {v['pos'] or 0} POS, {v['tags']} tags")
    lines.append(f"prepared in {summary['seconds']:.2f} s")
    return "\n".join(lines)


@click.command()
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@command_options("prepare")
def prepare_command(data: Path | None, out: Path, force: bool, recipe_name: str | None, as_json: bool, **values: Any) -> None:
    """Read a tagged corpus (default: the bundled GMB corpus), split it, build vocabularies on the
    training split and write the bucket tensors and vocabularies to OUT."""
    from ner_fast.package import claim_folder
    from ner_fast.cli.errors import user_errors
    from ner_fast.config import check_needs, given_options, recipe_defaults
    from ner_fast.prepare import PREPARED_FILES, data_warnings, prepare, prepared_files

    settings = {o: v for o, v in recipe_defaults(recipe_name or DEFAULT_RECIPE).items() if o in values}
    with user_errors():
        given = given_options(values)
        settings.update(given)
        check_needs(given, settings)
        claim = claim_folder(out, "prepared", prepared_files, force=force, writes=PREPARED_FILES)  # before reading the corpus
        prepared = prepare(data, **settings)
        prepared.save(claim)
    for warning in data_warnings(prepared):
        click.echo(warning, err=True)
    if as_json:
        echo_json(prepared.summary)
    else:
        click.echo(format_summary(prepared.summary))
        click.echo(f"written to {out}")
