"""The stages of raw text around the tagger: the tokenizer, the sentence splitter, and the `Doc` that a
tagging call's outputs fill. This module knows nothing of the tagger: `ner_fast.engine` runs
segment -> tag -> Doc, driven by `Tagger.__call__` and `Tagger.pipe`.

    from ner_fast import Tagger
    tagger = Tagger.load()                                  # the bundled package (or Tagger.load(PATH))
    doc = tagger("Angela Merkel visited Paris on Monday. She met Emmanuel Macron.")
    doc.entities    # [Entity(label='per', start=0, end=13, text='Angela Merkel', score=0.99, token_start=0, token_end=2), ...]
    doc.sentences   # [Sentence(start=0, end=38, token_start=0, token_end=7), ...]
    doc.tokens      # [Token(text='Angela', start=0, end=6, tag='B-per', pos='NNP', score=0.99), ...]
    doc.to_dict()   # JSON-ready, see `Doc.to_dict`
    for doc in tagger.pipe(texts): ...                     # lazy, sentences batched across documents

Every offset is a character offset into the original string, end exclusive: `text[t.start:t.end] == t.text`
for every token, sentence span and entity, whatever the whitespace between them.

**Tokenization** follows the conventions of the GMB corpus the models are trained on (one compiled
regular expression, one pass): contractions split (`do` `n't`, `Merkel` `'s`, `we` `'ll`); hyphenated
compounds stay whole (`al-Qaida`, `U.S.-led`, also `AT&T`, `and/or`, GMB's `de~facto`); abbreviations
keep their period (`U.S.`, `a.m.`, `Mr.`, `Corp.`: initialisms by rule, the rest from `ABBREVIATIONS`);
numbers keep their separators (`1,000`, `3.5`, `3:34`); straight quotes stay as they are (`"`, never
PTB's ``` `` ```); `$`, `%` and every other symbol are tokens of their own; `...`, `--` and `?!` runs
are one token; URLs and e-mail addresses are one token. Re-tokenizing the bundled corpus's sentences
from their space-joined text gives back 99.995% of its tokens (`benchmarks/text.py`).

Separators are whitespace of every kind (`str.isspace`: tabs, NBSP, U+2028, CR, ...), C0/C1 control
characters and the invisible format characters (Unicode category Cf: U+200B, U+2060, U+FEFF, the
bidirectional marks, ZWJ, ...; the soft hyphen belongs to its word, and one standing alone is dropped),
so no token is blank (`blank_token`); every other character (symbols, emoji and other astral code points
included) belongs to exactly one token.

**Sentences** end after a token made of `.`, `?`, `!` or `…` (plus the closing brackets and quotes
right after it, a straight quote only when it touches the terminator), unless the next token starts
with a lower-case letter; at every paragraph break (two or more line breaks); and in a longer run
without either, after at most `MAX_SENTENCE_TOKENS` tokens, the cut moved back (up to `CUT_BACKOFF`
tokens) to fall between two plain tokens (`_plain`), so that it does not split a name. Abbreviation tokens
(`Mr.`, `U.S.`) never end a sentence: "He went to the U.S. Then ..." stays one sentence, a
limitation of a rule-based splitter that needs no model file.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import add, sub
from typing import Any, NamedTuple

import numpy as np
import orjson

from ner_fast.schemes import TagScheme, chunk_ids

# ------------------------------------------------------------------------------------------ tokenizer

#: The invisible format characters, Unicode category Cf (a regex character-class body; Unicode 15.1, which
#: adds U+13439-U+1343F to 14.0's list): U+200B ZERO WIDTH SPACE, U+2060 WORD JOINER, U+FEFF BOM, the
#: bidirectional marks, the soft hyphen U+00AD, ... A token of these and whitespace alone is blank
#: (`blank_token`); tests/test_text.py holds the list to `unicodedata`.
FORMAT_CHARACTERS = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
#: Characters that separate tokens and never belong to one (a regex character-class body): whitespace,
#: C0/C1 controls and the format characters but the soft hyphen, which belongs to the word it sits in
#: (`co\u00adoperate`; one standing alone is no token either, see `tokenize`).
SEPARATORS = r"\s\x00-\x1f\x7f-\x9f" + FORMAT_CHARACTERS.replace("\u00ad", "")
_SOFT_HYPHEN = "\u00ad"
# A word character: \w, the soft hyphen and the common blocks of combining marks (a decomposed "é"
# stays one word).
_W = r"[\w\u00ad\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
_LETTER = r"[^\W\d_]"
_APOS = "'\u2019"
_CLITIC = r"(?:[sSmMdD]|ll|LL|re|RE|ve|VE)(?!\w)"
_NT = rf"[nN][{_APOS}][tT](?!\w)"

#: Abbreviations that keep their period (without it). Learned from the bundled corpus (every token
#: ending in "." that is not an initialism like U.S.; `corpus_abbreviations`) plus common titles,
#: months, US states and Latin ones. Words that often end a sentence ("Miss", "Wash", "Me") are left out.
ABBREVIATIONS = frozenset(
    # from the GMB corpus
    "Brig Calif Capt Co Col Cong Conn Corp Dec Dr Feb Ga Gen Ill Inc Jan Jr Lt Ltd Mass Mr Mrs Ms Nov Oct "
    "Rep Sept Sgt St Wis ca "
    # titles, companies, months, places
    "Adm Ave Blvd Bros Cmdr Col Dept Esq Gov Hon Maj Messrs Mme Mlle Mt Prof Pvt Rd Rev Sen Sr Supt "
    "Apr Aug Jun Jul Sep "
    "Ala Ariz Ark Colo Fla Ky Md Mich Minn Mont Neb Nev Okla Ore Pa Tenn Tex Va Vt Wyo "
    "approx dept est etc vs viz".split()
)
#: Abbreviations that keep their period only before a number ("No. 5", but "He said No.").
NUMBERED_ABBREVIATIONS = frozenset("No Nos Vol Fig Art".split())


def _alternation(words: Iterable[str]) -> str:
    """A regex alternation of the words and their upper-case forms, longest first."""
    forms = {w for word in words for w in (word, word.upper())}
    return "|".join(re.escape(w) for w in sorted(forms, key=lambda w: (-len(w), w)))


def _token_pattern(full: bool) -> re.Pattern[str]:
    """The tokenizer's pattern: `(separators)(token)` pairs for `findall`.

    `full` adds what needs extra work on every word and is rare: words ending before `n't`, URLs and
    e-mail addresses. `tokenize` uses the full pattern only when the text holds one of `_FULL_HINTS`.
    """
    char = rf"(?:(?!{_NT}){_W})" if full else _W
    word = rf"{char}+(?:(?:(?<=\d)[.,:](?=\d)|[{_APOS}](?!{_CLITIC})(?=\w)){char}+)*"
    abbreviation = (
        # The lookahead first: most words have no period after them, and then the long alternations,
        # which the regex engine tries one by one, are skipped (3x faster on ordinary text).
        rf"(?=[A-Za-z]+\.)(?:(?:{_alternation(ABBREVIATIONS)})\.(?!\w)"
        rf"|(?:{_alternation(NUMBERED_ABBREVIATIONS)})\.(?=[{SEPARATORS}]*\d))"
        # initialisms (U.S., a.m., S.p.A., U.S without its last period) and initials (George W. Bush)
        rf"|{_LETTER}(?:\.{_LETTER})+\.?(?!\w)|[A-Z]\.(?!\w)"
    )
    piece = rf"(?:{abbreviation}|{word})"
    alternatives = [
        rf"[{_APOS}]{_CLITIC}|{_NT}",  # clitics, also standing alone in space-joined text
        rf"[{_APOS}]\d\ds(?!\w)",  # '80s
        rf"{piece}(?:[-~&/]{piece})*",  # compounds joined by - ~ & /
        r"\.{2,}|-{2,}|[?!]+|…+",
        rf"[^{SEPARATORS}]",  # any other character is a token of its own
    ]
    if full:
        url = rf"(?:https?://|www\.)[^{SEPARATORS}<>\"]*[^{SEPARATORS}<>\".,;:!?)\]'\u2019\u201d]"
        # The local part whole only at the start of a run of its characters; inside one (where an earlier
        # token ended), at most 64 characters back (RFC 5321's limit): scanning each run to its end from
        # every token in it was quadratic ("ab." * 8000 + "@": 1.2 s).
        email = r"(?:(?<![\w.+-])[\w.+-]+|[\w.+-]{1,64})@\w[\w-]*(?:\.\w[\w-]*)+"
        alternatives = [url, email, *alternatives]
    # The separators before a token: taken whole (possessive, no backtracking) and only from a position
    # that does not follow a separator. A token never starts with a separator and any other character
    # is one, so only a run of separators at the end of the text fails to match; `findall` used to retry
    # that run from each of its characters, scanning to its end every time: 8,000 trailing spaces took
    # 6.4 s (quadratic), one 100,000-character text of spaces would hold a server (and the GIL) ~17 minutes.
    return re.compile(rf"((?<![{SEPARATORS}])[{SEPARATORS}]*+)(" + "|".join(alternatives) + ")")


_FAST = _token_pattern(full=False)
_FULL = _token_pattern(full=True)
# The two patterns differ only on text that contains one of these (a superset of n't, found with
# plain substring searches, which cost less than one more regex pass).
_FULL_HINTS = ("'t", "'T", "\u2019t", "\u2019T", "@", "://", "www.")


def tokenize(text: str) -> tuple[list[str], list[int], list[int]]:
    """Tokens of `text` and their character offsets: `(words, starts, ends)`, end exclusive.

    `text[starts[i]:ends[i]] == words[i]`; tokens are in text order and never overlap.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    pattern = _FULL if any(hint in text for hint in _FULL_HINTS) else _FAST
    pairs = pattern.findall(text)
    if not pairs:
        return [], [], []
    gaps, words = zip(*pairs)
    # Plain lists, no NumPy: a 20-token sentence must cost microseconds (the tagger's p50 is ~0.3 ms).
    word_lengths = list(map(len, words))
    ends = list(accumulate(map(add, map(len, gaps), word_lengths)))
    starts = list(map(sub, ends, word_lengths))
    if _SOFT_HYPHEN in text:  # (a substring search: rare) soft hyphens standing alone are a blank token: none
        kept = [i for i, word in enumerate(words) if word.strip(_SOFT_HYPHEN)]
        return [words[i] for i in kept], [starts[i] for i in kept], [ends[i] for i in kept]
    return list(words), starts, ends


