"""Tagging in partitions, for any engine that runs Python functions on lists of documents (Dask, Spark,
Ray, multiprocessing): the engine-neutral partition function, the per-process tagger cache, input
files cut into partitions, and a partition tagged into its JSON lines part.

    from ner_fast.partition import tag_texts
    tag_texts(["Angela Merkel visited Paris.", "..."], package="/shared/pkg")   # -> [Doc.to_dict(), ...]

`tag_texts` is what every engine calls on each partition. It ships no tagger: an onnxruntime session
cannot be pickled, so a partition carries the package path (and the sha256 of its manifest), and each
worker process opens the package once, checks that it is the same package, and keeps the `Tagger` for
every later partition (`worker_tagger`).

This module needs no engine: `ner_fast.dask` drives it on a Dask cluster.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ner_fast.engine import BATCH_SIZE

#: Documents per partition (`ner-fast tag --partition-size`): a partition is the unit that is retried and
#: written as one part, so it bounds the work a lost worker repeats and the memory a task holds.
PARTITION_SIZE = 1000
#: Seconds a scheduler has to answer before a run gives up on it (`ner-fast tag --scheduler-timeout`).
SCHEDULER_TIMEOUT = 10.0
#: JSON lines input: one JSON object a line, its document under `text_field` (blank lines skipped).
JSONL = "jsonl"
TEXT_FIELD = "text"
#: Pre-tokenized sentences a `tag_batch` call of `tag_sentences`: `pipe`'s (`engine.BATCH_SIZE`), large enough
#: for full batches in every bucket, small enough that their scores, held until written, stay small (and a
#: progress bar moves).
SENTENCES_A_CALL = BATCH_SIZE


# --------------------------------------------------------------------------- the partition function

_taggers: dict[tuple[str, str, int | None, str], tuple[Any, tuple[Any, ...] | None]] = {}
_taggers_lock = threading.Lock()


def _files_signature(folder: str) -> tuple[Any, ...] | None:
    """(name, inode, size, mtime) of each file of a package folder: what an edit in place changes. None
    where the folder cannot be read: `load_package` then says why, naming it (a package missing on a worker)."""
    files = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_file():
                    st = entry.stat()
                    files.append((entry.name, st.st_ino, st.st_size, st.st_mtime_ns))
    except OSError:
        return None
    return tuple(sorted(files))


def worker_tagger(package: str | os.PathLike[str] | None = None, checksum: str | None = None,
                  threads: int | None = 1, labels: dict[str, Any] | None = None) -> Any:
    """The `Tagger` of this process for `package`, opened (and its files verified) on first use, then kept
    while the package's files stay as they were (opened and verified again otherwise: onnxruntime maps the
    weights file, so a tagger kept over an edit in place tagged with the edited weights, unverified).

    `checksum` (`ner_fast.package.package_checksum` on the client) must match this machine's copy of
    the package: a worker never tags with a different model than the one the run was started with.
    Threads of one worker share the tagger (onnxruntime sessions are thread-safe). `package` None: the
    bundled default package. `labels`: the label map, resolved on the client (`LabelMap.to_json`: a
    label file need not exist on the workers); None: the package's labels.
    """
    from ner_fast.labels import LabelMap
    from ner_fast.package import PackageError, load_package, package_checksum, package_path
    from ner_fast.tagger import Tagger

    path = str(package_path(package).resolve())
    key = (path, checksum or "", threads, json.dumps(labels, sort_keys=True))
    signature = _files_signature(path)
    kept = _taggers.get(key)
    if kept is not None and signature is not None and kept[1] == signature:
        return kept[0]
    with _taggers_lock:  # two threads of one worker must not both load it
        if key not in _taggers or signature is None or _taggers[key][1] != signature:
            _taggers.pop(key, None)
            pkg = load_package(path)  # verifies every file against the manifest
            if checksum is not None and package_checksum(path) != checksum:
                raise PackageError(f"{path} on {os.uname().nodename} is not the package the run was started with")
            label_map = LabelMap.from_json(labels) if labels is not None else None
            _taggers[key] = (Tagger.load(pkg, device="cpu", threads=threads, labels=label_map), signature)
        return _taggers[key][0]


def tag_docs(
    texts: Iterable[str],
    package: str | os.PathLike[str] | None = None,
    checksum: str | None = None,
    threads: int | None = 1,
    batch_size: int | None = None,
    labels: dict[str, Any] | None = None,
) -> Iterator[Any]:
    """`Doc`s of `texts`, in order, from this process's tagger (`Tagger.pipe`; `batch_size` None: its default).
    TypeError for a text that is not a str: a missing value (None, NaN, pandas' NA) was tagged as the text
    "None", "nan" or "<NA>", and bytes as "b'...'"; and for `texts` that are not an ordered iterable
    (`engine.check_texts`: one str was tagged a character at a time, a DataFrame as its column names)."""
    from ner_fast.engine import check_texts

    check_texts(texts, "the partition function")
    listed = list(texts)
    index = texts.index if hasattr(texts, "iloc") else None  # a pandas Series names the row by its index label
    for i, text in enumerate(listed):
        if not isinstance(text, str):
            where = f"text {i} of the partition" if index is None else f"the text at index {index[i]!r}"
            raise TypeError(f"{where} is {type(text).__name__} {text!r}, not a str: drop or fill missing values"
                            " before tagging")
    tagger = worker_tagger(package, checksum, threads, labels)
    return tagger.pipe(listed, **({} if batch_size is None else {"batch_size": batch_size}))


def tag_texts(
    texts: Iterable[str],
    package: str | os.PathLike[str] | None = None,
    checksum: str | None = None,
    threads: int | None = 1,
    batch_size: int | None = None,
    labels: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The partition function: documents -> one `Doc.to_dict()` each, in order, with this process's tagger.

    Engine-neutral: a Dask bag partition, a pandas Series of a Spark `mapInPandas` batch or a plain list.
    `package` None: the bundled default package.
    """
    return [doc.to_dict() for doc in tag_docs(texts, package, checksum, threads, batch_size, labels)]


def tag_sentences(
    tagger: Any, sentences: list[list[str]], pos: list[list[str]] | None = None, batch_size: int | None = None
) -> Iterator[tuple[list[str], list[str], list[Any]]]:
    """(tokens, tags, entities) of each pre-tokenized sentence, in input order, `SENTENCES_A_CALL` sentences
    a `Tagger.tag_batch` call (`batch_size` None: its default): what `ner-fast tag` writes for tokens in,
    on one process or in a cluster run's parts. `pos`: their POS tags, for a model that reads them."""
    from ner_fast.doc import spans

    options = {} if batch_size is None else {"batch_size": batch_size}
    for start in range(0, len(sentences), SENTENCES_A_CALL):
        words = sentences[start : start + SENTENCES_A_CALL]
        part_pos = pos[start : start + SENTENCES_A_CALL] if (pos is not None and tagger.uses_pos) else None
        tags, probs = tagger.tag_batch(words, part_pos, proba=True, **options)
        for w, t, p in zip(words, tags, probs):
            yield w, t, spans(w, t, tagger.chosen_probabilities(t, p), tagger.scheme, tagger.label_map)


def sentence_json(tokens: list[str], tags: list[str], entities: list[Any]) -> str:
    """The JSON line of one tagged pre-tokenized sentence: its tokens, tags and entities, whose `start`
    and `end` are token indices (raw text in gives `Doc.to_json()`, with character offsets), encoded as
    documents are (`doc.json_line`: a line is always one sentence, whatever characters a token holds)."""
    from ner_fast.doc import SCORE_DIGITS, json_line

    found = [{"type": e.label, "start": e.token_start, "end": e.token_end, "text": e.text,
              "score": round(e.score, SCORE_DIGITS)} for e in entities]
    return json_line({"tokens": tokens, "tags": tags, "entities": found}).decode("utf-8")


# --------------------------------------------------------------------------- input, cut into partitions


@dataclass(frozen=True)
class Partition:
    """A bounded run of documents of one input file, and where its result goes (`part`).

    Raw text and JSON lines travel as a byte range (`start`, `stop`) that the worker reads itself,
    covering lines `first_line` .. `first_line + lines - 1` (ended by `ends`); corpus inputs travel as
    `texts` (their `first_line` and `lines` count sentences). `sha256` is the digest of those bytes (or
    texts): a worker refuses input that changed after the run was planned, and `--resume` redoes such a part.
    """

    index: int
    source: str
    format: str
    first_line: int
    lines: int
    documents: int
    sha256: str
    start: int = 0
    stop: int = 0
    ends: bytes = b"\n"
    sentences: tuple[tuple[str, ...], ...] | None = None
    text_field: str = TEXT_FIELD
    path: str = ""  # `source`'s absolute path, resolved when planned (on the client, not in a worker's folder)

    @property
    def part(self) -> str:
        """File name of the partition's output part."""
        return f"part-{self.index:05d}.jsonl"

    def describe(self) -> dict[str, Any]:
        """What the manifest records of the partition (`path`: its source file's absolute path: `--resume`
        knows a file by the path as typed or by this, so that `a.txt` and `/data/a.txt` are one file, and a
        folder moved with its inputs resumes)."""
        return {"part": self.part, "source": self.source, "path": self.path,
                "format": self.format, "first_line": self.first_line, "lines": self.lines,
                "documents": self.documents, "sha256": self.sha256}


def plan_partitions(
    paths: Iterable[str | os.PathLike[str]],
    input_format: str = "auto",
    text_field: str = TEXT_FIELD,
    size: int = PARTITION_SIZE,
) -> list[Partition]:
    """Cut the input files into partitions of at most `size` documents each, numbered across files in order.

    `input_format`: `text` (one document a line, blank lines too: `corpus.parse_documents`), `jsonl`, or
    a corpus format (`corpus.FORMATS`, `auto` being the one sniffer), whose sentences, tokens joined by
    single spaces (`doc.join_tokens`), are the documents. Text and JSON lines files are read once here,
    line by line, to find each partition's byte range, and parsed by the workers; corpus files are parsed
    here (a malformed one fails at once, naming its file and line). Every file has one partition at least:
    a file with no documents (an empty one) has one of none, so that its part exists, empty.
    """
    from ner_fast.corpus import FORMATS, TEXT

    if input_format not in (*FORMATS, TEXT, JSONL):
        raise ValueError(f"unknown input format {input_format!r} (choose from {', '.join((*FORMATS, TEXT, JSONL))})")
    if size < 1:
        raise ValueError(f"partition size must be at least 1, got {size}")
    partitions: list[Partition] = []
    seen: dict[tuple[int, int], Path] = {}
    for raw_path in paths:
        path = Path(raw_path)
        reread = input_format in (TEXT, JSONL)  # the workers read their byte ranges; a corpus travels as its sentences
        _check_input(path, seen, reread)
        if reread:
            found = _plan_lines(path, input_format, text_field, size, len(partitions))
        else:
            found = _plan_corpus(path, input_format, size, len(partitions))
        partitions.extend(replace(p, path=str(path.resolve())) for p in found)
    return partitions


def _check_input(path: Path, seen: dict[tuple[int, int], Path], reread: bool) -> None:
    """Refuse an input that is given twice (it would be tagged twice, into two parts; `seen` holds the
    files before it) and, where it is read again by the workers (`reread`: raw text, JSON lines), one that
    is not a regular file (a pipe or a device: read here to plan its partitions, it is empty for them)."""
    from ner_fast.errors import OptionError

    try:
        status = path.stat()
    except OSError as err:
        raise OptionError("INPUT", f"{path}: {err.strerror}") from None
    if reread and not stat.S_ISREG(status.st_mode):
        raise OptionError("INPUT", f"{path} is not a regular file: the inputs of a cluster run are read twice "
                                   "(planned here, tagged by the workers), so a pipe or device cannot be one")
    first = seen.setdefault((status.st_dev, status.st_ino), path)
    if first is not path:
        also = "" if str(first) == str(path) else f" (also as {first})"
        raise OptionError("INPUT", f"{path} is given twice{also}: each input is tagged once, into its own parts")


def is_document(line: bytes, fmt: str) -> bool:
    """Whether a line holds a document: every raw-text line does (output line i answers input line i);
    a JSON lines file may have blank lines."""
    return fmt != JSONL or bool(line.strip())


def _plan_lines(path: Path, fmt: str, text_field: str, size: int, first_index: int) -> list[Partition]:
    from ner_fast.corpus import UTF8_BOM, line_end

    found: list[Partition] = []
    with open(path, "rb") as f:
        ends = b"\n"
        while block := f.read(1 << 20):  # `corpus.line_end` of the whole file, without holding it
            ends = line_end(block) if ends == b"\n" or b"\n" in block else ends
            if b"\n" in block:
                break
        f.seek(0)
        # `f` iterates LF lines; a CR-only file is small and old: split it in memory.
        lines: Iterable[bytes] = f if ends == b"\n" else f.read().splitlines(keepends=True)
        digest = hashlib.sha256()
        start = offset = 0
        first_line = number = 1
        documents = 0
        for line in lines:
            bare = line[len(UTF8_BOM) :] if number == 1 and line.startswith(UTF8_BOM) else line
            document = bare != b"" and is_document(bare, fmt)  # a byte-order mark alone is no line
            if documents == size and document:  # a full partition ends before the next document
                found.append(Partition(first_index + len(found), str(path), fmt, first_line, number - first_line,
                                       documents, digest.hexdigest(), start, offset, ends, None, text_field))
                digest, start, first_line, documents = hashlib.sha256(), offset, number, 0
            digest.update(line)
            offset += len(line)
            number += 1
            documents += document
    if documents or not found:  # the last partition; an empty file's, of no documents
        found.append(Partition(first_index + len(found), str(path), fmt, first_line, number - first_line,
                               documents, digest.hexdigest(), start, offset, ends, None, text_field))
    return found


def _plan_corpus(path: Path, fmt: str, size: int, first_index: int) -> list[Partition]:
    from ner_fast.corpus import read_corpus

    corpus = read_corpus(path, fmt, empty_ok=True)  # an empty file: one partition of no documents
    bounds = zip(corpus.offsets[:-1].tolist(), corpus.offsets[1:].tolist())
    sentences = [tuple(corpus.words[a:b]) for a, b in bounds]  # tagged as the tokens they are, never re-tokenized
    found = []
    for k, at in enumerate(range(0, max(len(sentences), 1), size)):
        chunk = tuple(sentences[at : at + size])
        digest = hashlib.sha256(json.dumps(chunk, ensure_ascii=False).encode("utf-8")).hexdigest()
        found.append(Partition(first_index + k, str(path), corpus.format, at + 1, len(chunk), len(chunk), digest,
                               sentences=chunk))
    return found


def read_partition(part: Partition) -> list[str]:
    """The documents of a raw-text or JSON lines partition (on the worker): its byte range read back,
    checked against its digest and parsed; a malformed line raises CorpusError naming its file and line.
    (A corpus partition carries its `sentences`.)"""
    from ner_fast.corpus import CorpusError, parse_documents

    if part.sentences is not None:
        raise ValueError(f"{part.part} holds pre-tokenized sentences, not documents")
    with open(part.path or part.source, "rb") as f:  # resolved on the client: a worker may run in another folder
        f.seek(part.start)
        raw = f.read(part.stop - part.start)
    if hashlib.sha256(raw).hexdigest() != part.sha256:
        raise CorpusError(f"changed since the run was planned (lines {part.first_line}-{part.first_line + part.lines - 1})",
                          part.source)
    lines = parse_documents(raw, part.source, first_line=part.first_line, ends=part.ends)
    if part.format != JSONL:
        return lines
    return [_json_text(line, part.source, number, part.text_field)
            for number, line in enumerate(lines, part.first_line) if line.strip()]


def _json_text(line: str, source: str, number: int, text_field: str) -> str:
    """The document of one JSON line: an object whose `text_field` is a string."""
    import json

    from ner_fast.corpus import CorpusError
    from ner_fast.text import check_text

    from ner_fast.errors import json_error

    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:  # where in the line and why, as every "not valid JSON" says it
        raise CorpusError(f"not a JSON object (not valid JSON: {json_error(err)})", source, number) from None
    if not isinstance(value, dict) or not isinstance(value.get(text_field), str):
        raise CorpusError(f"expected a JSON object with a string field {text_field!r}", source, number)
    try:  # a "\\ud800" escape is valid JSON but no text: refused here, where its line is known
        check_text(value[text_field])
    except ValueError as err:
        raise CorpusError(f"{text_field!r}: {err}", source, number) from None
    return value[text_field]


# --------------------------------------------------------------------------- a partition, tagged and written


def tag_partition(
    part: Partition,
    out_dir: str | os.PathLike[str],
    package: str | os.PathLike[str] | None = None,
    checksum: str | None = None,
    threads: int | None = 1,
    batch_size: int | None = None,
    labels: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read, tag and write one partition as `out_dir/<part.part>`, whole or not at all (write, then rename).

    Idempotent: the same partition tagged twice (a retry after a lost worker) writes the same bytes to
    the same name. Returns what the manifest records of the done part, with the sha256 of the part's
    bytes (`part_sha256`: `--resume` redoes a part whose file no longer has it).
    """
    from ner_fast.atomic import atomic_open

    documents = 0
    digest = hashlib.sha256()
    if part.sentences is not None:  # the lines `ner-fast tag FILE --output-format jsonl` writes for them
        tagger = worker_tagger(package, checksum, threads, labels)
        lines = (sentence_json(*item) for item in tag_sentences(tagger, [list(s) for s in part.sentences], None, batch_size))
    else:  # the line `ner-fast tag --input-format text` writes
        lines = (doc.to_json() for doc in tag_docs(read_partition(part), package, checksum, threads, batch_size, labels))
    with atomic_open(Path(out_dir) / part.part, "wb") as out:
        for text in lines:
            line = (text + "\n").encode("utf-8")
            out.write(line)
            digest.update(line)
            documents += 1
    return {**part.describe(), "documents": documents, "part_sha256": digest.hexdigest()}


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    """The sha256 of a file's bytes (`package.sha256_file`); None when it cannot be read."""
    from ner_fast.package import sha256_file

    try:
        return sha256_file(Path(path))
    except OSError:
        return None
