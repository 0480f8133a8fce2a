"""`ner-fast tag`: tag a file of sentences with a model package (onnxruntime; no mxnet, no onnx).

Input formats: `conll` (whitespace columns, word first, POS second when there are 3+ columns, the last
column a tag, which is ignored), `gmb` (the GMB CSV), `tokens` (one pre-tokenized sentence a line,
tokens separated by whitespace, blank lines skipped). Output: `conll` (token TAB predicted tag, a blank
line after each sentence) or `jsonl` (one JSON object a sentence: tokens, tags, entities).
"""
from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

INPUT_FORMATS = ("auto", "conll", "gmb", "tokens")
OUTPUT_FORMATS = ("conll", "jsonl")
# Sentences tagged per call between progress updates; large enough for full batches in every bucket.
CHUNK = 2048


def detect_format(raw: bytes) -> str:
    """`gmb` for a CSV header naming word and tag columns; `conll` when the lines have one constant
    column count and blank lines separate sentences; otherwise `tokens` (one sentence a line)."""
    lines = raw.split(b"\n", 400)[:400]
    header = [h.strip().lower() for h in lines[0].decode("latin-1").split(",")]
    if "word" in header and "tag" in header:
        return "gmb"
    filled = [line.split() for line in lines if line.strip()]
    blank = any(not line.strip() for line in lines[:-1])  # the last line may be cut or a trailing newline
    counts = {len(cols) for cols in filled if cols[0] != b"-DOCSTART-"}
    return "conll" if (blank and len(counts) == 1 and counts != {1}) else "tokens"


def read_tokens(raw: bytes, source: str) -> tuple[list[list[str]], None]:
    """One pre-tokenized sentence a line (UTF-8, a byte-order mark allowed); blank lines skipped.

    Returns (sentences, no POS)."""
    from ner_fast.corpus import CorpusError

    try:
        # utf-8-sig: editors on Windows start files with a BOM, which would glue itself to the first token.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorpusError(f"byte 0x{raw[err.start]:02x} is not valid UTF-8", source, raw.count(b"\n", 0, err.start) + 1) from None
    return [line.split() for line in text.splitlines() if line.strip()], None


def read_input(path: Path | None, fmt: str) -> tuple[list[list[str]], list[list[str]] | None]:
    """Sentences (and their POS tags where the format has them) from a file, or stdin for None."""
    from ner_fast.corpus import CorpusError, parse_corpus, read_corpus

    if fmt not in INPUT_FORMATS:
        raise ValueError(f"unknown input format {fmt!r} (choose from {', '.join(INPUT_FORMATS)})")
    if path is not None and path.suffix.lower() == ".zip":  # the corpus reader opens zips (a CoNLL or GMB file inside)
        corpus = read_corpus(path, "auto" if fmt in ("auto", "tokens") else fmt)
        return _columns(corpus)
    source = "<stdin>" if path is None else str(path)
    raw = sys.stdin.buffer.read() if path is None else Path(path).read_bytes()
    if not raw.strip():
        raise CorpusError("empty input", source, 1)
    if fmt == "auto":
        fmt = detect_format(raw)
    if fmt == "tokens":
        return read_tokens(raw, source)
    return _columns(parse_corpus(raw, source, fmt))


def _columns(corpus: Any) -> tuple[list[list[str]], list[list[str]] | None]:
    """A `Corpus`'s sentences as token lists, and POS lists where it has POS."""
    sentences = [corpus.sentence(i) for i in range(len(corpus))]
    pos = [s.pos for s in sentences] if corpus.pos is not None else None
    return [s.words for s in sentences], pos  # type: ignore[misc]


def tagged(tagger: Any, sentences: list[list[str]], pos: list[list[str]] | None, batch_size: int, bar: Any) -> Iterator[tuple]:
    """(tokens, tags, entities) per sentence, in input order, tagging CHUNK sentences at a time."""
    from ner_fast.tagger import spans

    for start in range(0, len(sentences), CHUNK):
        words = sentences[start : start + CHUNK]
        part_pos = pos[start : start + CHUNK] if (pos is not None and tagger.uses_pos) else None
        tags, probs = tagger.tag_batch(words, part_pos, batch_size=batch_size, proba=True)
        for w, t, p in zip(words, tags, probs):
            yield w, t, spans(w, t, tagger.chosen_probabilities(t, p))
        bar.update(len(words))