# ------------------------------------------------------------------------------------ sentence splitter

_TERMINATOR = re.compile(r"[.?!…]+")
# Closing brackets and quotes that stay with the sentence they follow.
_CLOSERS = frozenset(")]}\"'\u2019\u201d\u00bb")
_STRAIGHT_QUOTES = frozenset("\"'")
# Two or more line breaks (with any other whitespace between them), or a paragraph separator.
_LINE_BREAK = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
_PARAGRAPH = re.compile(r"(?:\r\n?|[\n\v\f\x1c-\x1e\x85\u2028])[^\S\r\n\v\f\x1c-\x1e\x85\u2028\u2029]*(?:\r\n?|[\n\v\f\x1c-\x1e\x85\u2028])|\u2029")


#: The longest sentence the splitter makes: a longer run of tokens without a sentence end (a list, a
#: table, a megabyte without a full stop) is cut after at most MAX_SENTENCE_TOKENS tokens. The network's cost
#: grows faster than linearly with one sentence's length (a 20,000-token sentence took 5.8 s and 565 MB,
#: ten of 2,000 tokens 1.5 s); GMB's longest sentence has 104 tokens.
MAX_SENTENCE_TOKENS = 256
#: How many tokens before the cap a long run's cut may move back to fall between two plain tokens: a cut
#: at the cap itself split "Angela | Merkel" into two entities when the name straddled token 256.
CUT_BACKOFF = 32


