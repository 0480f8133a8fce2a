"""Reading tagged corpora into a ragged `Corpus` (flat token lists plus sentence offsets).

Two formats are understood:

- ``gmb``: the GMB-derived CSV the tutorial uses (``Sentence #,Word,POS,Tag``; the sentence
  number only on a sentence's first row; quoted fields, each on one line; CRLF or LF). Columns
  are found by their header names (``sentence...``, ``word``, ``pos`` (optional), ``tag``). The
  file is decoded as UTF-8 when it is valid UTF-8, else as cp1252 (the shipped GMB file is
  cp1252: its bytes 0x85 and 0x91-0x97 are punctuation, not the latin-1 control characters the
  tutorial reads); one with a UTF-8 byte-order mark must be UTF-8, and one of more UTF-8 characters
  than bytes that are not UTF-8 (a UTF-8 file with a stray byte) is refused. No value is ever turned
  into a missing value: the word ``None`` stays "None".
  IOB1 tags are rewritten as IOB2, as for CoNLL.
- ``conll``: whitespace (space/tab) separated columns, a blank line between sentences,
  ``-DOCSTART-`` lines skipped; the word is the first column and the tag the last; with three or
  more columns the second one is the POS tag (CoNLL-2002/2003), two columns mean no POS.
  UTF-8 only. IOB1 tags are rewritten as IOB2 (an ``I-X`` that does not continue an ``X`` entity
  becomes ``B-X``).

- ``tokens``: one pre-tokenized sentence a line, tokens separated by spaces or tabs, blank lines
  skipped; no POS, no tags (what `ner-fast tag` reads besides the tagged formats). UTF-8.

Raw text (`TEXT`, what `ner-fast tag --input-format text` reads) is not a corpus: `parse_documents`
returns its documents as strings (one a line, or the whole input as one) for `ner_fast.text` to
tokenize. It is never sniffed: give it by name.

Every reader accepts LF, CRLF and CR-only line ends (a file with CRs and no LF is read as CR
lines) and a UTF-8 byte-order mark. A ``.zip`` path is read through its single member.

An input with no content (no bytes, or only whitespace) is an error, ``FILE:1: empty file``, for a
corpus read to learn from or score (prepare, train, evaluate); what tags it (`ner-fast tag`) asks for
`empty_ok` and gets a corpus of no sentences: nothing to tag. Raw text is only ever tagged:
`parse_documents` reads an empty input as no documents.

``auto`` is `sniff.sniff_format`, the one format sniffer of every command (its rules are there).

Malformed input raises `CorpusError`, whose message names the file and the line.
"""
from __future__ import annotations

import csv
import itertools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ner_fast import _csv
from ner_fast.errors import CorpusError
from ner_fast.schemes import TagScheme, begin, iob1_starts, iob1_to_iob2, is_tag, not_a_tag
from ner_fast.sniff import COLUMN_SPLIT, conll_width, format_of_name, gmb_columns, is_gmb_header, leading_rows, sniff_format
from ner_fast.text import TOKEN_RULE, blank_token

