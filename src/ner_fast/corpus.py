"""Reading tagged corpora into a ragged `Corpus` (flat token lists plus sentence offsets).

Two formats are understood:

- ``gmb``: the GMB-derived CSV the tutorial uses (``Sentence #,Word,POS,Tag``; the sentence
  number only on a sentence's first row; quoted fields, each on one line; CRLF or LF). Columns
  are found by their header names (``sentence...``, ``word``, ``pos`` (optional), ``tag``). The
  file is decoded as UTF-8 when it is valid UTF-8, else as cp1252 (the shipped GMB file is
  cp1252: its bytes 0x85 and 0x91-0x97 are punctuation, not the latin-1 control characters the
  tutorial reads). No value is ever turned into a missing value: the word ``None`` stays "None".
- ``conll``: whitespace (space/tab) separated columns, a blank line between sentences,
  ``-DOCSTART-`` lines skipped; the word is the first column and the tag the last; with three or
  more columns the second one is the POS tag (CoNLL-2002/2003), two columns mean no POS.
  UTF-8 only. IOB1 tags are rewritten as IOB2 (an ``I-X`` that does not continue an ``X`` entity
  becomes ``B-X``).

``auto`` picks ``gmb`` when the first line is a comma-separated header naming a word and a tag
column, else ``conll``. A ``.zip`` path is read through its single member. Malformed input raises
`CorpusError`, whose message names the file and the line.
"""
from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ner_fast import _kernels

FORMATS = ("auto", "gmb", "conll")
_UTF8_BOM = b"\xef\xbb\xbf"


class CorpusError(ValueError):
    """Malformed or unreadable corpus; the message starts with ``file:line:``."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message)


@dataclass(frozen=True)
class Sentence:
    """One sentence's tokens (POS and tags are None where the corpus has none)."""

    words: list[str]
    pos: list[str] | None
    tags: list[str] | None