def _plain(word: str) -> bool:
    """A token that is no part of a capitalised name: it starts lower-case, or is punctuation or symbols."""
    return word[0].islower() or not any(ch.isalnum() for ch in word)


def _cap_run(words: Sequence[str], a: int, b: int) -> list[int]:
    """The cuts inside the run `words[a:b]`, none of its pieces longer than `MAX_SENTENCE_TOKENS`: each at
    the last place within `CUT_BACKOFF` tokens of the cap between two plain tokens, else at the cap."""
    cuts: list[int] = []
    start = a
    while b - start > MAX_SENTENCE_TOKENS:
        cap = start + MAX_SENTENCE_TOKENS
        start = next((c for c in range(cap, cap - CUT_BACKOFF, -1) if _plain(words[c - 1]) and _plain(words[c])), cap)
        cuts.append(start)
    return cuts


def split_sentences(text: str, words: Sequence[str], starts: Sequence[int], ends: Sequence[int]) -> list[int]:
    """Sentence boundaries of tokenized `text`: token offsets (n_sentences + 1), from 0 to len(words).

    Sentence i is tokens `offsets[i]:offsets[i + 1]`; no sentence is empty (no text, no sentence) and
    none is longer than `MAX_SENTENCE_TOKENS`.
    """
    n = len(words)
    cuts: set[int] = set()
    for i in [i for i, w in enumerate(words) if w[0] in ".?!…" and _TERMINATOR.fullmatch(w)]:
        j = i + 1
        # Closers that follow: any closing bracket or curly quote; a straight quote only when it touches.
        while j < n and words[j] in _CLOSERS and (words[j] not in _STRAIGHT_QUOTES or starts[j] == ends[j - 1]):
            j += 1
        if j < n and not words[j][0].islower():
            cuts.add(j)
    if n > 1 and _LINE_BREAK.search(text):
        for match in _PARAGRAPH.finditer(text):
            k = bisect_right(starts, match.start())
            if 0 < k < n:
                cuts.add(k)
    if not n:
        return [0]
    offsets = [0, *sorted(cuts), n]
    if max(b - a for a, b in zip(offsets[:-1], offsets[1:])) <= MAX_SENTENCE_TOKENS:
        return offsets
    capped = [0]
    for a, b in zip(offsets[:-1], offsets[1:]):
        capped.extend(_cap_run(words, a, b))
        capped.append(b)
    return capped