#: The `Corpus.format` of a corpus built in memory (`Corpus.from_sentences`): read from no file, so in no
#: input format.
MEMORY = "memory"
#: The `source` of a corpus built in memory (no file: nothing to resolve, record or read again).
MEMORY_SOURCE = "<memory>"
#: Every input format (`auto`: sniffed by `sniff.sniff_format`).
FORMATS = ("auto", "gmb", "conll", "tokens")
#: The formats that carry tags (what prepare, train and evaluate read).
TAGGED_FORMATS = ("auto", "gmb", "conll")
#: Raw text, one document a line (`parse_documents`); never sniffed.
TEXT = "text"
#: What `ner-fast tag` reads: the corpus formats and raw text.
TAG_FORMATS = (*FORMATS, TEXT)
#: The UTF-8 byte order mark (Windows tools write one): skipped before the first line by every reader of
#: our inputs (corpora, raw text, JSON lines, a server request's body).
UTF8_BOM = b"\xef\xbb\xbf"


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
    source: str = MEMORY_SOURCE
    format: str = MEMORY
    #: Each token's 1-based line in `source` (int64, n_tokens), where the corpus was read from a file.
    lines: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        n = len(self.words)
        if self.lines is not None:
            self.lines = np.ascontiguousarray(self.lines, dtype=np.int64)
            if self.lines.shape != (n,):
                raise ValueError(f"lines has {self.lines.shape} entries for {n} words")
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
        sentences: Iterable[Sequence[str]],
        pos: Iterable[Sequence[str]] | None = None,
        tags: Iterable[Sequence[str]] | None = None,
        source: str = MEMORY_SOURCE,
    ) -> Corpus:
        """Build a corpus from token lists (and optionally parallel POS / tag lists), checked as the file
        readers check theirs: tokens, POS tags and tags must be str (TypeError), no token blank, every tag O
        or PREFIX-TYPE (ValueError naming the sentence and token), and IOB1 tags rewritten as IOB2 (an I-X
        that does not continue an X entity becomes B-X): a corpus in memory trained to F1 0 on IOB1 tags
        that the same file trained on to 1.0, and took None or b'John' as the words 'None' and "b'John'"."""
        columns = [None if c is None else [_listed(s, name, i) for i, s in enumerate(_listed(c, name))]
                   for c, name in ((sentences, "sentences"), (pos, "pos"), (tags, "tags"))]
        lengths = [len(s) for s in columns[0] or []]
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])

        def at(token: int) -> str:
            sentence = int(np.searchsorted(offsets, token, side="right")) - 1
            return f"{source}: sentence {sentence}, token {token - int(offsets[sentence])}"

        flat: list[list[str] | None] = []
        for column, name in zip(columns, ("token", "POS tag", "tag")):
            if column is not None and [len(s) for s in column] != lengths:
                raise ValueError(f"{name}s must have one entry per token of every sentence")
            values = None if column is None else [x for s in column for x in s]
            odd = next((i for i, x in enumerate(values or []) if not isinstance(x, str)), None)
            if odd is not None:
                raise TypeError(f"{at(odd)}: the {name} {values[odd]!r} ({type(values[odd]).__name__}) is not a str")
            flat.append(values)
        words, pos_flat, tag_flat = flat
        blank = blank_token(words)
        if blank is not None:
            raise ValueError(f"{at(blank)}: word {words[blank]!r}: {TOKEN_RULE}")
        if tag_flat is not None:
            bad = next((i for i, t in enumerate(tag_flat) if not is_tag(t)), None)
            if bad is not None:
                raise ValueError(f"{at(bad)}: {not_a_tag(tag_flat[bad])}")
            tag_flat = iob1_to_iob2(tag_flat, np.asarray(lengths, dtype=np.int64))
        return cls(words, pos_flat, tag_flat, offsets, source, MEMORY)

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

    def line_of(self, token: int) -> int | None:
        """The 1-based line of flat token `token` in `source` (None for a corpus built in memory)."""
        return None if self.lines is None else int(self.lines[token])

    def rewritten_note(self, token: int) -> str:
        """For an error message naming flat token `token`'s tag: a note that the tag was read as IOB2, when
        it is a B- tag and its line in the file says I- (the readers rewrite IOB1); else ""."""
        tag, line = self.tags[token] if self.tags else "", self.line_of(token)
        if not tag.startswith("B-") or line is None:
            return ""
        try:
            with open(self.source, encoding="utf-8", errors="replace") as f:
                held = next(itertools.islice(f, line - 1, None), "")
        except OSError:  # a zip member ("x.zip[y.conll]") or a file gone since: no note
            return ""
        return " (tags are read as IOB2: an entity's first I- is a B-)" if "I-" + tag[2:] in held else ""

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
            None if self.lines is None else self.lines[a:b],
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

        lines = None
        if self.lines is not None:
            lines = np.concatenate([self.lines[a:b] for a, b in zip(starts.tolist(), stops.tolist())] or [np.zeros(0, np.int64)])
        return Corpus(take(self.words), take(self.pos), take(self.tags), offsets, self.source, self.format, lines)


