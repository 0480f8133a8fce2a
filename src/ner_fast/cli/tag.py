"""`ner-fast tag`: tag a file of sentences or raw text with a model package (onnxruntime; no mxnet, no onnx).

Input formats (`ner_fast.corpus`, which also sniffs `auto`): `conll` (whitespace columns, word first, POS
second when there are 3+ columns, the last column a tag, which is ignored), `gmb` (the GMB CSV), `tokens`
(one pre-tokenized sentence a line, tokens separated by whitespace, blank lines skipped), and `text`
(raw text, one document a line, or the whole input as one with `--document`; never sniffed), which
`ner_fast.text` tokenizes. `--text "..."` tags one document given on the command line.

Output: `conll` (token TAB predicted tag, a blank line after each sentence), `jsonl` (pre-tokenized
input: one JSON object a sentence with tokens, tags and entities, entity start/end being token
indices; raw text: one `Doc.to_dict()` a document, character offsets) or `pretty` (raw text: each
document with its entities marked, then one line per entity; coloured on a terminal unless NO_COLOR is set). Default:
`pretty` for `--text`, `jsonl` for other raw text, `conll` for pre-tokenized input. Written to stdout
(no `--output`, or `--output -`) or to a file, whole then renamed.

An empty input (a file or stdin with no bytes; pre-tokenized input: whitespace only too) is nothing to
tag: the output is empty (nothing written, exit 0; with `--output-dir`, that file's part is empty and
the other files are tagged). Raw text reads every line as a document, blank ones too, so each blank
line is an empty document with its output record; `--text ""` (as `--document` over an empty input)
is one empty document. Only a corpus read to train on or score (prepare, train, evaluate) must hold
something (`corpus.parse_corpus`).
"""
from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import click

from ner_fast.char_cache import DEFAULT_CHAR_CACHE
from ner_fast.corpus import TEXT
from ner_fast.cli.terminal import bars_shown, coloured, given
from ner_fast.engine import check_reads_no_pos
from ner_fast.labels import PACKAGE
from ner_fast.option_table import OUTPUT_FORMATS, command_options, row
from ner_fast.partition import JSONL, SCHEDULER_TIMEOUT, sentence_json, tag_sentences

# Entity label colours of the pretty view, given to labels in order of appearance.
COLOURS = ("cyan", "magenta", "yellow", "green", "blue", "red")


def read_input(path: Path | None, fmt: str = "auto") -> tuple[list[list[str]], list[list[str]] | None, Any]:
    """Sentences, their POS tags where the format has them, and the `Corpus` read, from a file or stdin (None).

    `fmt` is one of `corpus.FORMATS`; "auto" is `sniff.sniff_format` (stdin: by content only).
    """
    from ner_fast.corpus import parse_corpus, read_corpus

    if path is None:
        corpus = parse_corpus(sys.stdin.buffer.read(), "<stdin>", fmt, empty_ok=True)
    else:
        corpus = read_corpus(path, fmt, empty_ok=True)
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


def refuse_undecodable(text: str) -> None:
    """`click.UsageError` for a `--text` that is not Unicode text: a byte of the command line that is not
    UTF-8 reaches Python as a lone surrogate (U+DC80-U+DCFF), which no output can encode."""
    from ner_fast.text import lone_surrogate, surrogate_reason

    at = lone_surrogate(text)
    if at is not None:
        raise click.UsageError(f"--text: {surrogate_reason(text, at, from_bytes=True)}")


def write_sentence(out: IO[str], fmt: str, tokens: list[str], tags: list[str], entities: list) -> None:
    """One sentence in the output format (jsonl: `partition.sentence_json`, the line a cluster run's parts hold too)."""
    if fmt == "conll":
        out.writelines(f"{w}\t{t}\n" for w, t in zip(tokens, tags))
        out.write("\n")
    else:
        out.write(sentence_json(tokens, tags, entities) + "\n")


