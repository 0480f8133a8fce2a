"""Tagging in partitions, for any engine that runs Python functions on lists of documents (Dask, Spark,
Ray, multiprocessing): the engine-neutral partition function, the per-process tagger cache, input
files cut into partitions, and the output folder of JSON lines parts with its manifest.

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
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Documents per partition (`ner-fast tag --partition-size`): a partition is the unit that is retried and
#: written as one part, so it bounds the work a lost worker repeats and the memory a task holds.
PARTITION_SIZE = 1000
#: Input formats of a partitioned run: `text` one document a line, `jsonl` one JSON object a line (its
#: text under `text_field`), the corpus formats (`gmb`, `conll`: each sentence, its tokens joined by
#: spaces, is a document) and `auto` (the corpus sniffer decides between text and the corpus formats).
INPUT_FORMATS = ("auto", "text", "jsonl", "gmb", "conll")
TEXT_FIELD = "text"
#: Sentences per onnxruntime run inside a partition.
BATCH_SIZE = 64
_UTF8_BOM = b"\xef\xbb\xbf"


# --------------------------------------------------------------------------- the partition function

_taggers: dict[tuple[str, str, int | None], Any] = {}
_taggers_lock = threading.Lock()


def worker_tagger(package: str | os.PathLike[str], checksum: str | None = None, threads: int | None = 1) -> Any:
    """The `Tagger` of this process for `package`, opened (and its files verified) on first use, then kept.

    `checksum` (`ner_fast.package.package_checksum` on the client) must match this machine's copy of
    the package: a worker never tags with a different model than the one the run was started with.
    Threads of one worker share the tagger (onnxruntime sessions are thread-safe).
    """
    from ner_fast.package import PackageError, load_package, package_checksum
    from ner_fast.tagger import Tagger

    path = str(Path(package).resolve())
    key = (path, checksum or "", threads)
    tagger = _taggers.get(key)
    if tagger is not None:
        return tagger
    with _taggers_lock:  # two threads of one worker must not both load it
        if key not in _taggers:
            pkg = load_package(path)  # verifies every file against the manifest
            if checksum is not None and package_checksum(path) != checksum:
                raise PackageError(f"{path} on {os.uname().nodename} is not the package the run was started with")
            _taggers[key] = Tagger.load(pkg, device="cpu", threads=threads)
        return _taggers[key]


def tag_texts(
    texts: Iterable[str],
    package: str | os.PathLike[str],
    checksum: str | None = None,
    threads: int | None = 1,
    batch_size: int = BATCH_SIZE,
) -> list[dict[str, Any]]:
    """The partition function: documents -> one JSON-ready dict each, in order, with this process's tagger.

    Engine-neutral: a Dask bag partition, a pandas Series of a Spark `mapInPandas` batch or a plain list.
    """
    tagger = worker_tagger(package, checksum, threads)
    texts = [str(t) for t in texts]
    sentences = [t.split() for t in texts]
    tags = tagger.tag_batch(sentences, batch_size=batch_size) if sentences else []
    return [{"text": t, "tokens": s, "tags": g} for t, s, g in zip(texts, sentences, tags)]


def json_line(doc: dict[str, Any]) -> str:
    """One output line for a tagged document."""
    import json

    return json.dumps(doc, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- input, cut into partitions


@dataclass(frozen=True)
class Partition:
    """A bounded run of documents of one input file, and where its result goes (`part`).

    Text and JSON lines inputs travel as a byte range (`start`, `stop`) that the worker reads itself,
    covering lines `first_line` .. `first_line + lines - 1`; corpus inputs travel as `texts` (their
    `first_line` and `lines` count sentences). `sha256` is the digest of those bytes (or texts): a
    worker refuses input that changed after the run was planned, and `--resume` redoes such a part.
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
    texts: tuple[str, ...] | None = None
    text_field: str = TEXT_FIELD

    @property
    def part(self) -> str:
        """File name of the partition's output part."""
        return f"part-{self.index:05d}.jsonl"

    def describe(self) -> dict[str, Any]:
        """What the manifest records of the partition."""
        return {"part": self.part, "source": self.source, "format": self.format, "first_line": self.first_line,
                "lines": self.lines, "documents": self.documents, "sha256": self.sha256}


def resolve_format(path: Path, fmt: str) -> str:
    """The format of one input: `fmt`, or for `auto` what the corpus sniffer says (its one-sentence-a-line
    answer means one document a line here). JSON lines are never guessed: ask for `jsonl`."""
    from ner_fast.cli.tag import detect_format

    if fmt not in INPUT_FORMATS:
        raise ValueError(f"unknown input format {fmt!r} (choose from {', '.join(INPUT_FORMATS)})")
    if fmt != "auto":
        return fmt
    if path.suffix.lower() == ".zip":
        return "gmb"  # the corpus reader opens a zip's single member
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    found = detect_format(head)
    return "text" if found == "tokens" else found


def is_blank(line: bytes) -> bool:
    """A line that holds no document (only ASCII whitespace): skipped by the planner and the worker alike."""
    return not line.strip()