def _listed(items: Any, name: str, sentence: int | None = None) -> list[Any]:
    """`items` (a sequence or any iterable) as a list; a str is refused (TypeError): as a sentence it was split
    into characters."""
    if isinstance(items, (str, bytes)):
        where = f"{name}: sentence {sentence} is" if sentence is not None else f"{name} is"
        raise TypeError(f"{where} a {type(items).__name__}, not a list of tokens")
    return list(items)


def bundled_corpus_path() -> Path:
    """The GMB corpus shipped inside the package (a zip holding ``ner_dataset.csv``)."""
    return Path(__file__).resolve().parent / "data" / "ner_dataset.csv.zip"


def read_corpus(path: str | Path | None = None, format: str = "auto", tagged: bool = False, *,
                empty_ok: bool = False) -> Corpus:
    """Read a corpus file (``None``: the bundled GMB corpus) in `format` (one of `FORMATS`); `tagged`:
    the caller needs a tagged corpus (`sniff_format`); `empty_ok`: see `parse_corpus`."""
    raw, source, name = _read_bytes(bundled_corpus_path() if path is None else Path(path))
    return parse_corpus(raw, source, format, name, tagged, empty_ok=empty_ok)


def parse_corpus(
    raw: bytes, source: str, format: str = "auto", name: str | None = None, tagged: bool = False, *,
    empty_ok: bool = False,
) -> Corpus:
    """Parse a corpus from its bytes in `format` (one of `FORMATS`); `source` names it in errors and
    `name` (a file name, None for stdin) gives `sniff_format` its extension, `tagged` its reader.

    Bytes with no content (none, or whitespace and a byte-order mark only) raise ``empty file``, unless
    `empty_ok` (tagging: nothing to tag), which returns a corpus of no sentences in `format` (`auto`:
    the one the name's extension gives, else ``tokens``)."""
    fmt = "gmb" if format == "csv" else format
    if fmt not in FORMATS:
        raise CorpusError(f"unknown format {format!r} (choose from {', '.join(FORMATS)})", source)
    declared_utf8 = raw.startswith(UTF8_BOM)
    if declared_utf8:
        raw = raw[len(UTF8_BOM) :]
    if not raw.strip():
        if not empty_ok:
            raise CorpusError("empty file", source, 1)
        if fmt == "auto":  # nothing to sniff: the name's format, else the one without columns
            fmt = format_of_name(name) or "tokens"
        return Corpus([], None, None, np.zeros(1, np.int64), source, fmt, np.zeros(0, np.int64))
    if line_end(raw) == b"\r":  # CR-only line ends (classic Mac): one line per CR
        raw = raw.replace(b"\r", b"\n")
    if fmt == "auto":
        fmt = sniff_format(raw, source, name, tagged)
    if fmt == "gmb" and declared_utf8:  # the GMB reader's cp1252 is for files that declare nothing
        _utf8(raw, source, note=", which the file's byte-order mark declares")
    return _READERS[fmt](raw, source)


def _read_bytes(path: Path) -> tuple[bytes, str, str]:
    """The file's bytes (a zip's single member), the name errors should give, and the file's own name."""
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise CorpusError(f"a corpus zip must hold exactly one file, found {len(members)}", str(path))
                return archive.read(members[0]), f"{path}[{members[0].filename}]", members[0].filename
        return path.read_bytes(), str(path), path.name
    except (OSError, zipfile.BadZipFile) as err:
        raise CorpusError(f"cannot read: {err}", str(path)) from err


def _line_of(raw: bytes, position: int) -> int:
    """1-based line number of a byte offset."""
    return raw.count(b"\n", 0, position) + 1


