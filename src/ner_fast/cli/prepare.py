"""`ner-fast prepare`: corpus -> vocabularies and bucket tensors on disk."""
from __future__ import annotations

import json
from pathlib import Path

import click


def _parse_split(value: str) -> tuple[float, float]:
    parts = [float(p) for p in value.split(",") if p.strip()]
    if len(parts) == 1:
        parts.append(round(1.0 - parts[0], 12))
    if len(parts) != 2:
        raise ValueError("give TRAIN[,VALID] fractions, e.g. 0.8 or 0.8,0.2")
    return parts[0], parts[1]


def _parse_buckets(value: str) -> list[int]:
    return sorted({int(p) for p in value.split(",") if p.strip()})


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
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write (replaced only when the whole run succeeds).")
@click.option("--format", "fmt", type=click.Choice(["auto", "gmb", "conll"]), default="auto", show_default=True,
              help="Corpus format.")
@click.option("--split", "split", default="0.8,0.2", show_default=True,
              help="Sequential TRAIN,VALID fractions of the sentences.")
@click.option("--dev", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A separate validation corpus (then all of DATA trains).")
@click.option("--max-sentences", type=click.IntRange(min=1), default=None, help="Use only the first N sentences.")
@click.option("--max-token-chars", type=click.IntRange(min=1), default=20, show_default=True,
              help="Characters per token (cut or padded).")
@click.option("--batch-size", type=click.IntRange(min=1), default=50, show_default=True,
              help="Batch size; the default buckets are the lengths with at least this many sentences.")
@click.option("--buckets", default=None, help="Explicit bucket lengths, comma separated (e.g. 10,20,40,80).")
@click.option("--lowercase/--no-lowercase", default=False, show_default=True, help="Look words up lower-cased.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def prepare_command(
    data: Path | None,
    out: Path,
    fmt: str,
    split: str,
    dev: Path | None,
    max_sentences: int | None,
    max_token_chars: int,
    batch_size: int,
    buckets: str | None,
    lowercase: bool,
    as_json: bool,
) -> None:
    """Read a tagged corpus (default: the bundled GMB corpus), split it, build vocabularies on the
    training split and write the bucket tensors and vocabularies to OUT."""
    from ner_fast.corpus import CorpusError
    from ner_fast.prepare import prepare

    try:
        split_fractions = _parse_split(split)
        bucket_lengths = _parse_buckets(buckets) if buckets else None
    except ValueError as err:
        raise click.BadParameter(str(err)) from err
    try:
        prepared = prepare(
            data,
            format=fmt,
            split=split_fractions,
            dev=dev,
            max_sentences=max_sentences,
            max_token_chars=max_token_chars,
            batch_size=batch_size,
            buckets=bucket_lengths,
            lowercase=lowercase,
        )
        prepared.save(out)
    except (CorpusError, ValueError, OSError) as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps(prepared.summary))
    else:
        click.echo(format_summary(prepared.summary))
        click.echo(f"written to {out}")