def corpus_abbreviations(words: Iterable[str]) -> set[str]:
    """Abbreviations a tokenized corpus uses: tokens ending in "." (letters before it, not an
    initialism like "U.S.") with the period removed; what `ABBREVIATIONS` was learned from."""
    found = set()
    initialism = re.compile(rf"{_LETTER}(?:\.{_LETTER})+\.?|[A-Z]\.")
    for w in words:
        if len(w) > 1 and w.endswith(".") and w[:-1].isalpha() and not initialism.fullmatch(w):
            found.add(w[:-1])
    return found


#: One text's segmentation, as `segment` returns it: (words, starts, ends, sentence offsets).
Segments = tuple[list[str], list[int], list[int], list[int]]

# A UTF-16 surrogate code point: never a character of text on its own (no UTF-8 encodes it).
_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> int | None:
    """The position of the first lone surrogate (U+D800-U+DFFF) in `text`, None if it has none: what a
    JSON `"\\ud800"` escape or an undecodable byte read with `surrogateescape` leaves in a str. It is no
    character, so no output could hold it. The one home of that rule: `check_text`, `token_fault`, the
    server's request checks and `ner-fast tag --text` refuse such text."""
    return None if (found := _SURROGATE.search(text)) is None else found.start()


def surrogate_reason(text: str, at: int) -> str:
    """Why `text`, with a lone surrogate at `at`, cannot be tagged: `check_text`'s and `token_fault`'s words."""
    return f"character {at} is a lone surrogate (U+{ord(text[at]):04X}), which is not text: no UTF-8 encodes it"


#: The rule `blank_token` checks, in the words every refusal of a blank token ends with.
TOKEN_RULE = ("a token must hold a character that is neither whitespace nor an invisible format character"
              " (Unicode category Cf, such as U+200B ZERO WIDTH SPACE)")
# A blank token: empty, or whitespace (`\s` is `str.isspace`) and format characters only.
_BLANK = re.compile(rf"[\s{FORMAT_CHARACTERS}]*")


def _plainly_fine(tokens: Sequence[str]) -> bool:
    """No token is whitespace only nor holds an unprintable character (format characters, lone surrogates,
    whitespace but the space): the common case, checked at C speed, of tokens neither blank nor faulty."""
    return all(map(str.strip, tokens)) and all(map(str.isprintable, tokens))