def format_doc(doc: Any, colour: bool = False, palette: dict[str, str] | None = None,
               describe: Callable[[str], str] | None = None) -> str:
    """The pretty view of a `Doc`: its text with each entity marked `[text](label)` (in colour and
    without brackets when `colour`), then one line per entity (label, character span, text, score, and
    what the label means when `describe`, e.g. a tagger's `label_map.describe`, says)."""
    palette = {} if palette is None else palette
    shown = _visible
    parts: list[str] = []
    position = 0
    for e in doc.entities:
        shade = palette.setdefault(e.label, COLOURS[len(palette) % len(COLOURS)])
        parts.append(shown(doc.text[position : e.start]))
        if colour:
            parts.append(click.style(shown(e.text), fg=shade, bold=True, underline=True) + click.style(f" {e.label}", fg=shade))
        else:
            parts.append(f"[{shown(e.text)}]({e.label})")
        position = e.end
    parts.append(shown(doc.text[position:]))
    lines = ["".join(parts)]
    width = max([5, *(len(e.label) for e in doc.entities)])  # longer labels (`--labels ontonotes`) stay in a column
    for e in doc.entities:
        label = click.style(f"{e.label:<{width}}", fg=palette[e.label], bold=True) if colour else f"{e.label:<{width}}"
        meaning = describe(e.label) if describe else ""
        lines.append(f"  {label} {e.start:>5}-{e.end:<5} {shown(e.text)}  ({e.score:.2f})" + (f"  {meaning}" if meaning else ""))
    return "\n".join(lines) + "\n\n"


def _visible(text: str) -> str:
    """`text` for a terminal: control and format characters (escape sequences, bidi overrides) written
    as `\\uXXXX`, so that input cannot drive the terminal; line breaks (a Windows CRLF as one) and tabs
    kept."""
    if text.isprintable():
        return text
    text = text.replace("\r\n", "\n")  # a lone CR moves the cursor back over the line: escaped below
    return "".join(
        f"\\u{ord(c):04x}" if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cf") else c for c in text
    )


def read_documents(path: Path | None, whole: bool = False) -> list[str]:
    """Raw-text documents of a file or stdin (None): `corpus.parse_documents`."""
    from ner_fast.corpus import CorpusError, parse_documents

    if path is None:
        return parse_documents(sys.stdin.buffer.read(), "<stdin>", whole)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise CorpusError(f"cannot read: {err}", str(path)) from err
    return parse_documents(raw, str(path), whole)


def write_doc(out: IO[str], fmt: str, doc: Any, colour: bool, palette: dict[str, str],
              describe: Callable[[str], str] | None = None) -> None:
    """One document in the output format."""
    if fmt == "jsonl":
        out.write(doc.to_json() + "\n")
    elif fmt == "conll":
        for s in doc.sentences:
            out.writelines(f"{t.text}\t{t.tag}\n" for t in doc.tokens[s.token_start : s.token_end])
            out.write("\n")
    else:
        out.write(format_doc(doc, colour, palette, describe))


def tag_file(
    package: str | Path | None,
    input_path: Path | None,
    output: Path | None,
    input_format: str = "auto",
    output_format: str | None = None,
    batch_size: int | None = None,
    device: str = row("tag", "device").default,
    threads: int | None = None,
    workers: int = row("tag", "workers").default,
    progress: bool = True,
    document: bool = False,
    text: str | None = None,
    force: bool = False,
    labels: str | None = None,
    char_cache: int = DEFAULT_CHAR_CACHE,
) -> int:
    """Tag `input_path` (stdin for None), or the document `text`, into `output` (stdout for None) with
    the package `package` (a folder or a bundled name; None: the default bundled one); returns the count of sentences (pre-tokenized
    input) or documents (raw text) written.

    An empty input is nothing to tag (no output, 0 returned); a blank line of raw text is an empty
    document (output line i answers input line i), and `text` "" is one.

    `input_format` is one of `corpus.TAG_FORMATS`; `document` reads a raw-text input as one document;
    `output_format` one of `OUTPUT_FORMATS` (None: see the module docstring); `batch_size` None keeps
    `Tagger.tag_batch`'s or `Tagger.pipe`'s default. The whole input is read and checked before
    anything is written; a file output is written to a temporary name beside it and renamed into place
    only when complete. The pretty view is coloured only on a terminal. Option mistakes raise
    `click.UsageError`. `labels`: the label map of the entities (`ner_fast.labels`; None: the package's labels). `char_cache`:
    the word forms whose character features the tagger keeps (`Tagger.load`'s `char_cache`). An existing `output` is replaced only with `force`, and never when it is the input;
    a stream (`atomic.is_stream`: /dev/null, /dev/stdout, a pipe) is written in place, without `force`.
    """
    from ner_fast.atomic import atomic_open
    from ner_fast.cli.loading import load_tagger

    refuse_output(output, input_path, force)
    output_format, raw_text = choose_output_format(input_format, output_format, text, document, labels)
    if output is None and sys.stdout is None:  # started with stdout closed (`>&-`)
        raise click.UsageError("stdout is closed: give --output FILE")
    if input_path is None and text is None and (sys.stdin is None or sys.stdin.isatty()):  # None: closed (`<&-`)
        raise click.UsageError(f"no INPUT: give a file, - with text piped in, or --text{shadowed(package)}")
    # The package is opened (and verified) before the input is read: a wrong package costs nothing.
    tagger = load_tagger(package, device=device, threads=threads, workers=workers, labels=labels,
                         char_cache=char_cache)
    if raw_text:
        check_reads_no_pos(tagger.uses_pos, remedy="give tokens with their POS tags (CoNLL columns, or a GMB CSV with"
                                                   " POS), or use a package trained without POS input")
        documents = [text] if text is not None else read_documents(input_path, document)
        count = len(documents)
        write: Any = lambda out: _write_documents(out, tagger, documents, output_format, batch_size,
                                                  progress and _bar_shown(output), coloured(out))
    else:
        sentences, pos, corpus = read_input(input_path, input_format)
        if output_format == "conll":
            refuse_unwritable_tokens(corpus)
        count = len(sentences)
        write = lambda out: _write_sentences(out, tagger, sentences, pos, output_format, batch_size,
                                             progress and _bar_shown(output))
    if output is None:
        write(sys.stdout)
    else:
        # The check above found `output` free (or --force): a file made there meanwhile is not replaced either.
        with atomic_open(output, "w", encoding="utf-8", replace=force) as out:
            write(out)
    return count


