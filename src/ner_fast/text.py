"""The stage of raw text before the tagger: the tokenizer and the sentence splitter (`segment`), and the
rules every token obeys. This module knows nothing of the tagger: `ner_fast.engine` runs segment -> tag ->
`ner_fast.doc.Doc`, driven by `Tagger.__call__` and `Tagger.pipe`.

Every offset is a character offset into the original string, end exclusive.

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
from itertools import accumulate
from operator import add, sub

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


def estimate_tokens(text: str) -> int:
    """About how many tokens `tokenize` makes of `text`, at C speed, before tokenizing it (the server fills
    batches and cuts pieces by it): its whitespace-separated runs plus every character that is neither a
    word character nor whitespace, which the tokenizer mostly makes a token of its own (the pattern's last
    alternative: "«", "—", "。", an emoji, as ASCII punctuation). At least 1. Counting words and ASCII
    punctuation alone estimated "😀" * 1,000 as 1 token, and one such request held every other for 12 s."""
    return max(1, len(text.split()) + len(_NOT_WORD.findall(text)))


_NOT_WORD = re.compile(rf"[^{_W[1:-1]}\s]")  # neither a word character of the tokenizer's (`_W`) nor a space
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


def run_cuts(words: Sequence[str], a: int, b: int, most: int = MAX_SENTENCE_TOKENS) -> list[int]:
    """The cuts inside the run `words[a:b]` (non-empty tokens), none of its pieces longer than `most`: each at
    the last place within `CUT_BACKOFF` tokens of the cap, and after the piece's start, between two plain
    tokens, else at the cap. The one rule for cutting a run too long for one piece: the sentence splitter's
    (`most` = MAX_SENTENCE_TOKENS) and the tagger's for a pre-tokenized sentence (`piece_lengths`)."""
    if most < 1:
        raise ValueError(f"most must be positive, got {most}")
    cuts: list[int] = []
    start = a
    while b - start > most:
        cap = start + most
        places = range(cap, max(start, cap - CUT_BACKOFF), -1)  # from the cap back, never to the piece's start
        start = next((c for c in places if _plain(words[c - 1]) and _plain(words[c])), cap)
        cuts.append(start)
    return cuts


def piece_lengths(words: Sequence[str], lengths: Sequence[int], most: int) -> list[int]:
    """Sentence lengths with every sentence longer than `most` tokens cut into consecutive pieces of at most
    `most` (`run_cuts`, so not inside a name where a plain place is near), in order: `words` are all the
    sentences' tokens back to back. The tagger runs these pieces (`most` = `buckets.MAX_BATCH_TOKENS`):
    the network's memory grows with one sequence's length (~23 kB a token for the bundled model: a CoNLL
    file without blank lines, one 300,000-token sentence, took 8 GB)."""
    out: list[int] = []
    start = 0
    for n in lengths:
        bounds = [start, *run_cuts(words, start, start + n, most), start + n] if n > most else [start, start + n]
        out.extend(b - a for a, b in zip(bounds[:-1], bounds[1:]))
        start += n
    return out


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
        capped.extend(run_cuts(words, a, b))
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


def surrogate_reason(text: str, at: int, from_bytes: bool = False) -> str:
    """Why `text`, with a lone surrogate at `at`, cannot be tagged: the words of `check_text`, `token_fault`, the
    server and `ner-fast tag --text`. `from_bytes`: `text` was decoded with `surrogateescape` (a command line),
    so U+DC80-U+DCFF is a byte that is not UTF-8, said as such."""
    code = ord(text[at])
    if from_bytes and 0xDC80 <= code <= 0xDCFF:
        return f"character {at} is the byte 0x{code - 0xDC00:02x}, which is not valid UTF-8"
    return f"character {at} is a lone surrogate (U+{code:04X}), which is not text: no UTF-8 encodes it"


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