# --------------------------------------------------------------------------- GMB CSV


def _read_gmb(raw: bytes, source: str) -> Corpus:
    """Parse the GMB CSV.

    Speed matters here (a million rows). One compiled pass (`parse_csv`) splits every row into
    fields (quoted ones included; a quoted field may not span lines), reporting a row with the
    wrong number of fields at its line, and numbers the distinct values of the word, tag, POS and
    sentence columns, which are then decoded and unquoted once each.
    """
    encoding = _encoding_of(raw, source)
    header_end = raw.find(b"\n")
    header_bytes = raw[: header_end if header_end >= 0 else len(raw)].rstrip(b"\r")
    text = _decode(header_bytes, encoding, raw, source)
    header, names = next(csv.reader([text]), []), gmb_columns(text)
    ncols = len(names)
    if not is_gmb_header(names):
        raise CorpusError(f"GMB CSV header must name Sentence, Word and Tag columns, found {header}", source, 1)
    word_col, tag_col = names.index("word"), names.index("tag")
    sent_col = next(i for i, n in enumerate(names) if n.startswith("sentence"))
    pos_col = names.index("pos") if "pos" in names else None
    body = raw[header_end + 1 :].rstrip(b"\r\n") if header_end >= 0 else b""
    if not body:
        raise CorpusError("no sentences after the header", source, 2)

    # Words, tags and POS all repeat (GMB: 35k distinct words among 1M tokens): decoding each
    # distinct value once and sharing the str objects beats creating a string per token, and
    # makes every later pass over the tokens cache-friendly.
    cat_cols = [word_col, tag_col] + ([pos_col] if pos_col is not None else []) + [sent_col]
    cat_ids, cat_bounds, bad = _csv.parse_csv(body, ncols, cat_cols)
    if bad is not None:
        row, n_fields = bad
        if n_fields < 0:
            raise CorpusError("bad CSV quoting (a quoted field must close on its line)", source, row + 2)
        raise CorpusError(f"expected {ncols} fields, found {n_fields}", source, row + 2)

    def distinct(k: int) -> list[str]:
        # Rows hold no '\n', so the distinct raw values decode in one go, joined by newlines.
        joined = b"\n".join([body[a:b] for a, b in cat_bounds[k].tolist()])
        return [
            v[1:-1].replace('""', '"') if v.startswith('"') else v
            for v in _decode(joined, encoding, raw, source).split("\n")
        ]

    def column(k: int, values: list[str]) -> list[str]:
        return np.array(values, dtype=object)[cat_ids[k]].tolist()

    tag_values = distinct(1)  # also the tag ids' names, for the IOB1 rewrite below
    words, tags = column(0, distinct(0)), column(1, tag_values)
    pos = column(2, distinct(2)) if pos_col is not None else None

    sentence_cells = distinct(len(cat_cols) - 1)
    if not sentence_cells[cat_ids[-1][0]].strip():
        raise CorpusError("the first row has no sentence number", source, 2)
    for name, values in (("word", words), ("tag", tags), ("POS", pos)):
        if values is not None and "" in values:
            raise CorpusError(f"empty {name}", source, values.index("") + 2)
    _check_words(words, source, lambda token: token + 2)
    _check_tags(tags, source, lambda token: token + 2)
    offsets = np.append(_sentence_starts(cat_ids[-1], sentence_cells), len(words)).astype(np.int64)
    # IOB1 -> IOB2 as the CoNLL reader does, on the tag column's ids (a tenth of the time of strings).
    for start in iob1_starts(cat_ids[1], np.diff(offsets), TagScheme(tag_values)).tolist():
        tags[start] = begin(tags[start])
    # One row per line (a quoted field may not span lines), after the header.
    return Corpus(words, pos, tags, offsets, source, "gmb", np.arange(2, len(words) + 2, dtype=np.int64))