def refuse_output(output: Path | None, input_path: Path | None, force: bool) -> None:
    """`click.UsageError` for an `--output` that is the input file, exists (replaced only with `force`; a
    stream, `atomic.is_stream`, is written in place) or lies in a folder that does not exist."""
    from ner_fast.atomic import is_stream

    if output is None:
        return
    if input_path is not None and output.exists() and output.resolve() == input_path.resolve():
        raise click.UsageError(f"--output {output} is the input file: write the tags elsewhere")
    if output.exists() and not force and not is_stream(output):
        raise click.UsageError(f"--output {output} exists: add --force to replace it")
    # A link is written through (`atomic_open`): a dangling one's target must lie in a folder that exists.
    target = Path(os.path.realpath(output)) if output.is_symlink() else output
    if not target.parent.is_dir():
        where = f" (where the link {output} points)" if target is not output else ""
        raise click.UsageError(f"--output {output}: the folder {target.parent} does not exist{where}")


def choose_output_format(input_format: str, output_format: str | None, text: str | None, document: bool,
                         labels: str | None) -> tuple[str, bool]:
    """(the output format, whether the input is raw text) of `tag_file`: `output_format`, or the input's
    default (module docstring). The options that do not go together are a `click.UsageError`."""
    if text is not None and input_format not in ("auto", TEXT):
        raise click.UsageError(f"--text is raw text: --input-format {input_format} does not apply to it")
    if text is not None:
        refuse_undecodable(text)
    raw_text = text is not None or input_format == TEXT
    if output_format is None:
        output_format = "pretty" if text is not None else "jsonl" if raw_text else "conll"
    if output_format not in OUTPUT_FORMATS:
        raise click.UsageError(f"unknown output format {output_format!r} (choose from {', '.join(OUTPUT_FORMATS)})")
    if output_format == "pretty" and not raw_text:
        raise click.UsageError("--output-format pretty shows raw text: give --input-format text or --text")
    if output_format == "conll" and labels not in (None, PACKAGE):
        # The conll columns are per-token tags, which stay the package's: the map would change nothing.
        raise click.UsageError("--labels renames entities, and --output-format conll writes the package's own tags:"
                               " give --output-format jsonl (or pretty, for raw text)")
    if document and not raw_text:  # --text is one document already
        raise click.UsageError("--document reads raw text: give --input-format text")
    return output_format, raw_text


def _bar_shown(output: Path | None) -> bool:
    """A progress bar only where someone watches it: on a terminal's stderr, with the output going to a file
    (bars in a redirected log are lines of carriage returns)."""
    return output is not None and bars_shown()