def write_sentence(out: IO[str], fmt: str, tokens: list[str], tags: list[str], entities: list) -> None:
    """One sentence in the output format."""
    if fmt == "conll":
        out.writelines(f"{w}\t{t}\n" for w, t in zip(tokens, tags))
        out.write("\n")
    else:
        # Pre-tokenized input: entity start/end are token indices (raw text input writes Doc.to_dict()).
        found = [
            {"type": e.label, "start": e.token_start, "end": e.token_end, "text": e.text, "score": round(e.score, 6)}
            for e in entities
        ]
        out.write(json.dumps({"tokens": tokens, "tags": tags, "entities": found}, ensure_ascii=False) + "\n")


def tag_file(
    package: Path,
    input_path: Path | None,
    output: Path | None,
    input_format: str = "auto",
    output_format: str = "conll",
    batch_size: int = 64,
    device: str = "auto",
    threads: int | None = None,
    workers: int = 1,
    progress: bool = True,
) -> int:
    """Tag `input_path` (stdin for None) into `output` (stdout for None); returns the sentence count.

    The whole input is read and checked before anything is written; a file output is written to a
    temporary name beside it and renamed into place only when complete.
    """
    from tqdm import tqdm

    from ner_fast.atomic import atomic_open
    from ner_fast.tagger import Tagger

    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {output_format!r} (choose from {', '.join(OUTPUT_FORMATS)})")
    sentences, pos = read_input(input_path, input_format)
    tagger = Tagger.load(package, device=device, threads=threads, workers=workers)  # type: ignore[arg-type]
    if tagger.uses_pos and pos is None:
        raise ValueError("this model uses POS tags and the input has none: give CoNLL columns or a GMB CSV with POS")
    with tqdm(total=len(sentences), unit="sent", disable=not progress or output is None, file=sys.stderr) as bar:
        if output is None:
            for item in tagged(tagger, sentences, pos, batch_size, bar):
                write_sentence(sys.stdout, output_format, *item)
            return len(sentences)
        with atomic_open(output, "w", encoding="utf-8") as out:
            for item in tagged(tagger, sentences, pos, batch_size, bar):
                write_sentence(out, output_format, *item)
    return len(sentences)


@click.command()
@click.argument("package", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("input_path", metavar="[INPUT|-]", required=False, default="-")
@click.option("--input-format", type=click.Choice(INPUT_FORMATS), default="auto", show_default=True,
              help="conll columns, gmb CSV, or tokens (one whitespace-tokenized sentence a line).")
@click.option("--output-format", type=click.Choice(OUTPUT_FORMATS), default="conll", show_default=True,
              help="conll (token TAB tag) or jsonl (tokens, tags and entities per sentence).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (written whole, then renamed into place); default stdout.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Sentences per graph run.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="onnxruntime intra-op threads per batch.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batches tagged at once, in threads (on few cores, --workers 2 --threads 1 beats --threads 2).")
def tag_command(
    package: Path,
    input_path: str,
    input_format: str,
    output_format: str,
    output: Path | None,
    batch_size: int,
    device: str,
    threads: int | None,
    workers: int,
) -> None:
    """Tag the sentences of INPUT (a file, or - / nothing for stdin) with the model package PACKAGE."""
    from ner_fast.corpus import CorpusError
    from ner_fast.package import PackageError

    path = None if input_path == "-" else Path(input_path)
    if path is not None and not path.is_file():
        raise click.BadParameter(f"{path} is not a file", param_hint="INPUT")
    try:
        tag_file(package, path, output, input_format, output_format, batch_size, device, threads, workers)
    except (CorpusError, PackageError, ValueError, OSError) as err:
        raise click.ClickException(str(err)) from err