def _sentence_starts(sentence_ids: np.ndarray, values: list[str]) -> np.ndarray:
    """The rows that start a sentence: a filled `Sentence #` cell (`values`: the distinct cells decoded, read
    without the spaces around them; a cell of spaces is empty) unless the row right above holds the same
    value. GMB's own form names a sentence on its first row and leaves the cells below empty; a copy with the
    column filled down (pandas' `ffill`, a common export of this dataset), where a cell's mere presence made
    every token a sentence of its own, repeats it on every row. Only two one-token sentences in a row numbered
    alike would read as one, which GMB's numbering never does."""
    canonical: dict[str, int] = {"": -1}
    ids = np.array([canonical.setdefault(v.strip(), len(canonical)) for v in values], dtype=np.int64)[sentence_ids]
    return np.flatnonzero((ids >= 0) & np.r_[True, ids[1:] != ids[:-1]])


_HIGH_BYTES = bytes(range(0x80, 0x100))


def _encoding_of(raw: bytes, source: str) -> str:
    """UTF-8 when the bytes are valid UTF-8, else cp1252 (checked when decoding). A UTF-8 file with a
    stray byte, which cp1252 would turn whole into 'JosÃ©', is refused at that byte: more well-formed
    UTF-8 sequences than bytes that are not UTF-8. cp1252 text holds such sequences only by accident
    ('ß”'): the shipped GMB file, 15 MB, holds none."""
    if raw.isascii():
        return "ascii"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        # Counted in C, not by a regular expression (a third of a second on the GMB file): decoded with a
        # U+FFFD for each ill-formed run, every other non-ASCII character is one well-formed sequence.
        text = raw.decode("utf-8", errors="replace")
        ascii_bytes, genuine = len(raw.translate(None, _HIGH_BYTES)), raw.count("\ufffd".encode())
        sequences = len(text) - ascii_bytes - text.count("\ufffd") + genuine
        strays = len(raw) - len(text.replace("\ufffd", "").encode("utf-8")) - 3 * genuine
        if sequences > strays:
            raise CorpusError(f"byte 0x{raw[err.start]:02x} is not valid UTF-8, in a file of {sequences} UTF-8 "
                              f"characters and {strays} {'bytes that are' if strays > 1 else 'byte that is'} not: it "
                              "mixes encodings (save it as UTF-8)", source, _line_of(raw, err.start)) from None
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


def _utf8(raw: bytes, source: str, line_at: Callable[[int], int] | None = None, note: str = "") -> str:
    """`raw` decoded as UTF-8; a CorpusError naming the first bad byte and its line (`line_at(offset)`,
    default: counted by `_line_of`) otherwise, `note` added to its message."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = (line_at or (lambda at: _line_of(raw, at)))(err.start)
        raise CorpusError(f"byte 0x{raw[err.start]:02x} is not valid UTF-8{note}", source, line) from None


# --------------------------------------------------------------------------- CoNLL

def _read_conll(raw: bytes, source: str) -> Corpus:
    text = _utf8(raw, source)
    words: list[str] = []
    pos: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    offsets = [0]

    def end_sentence() -> None:
        if len(words) > offsets[-1]:
            offsets.append(len(words))

    # The file's column count is its first lines' most common one (`sniff.conll_width`), so that a bad first
    # line ("New York<TAB>B-geo") is the line named, not the good line after it.
    lines_of_text = text.split("\n")
    common = conll_width([cols for _, cols in leading_rows(lines_of_text)])
    ncols = common[0] if common is not None else 0
    for number, line in enumerate(lines_of_text, 1):
        line = line.strip(" \t\r")
        if not line:
            end_sentence()
            continue
        columns = COLUMN_SPLIT.split(line)
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
        lines.append(number)
        tags.append(columns[-1])
        if ncols >= 3:
            pos.append(columns[1])
    end_sentence()
    if not words:
        raise CorpusError("no sentences found", source, 1)
    _check_words(words, source, lines.__getitem__)
    _check_tags(tags, source, lines.__getitem__)
    offsets_array = np.asarray(offsets, dtype=np.int64)
    tags = iob1_to_iob2(tags, np.diff(offsets_array))
    return Corpus(words, pos if ncols >= 3 else None, tags, offsets_array, source, "conll", np.asarray(lines, dtype=np.int64))


def _check_words(words: list[str], source: str, line_of: Callable[[int], int]) -> None:
    """A CorpusError at the line (`line_of(token index)`) of the first word that is whitespace only
    (`text.blank_token`: what the tagger would refuse), such as a CoNLL word that is an NBSP or a tokens
    line's U+200E between spaces; every reader checks it."""
    blank = blank_token(words)
    if blank is not None:
        raise CorpusError(f"word {words[blank]!r}: {TOKEN_RULE}", source, line_of(blank))


