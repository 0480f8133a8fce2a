"""Which format a corpus file is in: `sniff_format`, the one format sniffer of every command (prepare,
train, evaluate, tag), behind ``--format auto`` / ``--input-format auto`` (`corpus.parse_corpus` calls it).
Its rules, in order (docs/ARCHITECTURE.md repeats them for users):

1. the file's extension (a zip member's own name): ``.csv`` -> gmb; ``.conll``, ``.conllx``,
   ``.iob``, ``.bio``, ``.iob2``, ``.iobes`` -> conll; ``.tokens``, ``.tok`` -> tokens;
2. a first line that is a comma-separated header naming a ``Sentence...``, a ``Word`` and a ``Tag``
   column -> gmb;
3. the first `SNIFF_LINES` non-blank lines (``-DOCSTART-`` lines aside) all have the same number of
   whitespace-separated columns, at least two, and every last column is a tag (``O`` or
   PREFIX-TYPE, `schemes.is_tag`) -> conll; there must be at least two such lines; more than half of
   them such lines of one column count (three lines at least), an `O` among their tags, the rest
   malformed -> conll too (the reader names the line);
4. otherwise -> tokens, unless a line looks like raw text, i.e. has a word with punctuation
   attached (``world,`` or a line ending ``morning.``), or is a JSON object: neither is ever read as
   tokens by guess;
5. anything else (one line that could be CoNLL or tokens; text with punctuation attached) is
   ambiguous: a `CorpusError` says so and names ``--input-format`` (raw text: ``--input-format text``);
   where a tagged corpus is needed (`prepare`, `train`, `evaluate`: ``tagged``), one such line is CoNLL and the
   message names ``--format``.
"""
from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

from ner_fast.errors import CorpusError
from ner_fast.schemes import is_tag

#: Rule 1 of `sniff_format`: a file's extension decides its format.
EXTENSIONS = {
    ".csv": "gmb",
    ".conll": "conll", ".conllx": "conll", ".iob": "conll", ".bio": "conll", ".iob2": "conll", ".iobes": "conll",
    ".tokens": "tokens", ".tok": "tokens",
}
#: Non-blank lines that rules 3 and 4 look at.
SNIFF_LINES = 1000
#: Columns of a CoNLL line, as the CoNLL reader splits them (at spaces and tabs; a no-break space stays in
#: its word).
COLUMN_SPLIT = re.compile(r"[ \t]+")


def format_of_name(name: str | None) -> str | None:
    """Rule 1 of `sniff_format`: the format a file's extension gives (None: no name, or no such extension)."""
    return None if name is None else EXTENSIONS.get(Path(name).suffix.lower())


# A word with punctuation glued to its end (`world,`) or a line ending in a word with its full stop
# (`morning.`): raw text, which tokenized input never has (its punctuation is a token of its own).
_GLUED = re.compile(r"(?:\w[,;:](?:\s|$))|(?:[^\W\d_]{2,}[.!?]\s*$)|(?:(?:^|\s)[\"(]\w)")


def gmb_columns(header: str) -> list[str]:
    """The column names of a CSV header line (quoted fields too), stripped and lower-cased: the one parse of
    the GMB header, for the sniffer and the reader."""
    return [h.strip().lower() for h in next(csv.reader([header]), [])]


def is_gmb_header(names: list[str]) -> bool:
    """Whether `gmb_columns` names a GMB CSV: Word and Tag columns and one whose name starts with Sentence."""
    return "word" in names and "tag" in names and any(n.startswith("sentence") for n in names)


