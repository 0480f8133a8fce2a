"""What a worker thread does with a batch of requests: tokenize, tag every sentence of every request in
one `tag_batch` call (`ner_fast.engine.tag_texts`), and write each request's answer as JSON bytes (the
event loop only sends them).

A large request (more estimated tokens than `Settings.piece_tokens`) is cut into `Piece`s first
(`cut`): runs of its texts (or sentences), and a long text cut between its sentences, each piece a
separate item of the batcher, so that other requests' items run between them. Each piece answers the
`Doc.to_dict()`s of its parts, which `assemble` joins into the request's answer: the same bytes as the
request uncut (a text's entities never cross a sentence boundary).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ner_fast.engine import tag_texts
from ner_fast.doc import join_tokens, json_line
from ner_fast.text import Segments, segment


@dataclass(frozen=True)
class Job:
    """One request's work: raw `texts`, or pre-tokenized `sentences` (the other is None). `single`: the
    request sent one `text` and gets one document back, not a list. `tokens` estimates its size for batching."""

    texts: list[str] | None
    sentences: list[list[str]] | None
    single: bool
    tokens: int


@dataclass(frozen=True)
class Part:
    """A text of a request, or the run of its sentences `first_token` onwards (`segments` holds them,
    token offsets from `first_token`); `index`: the text's place in the request."""

    index: int
    text: str
    segments: Segments
    first_token: int = 0


@dataclass(frozen=True)
class Piece:
    """A piece of a large request: its parts, tagged together; answers one `Doc.to_dict()` a part."""

    parts: list[Part]
    tokens: int


def _segments_of(job: Job) -> list[tuple[str, Segments]]:
    """Each text of a job with its segmentation (pre-tokenized sentences: kept as given, one sentence each)."""
    if job.texts is not None:
        return [(text, segment(text)) for text in job.texts]
    found = []
    for tokens in job.sentences or ():
        text, starts, ends = join_tokens(tokens)
        found.append((text, (tokens, starts, ends, [0, len(tokens)] if tokens else [0])))
    return found


def annotate(tagger: Any, jobs: Sequence[Job | Piece]) -> list[Any]:
    """One answer per item: for a `Job` its JSON answer (UTF-8), a `Doc.to_dict()` for a single text,
    else a list of them; for a `Piece` the list of its parts' `Doc.to_dict()`s."""
    texts: list[str] = []
    segments: list[Segments] = []
    counts = []
    for job in jobs:
        pairs = [(p.text, p.segments) for p in job.parts] if isinstance(job, Piece) else _segments_of(job)
        texts.extend(t for t, _ in pairs)
        segments.extend(s for _, s in pairs)
        counts.append(len(pairs))
    docs = iter(tag_texts(tagger, texts, segments=segments))
    answers: list[Any] = []
    for job, count in zip(jobs, counts):
        dicts = [next(docs).to_dict() for _ in range(count)]
        if isinstance(job, Piece):
            answers.append(dicts)
        else:
            # The bytes `Doc.to_json` writes (`ner-fast tag`): one encoding of a document everywhere.
            answers.append(json_line(dicts[0] if job.single else dicts))
    return answers


def cut(job: Job, piece_tokens: int) -> list[Piece]:
    """`job` in pieces of about `piece_tokens` tokens each (at least one part a piece), in order: whole
    texts (or sentences) while they fit, a text of more tokens cut between its sentences (a sentence
    is never cut). Tokenizes every text: call it off the event loop for a large job."""
    pieces: list[Piece] = []
    parts: list[Part] = []
    size = 0

    def add(part: Part, tokens: int) -> None:
        nonlocal parts, size
        if parts and size + tokens > piece_tokens:
            pieces.append(Piece(parts, size))
            parts, size = [], 0
        parts.append(part)
        size += tokens

    for index, (text, (words, starts, ends, offsets)) in enumerate(_segments_of(job)):
        if len(words) <= piece_tokens:
            add(Part(index, text, (words, starts, ends, offsets)), max(1, len(words)))
            continue
        first = 0  # sentence index where the current run starts
        for k in range(1, len(offsets)):
            last = k == len(offsets) - 1
            if last or offsets[k + 1] - offsets[first] > piece_tokens:
                a, b = offsets[first], offsets[k]
                add(Part(index, text, (words[a:b], starts[a:b], ends[a:b], [o - a for o in offsets[first : k + 1]]), a),
                    b - a)
                first = k
    if parts:
        pieces.append(Piece(parts, size))
    return pieces


def assemble(job: Job, answers: Sequence[list[dict[str, Any]]], pieces: Sequence[Piece]) -> bytes:
    """The JSON answer of `job` from the answers of its `pieces` (`cut`): a text cut between its
    sentences is one document again (token indices of its later parts shifted back)."""
    docs: list[dict[str, Any]] = []
    for piece, dicts in zip(pieces, answers):
        for part, doc in zip(piece.parts, dicts):
            if part.index == len(docs):  # a text's first part (parts come in order)
                docs.append(doc)
                continue
            whole = docs[part.index]
            shift = part.first_token
            whole["entities"].extend({**e, "token_start": e["token_start"] + shift, "token_end": e["token_end"] + shift}
                                     for e in doc["entities"])
            whole["sentences"].extend(doc["sentences"])
            whole["tokens"].extend(doc["tokens"])
    return json_line(docs[0] if job.single else docs)
