"""`ner-fast tag`: tag a file of sentences with a model package (onnxruntime; no mxnet, no onnx).

Input formats (`ner_fast.corpus`, which also sniffs `auto`): `conll` (whitespace columns, word first, POS
second when there are 3+ columns, the last column a tag, which is ignored), `gmb` (the GMB CSV), `tokens`
(one pre-tokenized sentence a line, tokens separated by whitespace, blank lines skipped). Output: `conll` (token TAB predicted tag, a blank
line after each sentence) or `jsonl` (one JSON object a sentence: tokens, tags, entities).
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from ner_fast.corpus import FORMATS

OUTPUT_FORMATS = ("conll", "jsonl")
# Sentences tagged per call between progress updates; large enough for full batches in every bucket.
CHUNK = 2048


def read_input(path: Path | None, fmt: str = "auto") -> tuple[list[list[str]], list[list[str]] | None, Any]:
    """Sentences, their POS tags where the format has them, and the `Corpus` read, from a file or stdin (None).

    `fmt` is one of `corpus.FORMATS`; "auto" is `corpus.sniff_format` (stdin: by content only).
    """
    from ner_fast.corpus import parse_corpus, read_corpus

    if path is None:
        corpus = parse_corpus(sys.stdin.buffer.read(), "<stdin>", fmt)
    else:
        corpus = read_corpus(path, fmt)
    return (*_columns(corpus), corpus)


def _columns(corpus: Any) -> tuple[list[list[str]], list[list[str]] | None]:
    """A `Corpus`'s sentences as token lists, and POS lists where it has POS."""
    sentences = [corpus.sentence(i) for i in range(len(corpus))]
    pos = [s.pos for s in sentences] if corpus.pos is not None else None
    return [s.words for s in sentences], pos  # type: ignore[misc]


def refuse_unwritable_tokens(corpus: Any) -> None:
    """A token holding a tab or line break (possible inside a GMB CSV field) would break the
    tab-separated conll output: refuse it, naming its file and line, before anything is written."""
    from ner_fast.corpus import CorpusError

    for i, word in enumerate(corpus.words):
        if "\t" in word or "\n" in word or "\r" in word:
            raise CorpusError(
                f"token {word!r} holds a tab or line break, which the tab-separated conll output cannot hold: "
                "use --output-format jsonl",
                corpus.source,
                corpus.line_of(i),
            )


def tagged(tagger: Any, sentences: list[list[str]], pos: list[list[str]] | None, batch_size: int, bar: Any) -> Iterator[tuple]:
    """(tokens, tags, entities) per sentence, in input order, tagging CHUNK sentences at a time."""
    from ner_fast.tagger import spans

    for start in range(0, len(sentences), CHUNK):
        words = sentences[start : start + CHUNK]
        part_pos = pos[start : start + CHUNK] if (pos is not None and tagger.uses_pos) else None
        tags, probs = tagger.tag_batch(words, part_pos, batch_size=batch_size, proba=True)
        for w, t, p in zip(words, tags, probs):
            yield w, t, spans(w, t, tagger.chosen_probabilities(t, p), tagger.scheme)
        bar.update(len(words))


def write_sentence(out: IO[str], fmt: str, tokens: list[str], tags: list[str], entities: list) -> None:
    """One sentence in the output format."""
    if fmt == "conll":
        out.writelines(f"{w}\t{t}\n" for w, t in zip(tokens, tags))
        out.write("\n")
    else:
        found = [{"type": e.type, "start": e.start, "end": e.end, "text": e.text, "score": round(e.score, 6)} for e in entities]
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
    sentences, pos, corpus = read_input(input_path, input_format)
    if output_format == "conll":
        refuse_unwritable_tokens(corpus)
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
@click.option("--input-format", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="conll columns, gmb CSV, or tokens (one whitespace-tokenized sentence a line); auto: by the "
                   "file's extension, else its content (docs/ARCHITECTURE.md, 'Input formats').")
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
    except BrokenPipeError:
        # The reader of stdout left (`ner-fast tag ... | head`): not an error. Point stdout at devnull so
        # that the interpreter's final flush does not raise again, and stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except (CorpusError, PackageError, ValueError, OSError) as err:
        raise click.ClickException(str(err)) from err