def _write_sentences(out: IO[str], tagger: Any, sentences: list[list[str]], pos: list[list[str]] | None,
                     output_format: str, batch_size: int | None, progress: bool) -> None:
    from tqdm import tqdm

    # No sentences (an empty input): none lacks POS.
    check_reads_no_pos(tagger.uses_pos and pos is None and bool(sentences), "the input does not have",
                       "give CoNLL columns or a GMB CSV with POS")
    with tqdm(total=len(sentences), unit="sent", disable=not progress, file=sys.stderr) as bar:
        for item in tag_sentences(tagger, sentences, pos, batch_size):
            write_sentence(out, output_format, *item)
            bar.update(1)


def _write_documents(out: IO[str], tagger: Any, documents: list[str], output_format: str, batch_size: int | None,
                     progress: bool, colour: bool) -> None:
    from tqdm import tqdm

    options = {} if batch_size is None else {"batch_size": batch_size}
    palette: dict[str, str] = {}
    with tqdm(total=len(documents), unit="doc", disable=not progress, file=sys.stderr) as bar:
        for doc in tagger.pipe(documents, **options):
            write_doc(out, output_format, doc, colour, palette, tagger.label_map.describe)
            bar.update(1)


@click.command()
@click.argument("paths", nargs=-1, metavar="[PACKAGE] [INPUT|-]")
@command_options("tag")
def tag_command(
    paths: tuple[str, ...],
    input_format: str,
    document: bool,
    text: str | None,
    output_format: str | None,
    output: Path | None,
    batch_size: int | None,
    device: str,
    threads: int | None,
    workers: int,
    output_dir: Path | None,
    scheduler: str | None,
    scheduler_timeout: float,
    local_workers: int | None,
    partition_size: int,
    text_field: str,
    resume: bool,
    force: bool,
    labels: str,
    char_cache: int,
) -> None:
    """Tag INPUT (a file, or - / nothing for stdin), or --text, with the model package PACKAGE: a folder,
    or a bundled package's name, default or ensemble (default: the default package bundled with ner-fast).

    One path: a folder or a bundled name is the package (input from stdin; with --text, also a path
    that does not exist), anything else the input (./ensemble is the folder or file, never the bundled
    package). With --output-dir,
    any number of INPUT files are tagged on a Dask cluster (docs: README, "Running on a cluster").
    """
    from ner_fast.cli.errors import user_errors

    chosen = {name for name in ("scheduler_timeout", "partition_size", "text_field", "char_cache") if given(name)}
    if output_dir is not None:
        if "scheduler_timeout" in chosen and scheduler is None:
            raise click.UsageError("--scheduler-timeout applies to --scheduler (a local cluster has no such wait)")
        if text is not None or document or output is not None or output_format not in (None, "jsonl"):
            raise click.UsageError("--output-dir writes JSON lines parts: no --text, --document, --output or --output-format")
        if device != row("tag", "device").default or workers != row("tag", "workers").default:
            raise click.UsageError("--output-dir tags on the Dask workers' CPUs, one task a thread: no --device or "
                                   "--workers (more workers: --local-workers, or `dask worker --nworkers`)")
        if "char_cache" in chosen:  # each worker process opens its own tagger, with `Tagger.load`'s cache
            raise click.UsageError("--char-cache sizes this process's tagger: a cluster run's workers keep their"
                                   " default cache (no --char-cache with --output-dir)")
        cluster_tag(paths, output_dir, input_format, scheduler, local_workers, partition_size,
                    text_field if "text_field" in chosen else None, resume, force, threads, batch_size,
                    scheduler_timeout, labels)
        return
    cluster_only = [name for name, asked in (("--resume", resume), ("--scheduler", scheduler is not None),
                                             ("--local-workers", local_workers is not None),
                                             ("--scheduler-timeout", "scheduler_timeout" in chosen),
                                             ("--partition-size", "partition_size" in chosen),
                                             ("--text-field", "text_field" in chosen)) if asked]
    if cluster_only:
        raise click.UsageError(f"{', '.join(cluster_only)} applies to a cluster run: give --output-dir")
    if output is not None and str(output) == "-":
        output = None  # stdout, as INPUT - is stdin
    if input_format == JSONL:
        raise click.UsageError("--input-format jsonl is read by the cluster run: give --output-dir")
    package, path = resolve_paths(paths, text is not None)
    # onnxruntime's failures (e.g. CUDA out of memory) are RuntimeErrors.
    with user_errors(runtime="inference failed"):
        try:
            tag_file(package, path, output, input_format, output_format, batch_size, device, threads, workers,
                     document=document, text=text, force=force, labels=labels, char_cache=char_cache)
        except UnicodeEncodeError as err:  # only stdout can have an encoding other than UTF-8
            raise click.ClickException(
                f"stdout's encoding ({err.encoding}) cannot write {err.object[err.start]!r}: give --output FILE"
                " (written as UTF-8), or set PYTHONIOENCODING=utf-8") from None