def blank_token(tokens: Sequence[str]) -> int | None:
    """The index of the first token of `tokens` that is blank: empty, or made of whitespace (`str.isspace`,
    the whitespace `str.split` splits at) and invisible format characters (`FORMAT_CHARACTERS`, Unicode
    category Cf: U+200B, U+2060, U+FEFF, ...) alone; None when there is none; TypeError for a token that
    is not a str. A token with any other character (a letter, a digit, a symbol) is not blank.

    The one home of what a pre-tokenized token may be: `Tagger.tag_batch`, `ner-fast serve`'s `tokens`
    and the CoNLL and GMB readers refuse such a token, naming it, followed by `TOKEN_RULE`. No tokenizer
    makes one and no network was trained on one: tagged as an unknown word it changes its neighbours' tags
    (`"a  b".split(" ")` gives one). Whitespace inside a token is its own: GMB has the word '5\u00a0storm'."""
    if _plainly_fine(tokens):
        return None
    return next((i for i, token in enumerate(tokens) if _BLANK.fullmatch(token)), None)


def token_fault(tokens: Sequence[str]) -> tuple[int, str] | None:
    """The first token of `tokens` that cannot be tagged and why: blank (`blank_token`, `TOKEN_RULE`) or
    holding a lone surrogate (`surrogate_reason`); None when every token can be; TypeError for a token that
    is not a str. What `Tagger.tag_batch` (and `tag`, `entities`, `features`) check of sentences."""
    if _plainly_fine(tokens):
        return None
    blank = blank_token(tokens)
    if blank is not None:
        return blank, TOKEN_RULE
    for i, token in enumerate(tokens):
        at = lone_surrogate(token)
        if at is not None:
            return i, surrogate_reason(token, at)
    return None


def check_text(text: str) -> None:
    """ValueError naming the first lone surrogate in `text` (`lone_surrogate`): refused before tagging."""
    if (at := lone_surrogate(text)) is not None:
        raise ValueError(surrogate_reason(text, at))


def segment(text: str) -> Segments:
    """`tokenize` and `split_sentences` in one call: `(words, starts, ends, sentence_offsets)`; a text
    holding a lone surrogate is refused (`check_text`), so that every Doc can be written."""
    words, starts, ends = tokenize(text)
    check_text(text)
    return words, starts, ends, split_sentences(text, words, starts, ends)


# ------------------------------------------------------------------------------------------ the Doc API


class Token(NamedTuple):
    """One token: its text, character offsets (end exclusive), predicted tag, POS tag (None when the
    package has no POS head) and `score`, the probability the model gave its tag."""

    text: str
    start: int
    end: int
    tag: str
    pos: str | None
    score: float


class Sentence(NamedTuple):
    """One sentence: character offsets of its first token's start and last token's end, and its token
    range `token_start:token_end`."""

    start: int
    end: int
    token_start: int
    token_end: int


class Entity(NamedTuple):
    """An entity: `label` (its type, e.g. "per"), character offsets `start:end` (end exclusive) with
    `text` = the text between them, and token indices `token_start:token_end` (end exclusive).

    From `Tagger.__call__`/`pipe` the offsets point into the document's text (`doc.text[e.start:e.end]
    == e.text`, original whitespace kept). From the token-level calls (`Tagger.entities`,
    `entities_batch`), which have no text, they point into the sentence's tokens joined by single
    spaces (`" ".join(tokens)[e.start:e.end] == e.text`) and `token_start`/`token_end` index the tokens.

    `score` is the mean, over the entity's tokens, of the probability the model gave the tag it chose
    for each token: near 1 when the model is sure of every token. For a CRF model these are the
    per-token softmax of its scores (the graph's output), not the CRF's marginals.
    """

    label: str
    start: int
    end: int
    text: str
    score: float
    token_start: int
    token_end: int

    @property
    def type(self) -> str:
        """The label (the name older versions used)."""
        return self.label


# The UTF-8 bytes of the characters some line splitters take for line ends, and their JSON escapes.
_LINE_ENDS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def json_line(value: Any) -> bytes:
    """`value` (a `Doc.to_dict()`, or a list of them) as one line of compact JSON in UTF-8: the one
    encoding of documents, shared by `Doc.to_json` (`ner-fast tag`, the cluster's parts) and the answers
    of `ner-fast serve`, so the same document is the same bytes everywhere.

    orjson (~15x faster than the json module on a document: the server writes one a request). Non-ASCII
    characters are kept, except the ones some line splitters (Python's `str.splitlines`, older
    JavaScript) take for line ends, U+0085, U+2028 and U+2029, which are escaped so that a line is
    always one document. Raises TypeError (orjson.JSONEncodeError) for what JSON cannot hold, e.g. a
    lone surrogate in a string."""
    data = orjson.dumps(value)
    # In valid UTF-8 these byte sequences are only ever those characters (0xc2 and 0xe2 are lead bytes).
    for raw, escaped in _LINE_ENDS:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