@dataclass
class Corpus:
    """Sentences stored ragged: flat per-token lists and `offsets` (int64, n_sentences + 1).

    Sentence ``i`` is tokens ``offsets[i]:offsets[i + 1]``.
    """

    words: list[str]
    pos: list[str] | None
    tags: list[str] | None
    offsets: np.ndarray
    source: str = "<memory>"
    format: str = "memory"

    def __post_init__(self) -> None:
        self.offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        n = len(self.words)
        if self.offsets.ndim != 1 or len(self.offsets) == 0 or self.offsets[0] != 0 or self.offsets[-1] != n:
            raise ValueError(f"offsets must run from 0 to the number of tokens ({n})")
        if np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must not decrease")
        for name in ("pos", "tags"):
            column = getattr(self, name)
            if column is not None and len(column) != n:
                raise ValueError(f"{name} has {len(column)} entries for {n} words")

    @classmethod
    def from_sentences(
        cls,
        sentences: Sequence[Sequence[str]],
        pos: Sequence[Sequence[str]] | None = None,
        tags: Sequence[Sequence[str]] | None = None,
        source: str = "<memory>",
    ) -> Corpus:
        """Build a corpus from token lists (and optionally parallel POS / tag lists)."""
        lengths = [len(s) for s in sentences]
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])

        def flat(column: Sequence[Sequence[str]] | None, name: str) -> list[str] | None:
            if column is None:
                return None
            if len(column) != len(sentences) or any(len(a) != n for a, n in zip(column, lengths)):
                raise ValueError(f"{name} must have one entry per token of every sentence")
            return [str(x) for sent in column for x in sent]

        words = [str(w) for sent in sentences for w in sent]
        return cls(words, flat(pos, "pos"), flat(tags, "tags"), offsets, source, "memory")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_tokens(self) -> int:
        """Number of tokens over all sentences."""
        return len(self.words)

    @property
    def lengths(self) -> np.ndarray:
        """Sentence lengths, int64 (n_sentences,)."""
        return np.diff(self.offsets)

    @property
    def has_pos(self) -> bool:
        """Whether the corpus has POS tags."""
        return self.pos is not None

    def sentence(self, i: int) -> Sentence:
        """Sentence ``i`` (negative indices count from the end)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sentence {i} out of range for {len(self)} sentences")
        i %= len(self)
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return Sentence(
            self.words[a:b],
            None if self.pos is None else self.pos[a:b],
            None if self.tags is None else self.tags[a:b],
        )

    def __getitem__(self, key: slice) -> Corpus:
        """A slice of sentences as a new corpus (contiguous, so cheap)."""
        if not isinstance(key, slice):
            raise TypeError("index a Corpus with a slice; use sentence(i) for one sentence")
        start, stop, step = key.indices(len(self))
        if step != 1:
            return self.subset(range(start, stop, step))
        stop = max(start, stop)
        a, b = int(self.offsets[start]), int(self.offsets[stop])
        return Corpus(
            self.words[a:b],
            None if self.pos is None else self.pos[a:b],
            None if self.tags is None else self.tags[a:b],
            self.offsets[start : stop + 1] - a,
            self.source,
            self.format,
        )

    def subset(self, indices: Iterable[int]) -> Corpus:
        """The sentences at `indices`, in that order, as a new corpus."""
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"sentence index out of range for {len(self)} sentences")
        idx %= max(len(self), 1)
        starts, stops = self.offsets[idx], self.offsets[idx + 1]
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(stops - starts, out=offsets[1:])

        def take(column: list[str] | None) -> list[str] | None:
            if column is None:
                return None
            out: list[str] = []
            for a, b in zip(starts.tolist(), stops.tolist()):
                out.extend(column[a:b])
            return out

        return Corpus(take(self.words), take(self.pos), take(self.tags), offsets, self.source, self.format)


def bundled_corpus_path() -> Path:
    """The GMB corpus shipped inside the package (a zip holding ``ner_dataset.csv``)."""
    return Path(__file__).resolve().parent / "data" / "ner_dataset.csv.zip"


def read_corpus(path: str | Path | None = None, format: str = "auto") -> Corpus:
    """Read a corpus file (``None``: the bundled GMB corpus) in `format` (auto, gmb or conll)."""
    raw, source = _read_bytes(bundled_corpus_path() if path is None else Path(path))
    return parse_corpus(raw, source, format)


def parse_corpus(raw: bytes, source: str, format: str = "auto") -> Corpus:
    """Parse a corpus from its bytes (auto, gmb or conll); `source` names it in errors."""
    fmt = "gmb" if format == "csv" else format
    if fmt not in FORMATS:
        raise CorpusError(f"unknown format {format!r} (choose from {', '.join(FORMATS)})", source)
    if raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]
    if not raw.strip():
        raise CorpusError("empty file", source, 1)
    if fmt == "auto":
        fmt = _detect(raw, source)
    if fmt == "gmb":
        return _read_gmb(raw, source)
    return _read_conll(raw, source)


def _read_bytes(path: Path) -> tuple[bytes, str]:
    """The file's bytes (a zip's single member) and the name errors should give."""
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise CorpusError(f"a corpus zip must hold exactly one file, found {len(members)}", str(path))
                return archive.read(members[0]), f"{path}[{members[0].filename}]"
        return path.read_bytes(), str(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise CorpusError(f"cannot read: {err}", str(path)) from err


def _detect(raw: bytes, source: str) -> str:
    """``gmb`` for a CSV header naming word and tag columns, ``conll`` for >= 2 columns."""
    lines = raw.split(b"\n", 64)
    first = lines[0].decode("latin-1").strip()
    header = [h.strip().lower() for h in first.split(",")]
    if len(header) >= 3 and "word" in header and "tag" in header:
        return "gmb"
    for number, line in enumerate(lines[:64], 1):
        text = line.decode("latin-1").strip()
        if not text:
            continue
        if text.split()[0] == "-DOCSTART-" or len(text.split()) >= 2:
            return "conll"
        raise CorpusError(
            "unknown format: neither a GMB CSV header (Sentence #,Word,POS,Tag) nor CoNLL columns",
            source,
            number,
        )
    raise CorpusError("unknown format: no data in the first lines", source, 1)


def _line_of(raw: bytes, position: int) -> int:
    """1-based line number of a byte offset."""
    return raw.count(b"\n", 0, position) + 1


# --------------------------------------------------------------------------- GMB CSV


def _read_gmb(raw: bytes, source: str) -> Corpus:
    """Parse the GMB CSV.

    Speed matters here (a million rows). One compiled pass (`parse_csv`) splits every row into
    fields (quoted ones included; a quoted field may not span lines), reporting a row with the
    wrong number of fields at its line, and numbers the distinct values of the word, tag and POS
    columns, which are then decoded and unquoted once each.
    """
    encoding = _encoding_of(raw)
    header_end = raw.find(b"\n")
    header_bytes = raw[: header_end if header_end >= 0 else len(raw)].rstrip(b"\r")
    header = next(csv.reader([_decode(header_bytes, encoding, raw, source)]))
    names = [h.strip().lower() for h in header]
    ncols = len(names)
    try:
        word_col, tag_col = names.index("word"), names.index("tag")
        sent_col = next(i for i, n in enumerate(names) if n.startswith("sentence"))
    except (ValueError, StopIteration):
        raise CorpusError(
            f"GMB CSV header must name Sentence, Word and Tag columns, found {header}", source, 1
        ) from None
    pos_col = names.index("pos") if "pos" in names else None
    body = raw[header_end + 1 :].rstrip(b"\r\n") if header_end >= 0 else b""
    if not body:
        raise CorpusError("no sentences after the header", source, 2)

    # Words, tags and POS all repeat (GMB: 35k distinct words among 1M tokens): decoding each
    # distinct value once and sharing the str objects beats creating a string per token, and
    # makes every later pass over the tokens cache-friendly.
    cat_cols = [word_col, tag_col] + ([pos_col] if pos_col is not None else [])
    new_sentence, cat_ids, cat_bounds, bad = _kernels.parse_csv(body, ncols, sent_col, cat_cols)
    if bad is not None:
        row, n_fields = bad
        if n_fields < 0:
            raise CorpusError("bad CSV quoting (a quoted field must close on its line)", source, row + 2)
        raise CorpusError(f"expected {ncols} fields, found {n_fields}", source, row + 2)

    def column(k: int) -> list[str]:
        # Rows hold no '\n', so the distinct raw values decode in one go, joined by newlines.
        joined = b"\n".join([body[a:b] for a, b in cat_bounds[k].tolist()])
        values = [
            v[1:-1].replace('""', '"') if v.startswith('"') else v
            for v in _decode(joined, encoding, raw, source).split("\n")
        ]
        return np.array(values, dtype=object)[cat_ids[k]].tolist()

    words, tags = column(0), column(1)
    pos = column(2) if pos_col is not None else None

    if not new_sentence[0]:
        raise CorpusError("the first row has no sentence number", source, 2)
    for name, values in (("word", words), ("tag", tags), ("POS", pos)):
        if values is not None and "" in values:
            raise CorpusError(f"empty {name}", source, values.index("") + 2)
    offsets = np.append(np.flatnonzero(new_sentence), len(words)).astype(np.int64)
    return Corpus(words, pos, tags, offsets, source, "gmb")


def _encoding_of(raw: bytes) -> str:
    """UTF-8 when the bytes are valid UTF-8, else cp1252 (checked when decoding)."""
    if raw.isascii():
        return "ascii"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _decode(data: bytes, encoding: str, raw: bytes, source: str) -> str:
    """Decode part of a file; on failure, report the offending byte and line of the whole file."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        try:
            raw.decode(encoding)
        except UnicodeDecodeError as err:
            raise CorpusError(
                f"byte 0x{raw[err.start]:02x} is neither UTF-8 nor cp1252", source, _line_of(raw, err.start)
            ) from None
        raise  # unreachable: a part fails only where the whole file does