def split_package(paths: tuple[str, ...], first_is_package: bool = False) -> tuple[str | Path | None, list[str]]:
    """(package folder, bundled package name or None for the default bundled one, the other paths): the
    first path is the package when it is a bundled name (`package.BUNDLED_NAMES`), a folder, or when
    `first_is_package`."""
    from ner_fast.cli.loading import refuse_no_package
    from ner_fast.package import names_bundled

    given = list(paths)
    if given and names_bundled(given[0]):
        return given[0], given[1:]
    if given:
        refuse_no_package(given[0], param_hint="PACKAGE")
    if not given or not (first_is_package or Path(given[0]).is_dir()):
        return None, given
    package = Path(given.pop(0))
    if not package.is_dir():
        from ner_fast.package import unknown_name_hint

        raise click.BadParameter(f"{paths[0]} is not a folder{unknown_name_hint(paths[0])}", param_hint="PACKAGE")
    return package, given


def resolve_paths(paths: tuple[str, ...], have_text: bool) -> tuple[str | Path | None, Path | None]:
    """(package folder, bundled name or None for the default bundled one, input file or None for stdin) from the command's
    positional arguments: PACKAGE INPUT, or one of them (a folder is a package), or none."""
    if len(paths) > 2:
        raise click.UsageError(f"at most two paths, PACKAGE and INPUT; got {len(paths)} (several inputs: --output-dir)")
    # With --text, one path that is not there is a package misspelt (`tag robst --text ...`), not an INPUT.
    typo = have_text and len(paths) == 1 and paths[0] != "-" and not Path(paths[0]).exists()
    package, given = split_package(paths, len(paths) == 2 or typo)
    if given and have_text:
        raise click.UsageError("give INPUT or --text, not both")
    if not given or given[0] == "-":
        return package, None
    path = Path(given[0])
    refuse_missing(path)  # a pipe is fine: `ner-fast tag <(zcat notes.txt.gz)`, /dev/stdin
    return package, path


def shadowed(package: str | Path | None) -> str:
    """What "no INPUT" adds when PACKAGE is a bundled name that is also a path here (`tag ensemble` where a
    file ./ensemble exists: the name wins, so the file was not read)."""
    if isinstance(package, str) and Path(package).exists():
        return f" ({package} is the bundled package; ./{package} is the file)"
    return ""


def refuse_missing(path: Path) -> None:
    """`click.BadParameter` for an INPUT that does not exist or is a folder (each said as such)."""
    if not path.exists():
        raise click.BadParameter(f"{path} does not exist", param_hint="INPUT")
    if path.is_dir():
        raise click.BadParameter(f"{path} is a folder, not a file", param_hint="INPUT")


def cluster_tag(paths: tuple[str, ...], output_dir: Path, input_format: str, scheduler: str | None,
                local_workers: int | None, partition_size: int, text_field: str | None, resume: bool, force: bool,
                threads: int | None, batch_size: int | None, scheduler_timeout: float = SCHEDULER_TIMEOUT,
                labels: str | None = None) -> None:
    """`tag --output-dir`: check the options, run `ner_fast.dask.tag_files`, turn its errors into one line
    (exit 2 for the options and the output folder, 1 for the data)."""
    package, inputs = split_package(paths)
    if not inputs or "-" in inputs:
        raise click.UsageError(f"--output-dir needs INPUT files (the workers read them; not stdin){shadowed(package)}")
    for name in inputs:
        refuse_missing(Path(name))
    if scheduler is not None and local_workers is not None:
        raise click.UsageError("give --scheduler or --local-workers, not both")
    if resume and force:
        raise click.UsageError("give --resume or --force, not both")
    # distributed, an extra, is imported when the cluster starts: without it the console script says which
    # (`errors.missing_extra`).
    from ner_fast.dask import PartitionsFailed, tag_files
    from ner_fast.cli.errors import user_errors
    with user_errors(PartitionsFailed):
        tag_files(inputs, output_dir, package, scheduler=scheduler, local_workers=local_workers,
                  input_format=input_format, text_field=text_field, partition_size=partition_size, resume=resume,
                  force=force, threads=threads or 1, batch_size=batch_size, scheduler_timeout=scheduler_timeout,
                  labels=labels, progress=bars_shown())