class Doc:
    """A tagged document: `text`, `tokens`, `sentences` and `entities`, all with character offsets into
    `text` (end exclusive). Built by `Tagger.__call__` and `Tagger.pipe`.

    A Doc holds its text's segmentation (`segment`'s lists) and a view of the flat outputs of the
    tagging call that tagged it (one call for many documents: `Tagged`); `tokens`, `sentences` and
    `entities` are built from them on first access, so a pipeline pays only for what it reads. While a
    Doc lives it keeps that call's output arrays alive (a few bytes a token of its group).
    """

    __slots__ = ("text", "_words", "_starts", "_ends", "_sentence_offsets", "_tagged", "_base",
                 "_tokens", "_sentences", "_entities", "_tags")

    def __init__(
        self,
        text: str,
        words: list[str],
        starts: list[int],
        ends: list[int],
        sentence_offsets: list[int],
        tagged: Tagged,
        base: int,
    ) -> None:
        self.text = text
        self._words = words
        self._starts = starts
        self._ends = ends
        self._sentence_offsets = sentence_offsets
        self._tagged = tagged
        self._base = base  # the index of this text's first token in `tagged`
        self._tokens: tuple[Token, ...] | None = None
        self._sentences: tuple[Sentence, ...] | None = None
        self._entities: list[Entity] | None = None
        self._tags: list[str] | None = None

    def _tag_names(self) -> list[str]:
        if self._tags is None:
            self._tags = self._tagged.tag_names(self._base, len(self._words))
        return self._tags

    def _pos_names(self) -> list[str | None]:
        return self._tagged.pos_names(self._base, len(self._words))

    @property
    def tokens(self) -> tuple[Token, ...]:
        """The tokens, in text order."""
        if self._tokens is None:
            n = len(self._words)
            self._tokens = tuple(
                map(Token, self._words, self._starts, self._ends, self._tag_names(), self._pos_names(),
                    self._tagged.score_list(self._base, n))
            )
        return self._tokens

    @property
    def sentences(self) -> tuple[Sentence, ...]:
        """The sentences, in text order."""
        if self._sentences is None:
            offsets, starts, ends = self._sentence_offsets, self._starts, self._ends
            self._sentences = tuple(Sentence(starts[a], ends[b - 1], a, b) for a, b in zip(offsets[:-1], offsets[1:]))
        return self._sentences

    @property
    def entities(self) -> list[Entity]:
        """The entities, in text order: cut by the package's chunker (`schemes.chunk_ids`) sentence by
        sentence, so an entity never crosses a sentence boundary."""
        if self._entities is None:
            if not self._words:
                self._entities = []
            else:
                offsets = self._sentence_offsets
                chunks = self._tagged.chunks(self._base, offsets)
                scores = self._tagged.score_list(self._base, len(self._words)) if chunks else []
                self._entities = make_entities(self.text, self._starts, self._ends, chunks, scores)
        return self._entities

    def __len__(self) -> int:
        return len(self._words)

    def __repr__(self) -> str:
        preview = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"Doc({preview!r}, tokens={len(self)}, sentences={len(self._sentence_offsets) - 1}, entities={len(self.entities)})"

    def to_json(self) -> str:
        """`to_dict()` as one line of JSON (`json_line`): what `ner-fast tag` writes per document and
        `ner-fast serve` answers."""
        return json_line(self.to_dict()).decode("utf-8")

    def to_dict(self) -> dict[str, Any]:
        """The document as a JSON-ready dict (what `ner-fast tag --input-format text` writes, one a line):

            {"text": str,
             "entities": [{"label", "entity_group", "start", "end", "text", "word", "score", "token_start", "token_end"}],
             "sentences": [{"start", "end"}],
             "tokens": [{"text", "start", "end", "tag", "pos"}]}

        Offsets are characters (Python string indices, not bytes), end exclusive. Each entity carries
        the names of two ecosystems: spaCy's displaCy (manual mode) reads `{"text": d["text"], "ents":
        [{"start", "end", "label"}]}` straight from `text` and `entities`; Hugging Face's
        token-classification pipeline (`aggregation_strategy="simple"`) reports `entity_group`, `score`,
        `word`, `start`, `end`, here `entity_group` = `label` and `word` = `text` (the original text,
        not re-joined word pieces). `score` is rounded to 6 decimals; `pos` is null without a POS head.
        """
        starts, ends = self._starts, self._ends
        return {
            "text": self.text,
            "entities": [
                {
                    "label": e.label,
                    "entity_group": e.label,
                    "start": e.start,
                    "end": e.end,
                    "text": e.text,
                    "word": e.text,
                    "score": round(e.score, 6),
                    "token_start": e.token_start,
                    "token_end": e.token_end,
                }
                for e in self.entities
            ],
            "sentences": [
                {"start": starts[a], "end": ends[b - 1]}
                for a, b in zip(self._sentence_offsets[:-1], self._sentence_offsets[1:])
            ],
            "tokens": [
                {"text": w, "start": a, "end": b, "tag": t, "pos": p}
                for w, a, b, t, p in zip(self._words, starts, ends, self._tag_names(), self._pos_names())
            ],
        }


