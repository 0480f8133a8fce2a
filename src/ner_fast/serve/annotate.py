"""What a worker thread does with a batch of requests: tokenize, tag every sentence of every request in
one `tag_batch` call (`ner_fast.engine.tag_texts`), and write each request's answer as JSON bytes (the
event loop only sends them)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ner_fast.engine import tag_texts
from ner_fast.text import join_tokens, json_line, segment


@dataclass(frozen=True)
class Job:
    """One request's work: raw `texts`, or pre-tokenized `sentences` (the other is None). `single`: the
    request sent one `text` and gets one document back, not a list. `tokens` estimates its size for batching."""

    texts: list[str] | None
    sentences: list[list[str]] | None
    single: bool
    tokens: int


def annotate(tagger: Any, jobs: Sequence[Job]) -> list[bytes]:
    """One JSON answer (UTF-8) per job: a `Doc.to_dict()` for a single text, else a list of them."""
    texts: list[str] = []
    segments = []
    for job in jobs:
        if job.texts is not None:
            for text in job.texts:
                texts.append(text)
                segments.append(segment(text))
        else:
            assert job.sentences is not None
            for tokens in job.sentences:  # kept as given, one sentence each
                text, starts, ends = join_tokens(tokens)
                texts.append(text)
                segments.append((tokens, starts, ends, [0, len(tokens)] if tokens else [0]))
    docs = iter(tag_texts(tagger, texts, segments=segments))
    answers = []
    for job in jobs:
        count = len(job.texts) if job.texts is not None else len(job.sentences or ())
        dicts = [next(docs).to_dict() for _ in range(count)]
        # The bytes `Doc.to_json` writes (`ner-fast tag`): one encoding of a document everywhere.
        answers.append(json_line(dicts[0] if job.single else dicts))
    return answers