# --------------------------------------------------------------------------- CoNLL

_COLUMN_SPLIT = re.compile(r"[ \t]+")


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """Rewrite one sentence's IOB1 tags as IOB2 (IOB2 input comes back unchanged)."""
    out: list[str] = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag if tag[:2] in ("B-", "I-") else "O"
    return out


def _read_conll(raw: bytes, source: str) -> Corpus:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"byte 0x{raw[err.start]:02x} is not valid UTF-8", source, _line_of(raw, err.start)
        ) from None
    words: list[str] = []
    pos: list[str] = []
    tags: list[str] = []
    offsets = [0]
    sentence_tags: list[str] = []
    ncols = 0

    def end_sentence() -> None:
        if sentence_tags:
            tags.extend(iob1_to_iob2(sentence_tags))
            sentence_tags.clear()
            offsets.append(len(words))

    for number, line in enumerate(text.split("\n"), 1):
        line = line.strip(" \t\r")
        if not line:
            end_sentence()
            continue
        columns = _COLUMN_SPLIT.split(line)
        if columns[0] == "-DOCSTART-":
            end_sentence()
            continue
        if ncols == 0:
            ncols = len(columns)
            if ncols < 2:
                raise CorpusError("a CoNLL line needs at least a word and a tag column", source, number)
        elif len(columns) != ncols:
            raise CorpusError(f"expected {ncols} columns, found {len(columns)}", source, number)
        words.append(columns[0])
        sentence_tags.append(columns[-1])
        if ncols >= 3:
            pos.append(columns[1])
    end_sentence()
    if not words:
        raise CorpusError("no sentences found", source, 1)
    return Corpus(words, pos if ncols >= 3 else None, tags, np.asarray(offsets, dtype=np.int64), source, "conll")