# ------------------------------------------------------------------------- entities and tagged outputs


def join_tokens(tokens: Sequence[str]) -> tuple[str, list[int], list[int]]:
    """Pre-tokenized tokens as text: `(" ".join(tokens), starts, ends)`, each token's offsets in it."""
    ends = [end - 1 for end in accumulate(len(t) + 1 for t in tokens)]
    return " ".join(tokens), [end - len(t) for end, t in zip(ends, tokens)], ends


def make_entities(
    text: str, starts: Sequence[int], ends: Sequence[int], chunks: Iterable[tuple[str, int, int]], scores: Sequence[float]
) -> list[Entity]:
    """`Entity` objects for token-index chunks `(label, token_start, token_end)` of one text whose tokens
    sit at `starts`/`ends`; each score is the mean of `scores` (per token) over the entity's tokens."""
    return [
        Entity(label, int(starts[a]), int(ends[b - 1]), text[starts[a] : ends[b - 1]], float(sum(scores[a:b])) / (b - a), a, b)
        for label, a, b in chunks
    ]


@dataclass(frozen=True, slots=True)
class Tagged:
    """The flat outputs of one tagging call over many texts (tokens back to back), which the `Doc`s of
    those texts read from on demand: tag ids (int64), each token's probability of its tag (float32),
    POS ids (None without a POS head), and the names to turn ids into strings (`tags`, `pos_tags`,
    the package's `scheme`)."""

    tag_ids: np.ndarray
    scores: np.ndarray | None
    pos_ids: np.ndarray | None
    tags: Sequence[str]
    pos_tags: Sequence[str] | None
    scheme: TagScheme
    #: Each scheme type's reported label (the tagger's label map, `labels.py`); None: the entity is dropped.
    types: Sequence[str | None]

    def tag_names(self, base: int, n: int) -> list[str]:
        """Tags of tokens `base:base + n`."""
        names = self.tags
        return [names[i] for i in self.tag_ids[base : base + n].tolist()]

    def pos_names(self, base: int, n: int) -> list[str | None]:
        """POS tags of tokens `base:base + n` (None each without a POS head)."""
        if self.pos_ids is None or self.pos_tags is None:
            return [None] * n
        names = self.pos_tags
        return [names[i] for i in self.pos_ids[base : base + n].tolist()]

    def score_list(self, base: int, n: int) -> list[float]:
        """Each token's probability of its tag, tokens `base:base + n`."""
        assert self.scores is not None
        return self.scores[base : base + n].tolist()  # type: ignore[no-any-return]

    def chunks(self, base: int, sentence_offsets: Sequence[int]) -> list[tuple[str, int, int]]:
        """(label, token_start, token_end) of the entities of one text whose tokens start at `base`,
        sentence by sentence (`sentence_offsets` index its tokens)."""
        ids = self.tag_ids[base : base + sentence_offsets[-1]].tolist()
        scheme, types = self.scheme, self.types
        return [
            (types[kind], a + start, b + start)
            for start, stop in zip(sentence_offsets[:-1], sentence_offsets[1:])
            for a, b, kind in chunk_ids(ids[start:stop], scheme)
            if types[kind] is not None
        ]