def plan_partitions(
    paths: Iterable[str | os.PathLike[str]],
    input_format: str = "auto",
    text_field: str = TEXT_FIELD,
    size: int = PARTITION_SIZE,
) -> list[Partition]:
    """Cut the input files into partitions of at most `size` documents each, numbered across files in order.

    Text and JSON lines files are read once, line by line, to find the byte range of every partition;
    their content is parsed by the workers. Corpus files are parsed here (a malformed one fails at once,
    with its file and line).
    """
    if size < 1:
        raise ValueError(f"partition size must be at least 1, got {size}")
    partitions: list[Partition] = []
    for raw_path in paths:
        path = Path(raw_path)
        fmt = resolve_format(path, input_format)
        if fmt in ("text", "jsonl"):
            found = _plan_lines(path, fmt, text_field, size, len(partitions))
        else:
            found = _plan_corpus(path, fmt, size, len(partitions))
        partitions.extend(found)
    return partitions


def _plan_lines(path: Path, fmt: str, text_field: str, size: int, first_index: int) -> list[Partition]:
    found: list[Partition] = []
    digest = hashlib.sha256()
    start = offset = 0
    first_line = line_number = 1
    documents = 0

    def close() -> None:
        found.append(Partition(first_index + len(found), str(path), fmt, first_line, line_number - first_line,
                               documents, digest.hexdigest(), start, offset, None, text_field))

    with open(path, "rb") as f:
        for line in f:
            if line_number == 1 and line.startswith(_UTF8_BOM):  # as the worker reads it (`parse_lines`)
                line = line[len(_UTF8_BOM) :]
                offset += len(_UTF8_BOM)
                digest.update(_UTF8_BOM)
            if documents == size and not is_blank(line):  # a full partition ends before the next document
                close()
                digest, start, first_line, documents = hashlib.sha256(), offset, line_number, 0
            digest.update(line)
            offset += len(line)
            line_number += 1
            documents += not is_blank(line)
    if documents:
        close()
    return found


def _plan_corpus(path: Path, fmt: str, size: int, first_index: int) -> list[Partition]:
    from ner_fast.corpus import read_corpus

    corpus = read_corpus(path, fmt)
    texts = [" ".join(corpus.words[a:b]) for a, b in zip(corpus.offsets[:-1].tolist(), corpus.offsets[1:].tolist())]
    found = []
    for k, at in enumerate(range(0, len(texts), size)):
        chunk = tuple(texts[at : at + size])
        digest = hashlib.sha256("\n".join(chunk).encode("utf-8")).hexdigest()
        found.append(Partition(first_index + k, str(path), fmt, at + 1, len(chunk), len(chunk), digest, texts=chunk))
    return found


def read_partition(part: Partition) -> list[str]:
    """The documents of a partition (on the worker): its byte range read back, checked against its
    digest and parsed; a malformed line raises CorpusError naming its file and line."""
    from ner_fast.corpus import CorpusError

    if part.texts is not None:
        return list(part.texts)
    with open(part.source, "rb") as f:
        f.seek(part.start)
        raw = f.read(part.stop - part.start)
    if hashlib.sha256(raw).hexdigest() != part.sha256:
        raise CorpusError(f"changed since the run was planned (lines {part.first_line}-{part.first_line + part.lines - 1})",
                          part.source)
    return list(parse_lines(raw, part.source, part.first_line, part.format, part.text_field))


def parse_lines(raw: bytes, source: str, first_line: int, fmt: str, text_field: str = TEXT_FIELD) -> Iterator[str]:
    """Documents of `raw` (whole lines of a text or JSON lines file starting at line `first_line`).

    Blank lines hold no document. UTF-8 only (a byte-order mark at the start of the file is dropped);
    a JSON line must be an object whose `text_field` is a string.
    """
    import json

    from ner_fast.corpus import CorpusError

    if first_line == 1 and raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]
    for number, line in enumerate(raw.split(b"\n"), first_line):
        if is_blank(line):
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorpusError(f"byte 0x{line[err.start]:02x} is not valid UTF-8", source, number) from None
        if fmt == "text":
            yield text.rstrip("\r")
            continue
        try:
            value = json.loads(text)
        except ValueError as err:
            raise CorpusError(f"not a JSON object ({err})", source, number) from None
        if not isinstance(value, dict) or not isinstance(value.get(text_field), str):
            raise CorpusError(f"expected a JSON object with a string field {text_field!r}", source, number)
        yield value[text_field]


# --------------------------------------------------------------------------- a partition, tagged and written


def tag_partition(
    part: Partition,
    out_dir: str | os.PathLike[str],
    package: str | os.PathLike[str],
    checksum: str | None = None,
    threads: int | None = 1,
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """Read, tag and write one partition as `out_dir/<part.part>`, whole or not at all (write, then rename).

    Idempotent: the same partition tagged twice (a retry after a lost worker) writes the same bytes to
    the same name. Returns what the manifest records of the done part.
    """
    from ner_fast.atomic import atomic_open

    docs = tag_texts(read_partition(part), package, checksum, threads, batch_size)
    with atomic_open(Path(out_dir) / part.part, "w", encoding="utf-8") as out:
        out.writelines(json_line(d) for d in docs)
    return {**part.describe(), "documents": len(docs)}