def sniff_format(raw: bytes, source: str = "<input>", name: str | None = None, tagged: bool = False) -> str:
    """The format of a file's bytes: ``gmb``, ``conll`` or ``tokens`` by the documented rules (module
    docstring); `name` is the file's name (None: stdin, content only). Raises `CorpusError` naming
    ``--input-format`` when the bytes fit more than one format.

    `tagged`: the reader is `prepare`, `train` or `evaluate`, which need a tagged corpus and whose option
    is ``--format`` (gmb, conll): one line of word and tag is then CoNLL, and raw text is named as not a
    tagged corpus."""
    by_name = format_of_name(name)
    if by_name is not None:
        return by_name
    head = raw.split(b"\n", SNIFF_LINES * 4)[: SNIFF_LINES * 4]
    if is_gmb_header(gmb_columns(head[0].decode("latin-1").rstrip("\r"))):
        return "gmb"
    rows = leading_rows(line.decode("utf-8", errors="replace") for line in head)
    option = "--format" if tagged else "--input-format"
    if not rows:
        raise CorpusError(f"no data in the first lines: cannot tell its format (give {option})", source, 1)
    columns = {len(cols) for _, cols in rows}
    if len(columns) == 1 and columns != {1} and all(is_tag(cols[-1]) for _, cols in rows):
        if len(rows) >= 2 or tagged:
            return "conll"
        raise CorpusError(
            "one line that reads as CoNLL (word ... tag) or as a sentence of tokens: give --input-format conll or tokens",
            source,
            rows[0][0],
        )
    # A CoNLL file with a malformed line (a column too many or too few, a tag that is not one) is still
    # CoNLL: read as tokens it was tagged with its gold tags as words, exit 0. The CoNLL reader names the line.
    # Its lines share one column count and hold O tags; a tokens file whose lines end in "I-95" or "E-mail"
    # has neither.
    common = conll_width([cols for _, cols in rows])
    if common is not None:
        width, lines = common
        tagged_o = any(len(cols) == width and cols[-1] == "O" for _, cols in rows)
        if 2 * lines > len(rows) >= 3 and tagged_o:
            return "conll"
    for number, cols in rows:
        if _is_json_object(" ".join(cols)):
            raise CorpusError(
                "a JSON object: " + ("not a tagged corpus (give CoNLL columns or the GMB CSV)" if tagged else
                                        "JSON lines are read with --input-format jsonl (and --output-dir), never by guess"),
                source,
                number,
            )
        glued = _GLUED.search(" ".join(cols))
        if glued:
            looks = f"looks like raw text ({glued.group().strip()!r} has punctuation attached), not "
            raise CorpusError(
                looks + ("a tagged corpus: give CoNLL columns (word ... tag) or the GMB CSV (--format conll or gmb)"
                         if tagged else "CoNLL columns nor one tokenized sentence a line: give --input-format (text"
                         " to tokenize it, tokens to split at whitespace only)"),
                source,
                number,
            )
    return "tokens"


def leading_rows(lines: Iterable[str]) -> list[tuple[int, list[str]]]:
    """(line number from 1, columns) of the first `SNIFF_LINES` non-blank lines of `lines`, `-DOCSTART-` lines
    aside: what rules 3 and 4 and the CoNLL reader's column count (`conll_width`) look at. Columns as the
    CoNLL reader splits them (at spaces and tabs): a word may hold another space, such as GMB's
    '5\u00a0storm', which `str.split` would cut into two columns."""
    rows: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines, 1):
        text = line.strip(" \t\r")
        if text and (cols := COLUMN_SPLIT.split(text))[0] != "-DOCSTART-":
            rows.append((number, cols))
            if len(rows) == SNIFF_LINES:
                break
    return rows


def conll_width(rows: list[list[str]]) -> tuple[int, int] | None:
    """The column count of a CoNLL file (the columns of its `leading_rows`): the most common count, at least two, among the lines whose last
    column is a tag (the first such count on a tie), and how many lines have it; None where no line is
    word ... tag. Rule 3 and the CoNLL reader share it, so the reader names the line that breaks the
    file's pattern, not a good line after a bad first one."""
    counts = Counter(len(cols) for cols in rows if len(cols) >= 2 and is_tag(cols[-1]))
    return counts.most_common(1)[0] if counts else None


def _is_json_object(line: str) -> bool:
    """Whether a line is a JSON object (a JSON lines file, which is never read by guess: rule 4)."""
    if not (line.startswith("{") and line.endswith("}")):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
