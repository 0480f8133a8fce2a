"""The stage after the tagger: the `Doc` that a tagging call's outputs fill (`Tagged`), with its tokens,
sentences and entities. This module knows nothing of the tagger nor of the tokenizer (`ner_fast.text`):
`ner_fast.engine` runs segment -> tag -> Doc, driven by `Tagger.__call__` and `Tagger.pipe`.

    from ner_fast import Tagger
    tagger = Tagger.load()                                  # the bundled package (or Tagger.load(PATH))
    doc = tagger("Angela Merkel visited Paris on Monday. She met Emmanuel Macron.")
    doc.entities    # (Entity(label='per', start=0, end=13, text='Angela Merkel', score=0.99, token_start=0, token_end=2), ...)
    doc.sentences   # (Sentence(start=0, end=38, token_start=0, token_end=7), ...)
    doc.tokens      # (Token(text='Angela', start=0, end=6, tag='B-per', pos='NNP', score=0.99), ...)
    doc.to_dict()   # JSON-ready, see `Doc.to_dict`
    for doc in tagger.pipe(texts): ...                     # lazy, sentences batched across documents

Every offset is a character offset into the original string, end exclusive: `text[t.start:t.end] == t.text`
for every token, sentence span and entity, whatever the whitespace between them.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import orjson

from ner_fast.schemes import TagScheme, chunk_ids, chunks

if TYPE_CHECKING:
    from ner_fast.labels import LabelMap


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


#: Decimals of an entity's score in JSON (`Doc.to_dict`, a pre-tokenized sentence's line): float32 holds ~7.
SCORE_DIGITS = 6

# The UTF-8 bytes of the characters some line splitters take for line ends, and their JSON escapes.
_LINE_ENDS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def json_line(value: Any) -> bytes:
    """`value` (a `Doc.to_dict()`, or a list of them) as one line of compact JSON in UTF-8: the one
    encoding of documents, shared by `Doc.to_json` (`ner-fast tag`, the cluster's parts), a pre-tokenized
    sentence's line (`partition.sentence_json`) and the answers of `ner-fast serve`, so the same document is
    the same bytes everywhere.

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
        self._entities: tuple[Entity, ...] | None = None
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
    def entities(self) -> tuple[Entity, ...]:
        """The entities, in text order: cut by the package's chunker (`schemes.chunk_ids`) sentence by
        sentence, so an entity never crosses a sentence boundary. A tuple, as `tokens` and `sentences`
        are: a list handed out from the cache let a caller's `.clear()` change the Doc."""
        if self._entities is None:
            if not self._words:
                self._entities = ()
            else:
                offsets = self._sentence_offsets
                chunks = self._tagged.chunks(self._base, offsets)
                scores = self._tagged.score_list(self._base, len(self._words)) if chunks else []
                self._entities = tuple(make_entities(self.text, self._starts, self._ends, chunks, scores))
        return self._entities

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its own tokens' outputs only: the call's arrays it views hold every document of its
        group (up to `Tagger.pipe`'s 2,048 sentences), which pickled whole made one Doc 100 times its size."""
        n, tagged = len(self._words), self._tagged
        own = replace(tagged, **{name: None if values is None else values[self._base : self._base + n].copy()
                                 for name, values in (("tag_ids", tagged.tag_ids), ("scores", tagged.scores),
                                                      ("pos_ids", tagged.pos_ids))})
        return (type(self), (self.text, self._words, self._starts, self._ends, self._sentence_offsets, own, 0))

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
                    "score": round(e.score, SCORE_DIGITS),
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


def spans(
    tokens: Sequence[str],
    tags: Sequence[str],
    scores: np.ndarray | Sequence[float],
    scheme: TagScheme | None = None,
    labels: LabelMap | None = None,
) -> list[Entity]:
    """Entity spans of `tags` (IOB1, IOB2 or IOBES), cut by the package's one chunker (`schemes.chunks`,
    conlleval's rules); `scores[i]` is token i's probability of its tag, averaged over each span.
    `scheme`: a `TagScheme` holding every tag (built from `tags` when None). Character offsets point
    into `" ".join(tokens)` (see `Entity`). `labels`: the label map applied to the chunks (a tagger's
    `label_map`; entities whose label maps to None are dropped)."""
    text, starts, ends = join_tokens(tokens)
    found = chunks(tags, scheme)
    if labels is not None:
        found = [(named, a, b) for label, a, b in found if (named := labels(label)) is not None]
    return make_entities(text, starts, ends, found, np.asarray(scores, dtype=np.float64).tolist())