def _check_tags(tags: list[str], source: str, line_of: Callable[[int], int]) -> None:
    """A CorpusError at the line (`line_of(token index)`) of the first tag outside every scheme
    (`schemes.is_tag`), checked once per distinct tag; the GMB reader's own message was TagScheme's,
    raised later without file or line."""
    bad = {t for t in set(tags) if not is_tag(t)}
    if bad:
        first = next(i for i, t in enumerate(tags) if t in bad)
        raise CorpusError(not_a_tag(tags[first]), source, line_of(first))


def _read_tokens(raw: bytes, source: str) -> Corpus:
    """One pre-tokenized sentence a line (whitespace between tokens), blank lines skipped; no POS, no tags."""
    text = _utf8(raw, source)
    words: list[str] = []
    lines: list[int] = []
    offsets = [0]
    # Split at '\n' only (a CR before it is whitespace): str.splitlines would also break at
    # characters such as U+2028 or \x1c and so disagree with the line numbers of every other reader.
    for number, line in enumerate(text.split("\n"), 1):
        tokens = line.split()
        if tokens:
            words.extend(tokens)
            lines.extend([number] * len(tokens))
            offsets.append(len(words))
    if not words:
        raise CorpusError("no sentences found", source, 1)
    _check_words(words, source, lines.__getitem__)  # a run of invisible format characters (U+200E) is no token
    return Corpus(words, None, None, np.asarray(offsets, dtype=np.int64), source, "tokens", np.asarray(lines, dtype=np.int64))


def line_end(raw: bytes) -> bytes:
    """What ends the lines of a file: LF (a CRLF's CR is dropped by the readers), or CR in a file with
    CRs and no LF (classic Mac)."""
    return b"\r" if b"\r" in raw and b"\n" not in raw else b"\n"


def parse_documents(raw: bytes, source: str, whole: bool = False, first_line: int = 1,
                    ends: bytes | None = None) -> list[str]:
    """Raw-text documents from UTF-8 bytes (a byte-order mark skipped): one a line, or with `whole` the
    whole input as one document.

    Lines end at LF or CRLF (the CR is dropped), or at CR in a file with CRs and no LF, as for the
    corpus readers; line breaks such as U+2028 stay inside a document. Every line is a document, blank
    ones too, so that output line i answers input line i; a final line end starts no document. So an
    empty input holds no documents (nothing to tag), and ``b"\\n\\n"`` two empty ones; with `whole`
    any input, an empty one too, is one document (as ``ner-fast tag --text ""`` is).

    A run of whole lines cut from a larger file (`ner_fast.partition`) gives its first line's number
    `first_line` and the file's line end `ends` (`line_end`): errors then name lines of the file.
    """
    if first_line == 1 and raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM) :]
    if ends is None:
        ends = line_end(raw)
    text = _utf8(raw, source, lambda at: raw.count(ends, 0, at) + first_line)
    if whole:
        return [text]
    lines = text.split(ends.decode())
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


_READERS = {"gmb": _read_gmb, "conll": _read_conll, "tokens": _read_tokens}
