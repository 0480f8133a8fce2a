"""The tagging engine: one tagging call over the flat tokens of many sentences (`TagWork`), and raw text
driven through the stages segment -> tag -> Doc (`tag_texts` for a list, `pipe` for a lazy stream).

    texts --text.segment--> words + sentence lengths --Tagger._plan_flat--> features, batches
          --TagWork.run (threads; onnxruntime)--> flat tag ids and scores --doc.Tagged--> Doc each

`Tagger.__call__`, `Tagger.pipe` and `Tagger.tag_batch` are the entry points; this module calls down
into `text` (the tokenizer, the splitter, `Doc`) and into the tagger it is given (`Model`: what it
needs of one), never back up: it imports neither `tagger` nor onnxruntime.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import count as count_from
from typing import Any, Protocol

import numpy as np

from ner_fast.buckets import check_batch_size
from ner_fast.cores import check_threads
from ner_fast.doc import Doc, Tagged
from ner_fast.schemes import TagScheme
from ner_fast.text import Segments, segment
from ner_fast.vocab import UNK

#: Sentences an onnxruntime run of `pipe` and `tag_texts` (at most; `buckets.plan_batches`). onnxruntime's
#: memory arena grows to the largest run: `pipe` over 3,453 GMB validation sentences peaked 183 MB above
#: its start with 64, 66 MB with 16 (one text at a time: 6 MB), at the same speed within noise with the
#: batch-invariant bundled package (float LSTM; Intel Xeon, 2 cores, 2026-12-05). Outputs do not depend
#: on it (batch invariance, tests/test_invariance.py).
RUN_BATCH = 16

#: `pipe`'s default: sentences a `tag_batch` call. Large enough that most bucket graphs get full
#: batches (`tag_batch`'s own batch size), which is what makes `pipe` as fast as one big `tag_batch`.
BATCH_SIZE = 2048
#: `Tagger.tag_batch`'s default: sentences a graph run (the batches `buckets.plan_batches` makes).
TAG_BATCH_SIZE = 64

#: Tokens of Python work between two GIL releases of `pipe`'s thread (`_Pauses`): some 0.2 ms.
GIL_PAUSE_TOKENS = 256

#: A planned call: (feature matrix of every token, unit offsets into it, unit lengths, batches of
#: `buckets.plan_batches` as (bucket length or None, unit indices)).
Plan = tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int | None, np.ndarray]]]


def check_texts(texts: object, who: str, one: str = "") -> None:
    """The one rule of what a stream of raw texts may be (`Tagger.pipe`, the Dask partition function
    `partition.tag_docs`; `who` names the caller, `one` is the hint for a single text): an ordered iterable.
    Not one str or bytes (tagged a character at a time), a set or a dict (no order to give the results back
    in; a dict is its keys), nor a DataFrame (its column names); a TypeError saying so."""
    kind = type(texts).__name__
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{who} takes an iterable of texts, not one {kind}" + (f": {one}" if one else ""))
    if hasattr(texts, "columns"):
        raise TypeError(f"{who} takes an iterable of texts, not a {kind}: give its text column, df['text']")
    if not isinstance(texts, Iterable):
        raise TypeError(f"{who} takes an iterable of texts, got {kind} {texts!r}")
    if isinstance(texts, (Mapping, AbstractSet)):
        raise TypeError(f"{who} takes an ordered iterable of texts, not a {kind}")


class Model(Protocol):
    """What the engine needs of a tagger (`ner_fast.tagger.Tagger` is one): its tag and POS names,
    chunking scheme, default thread count, whether it reads POS input, and its two steps, planning
    flat tokens into batches and running one batch through its graph."""

    tags: list[str]
    pos_tags: list[str] | None
    scheme: TagScheme
    #: Each scheme type's reported label (the label map, `ner_fast.labels`); None: entities of it are dropped.
    entity_types: Sequence[str | None]
    workers: int
    uses_pos: bool

    def _plan_flat(self, words: Sequence[str], pos: Sequence[str] | None, lengths: np.ndarray, batch_size: int) -> Plan: ...

    def _infer(self, matrix: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, key: int | None, batch: np.ndarray,
               want_pos: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]: ...


class TagWork:
    """One tagging call over flat tokens (`Tagger._plan` / `_plan_flat`): the features of all its
    tokens, its batches (`jobs`, from `buckets.plan_batches`) and the flat per-token outputs they fill.

    `run(job)` tags one batch and writes only its own sentences' rows of the outputs, so jobs may run
    in any threads, in any order (onnxruntime releases the GIL): `Tagger.tag_batch` runs them with
    `run_all`, `pipe` keeps a pool of threads fed with the jobs of consecutive groups. When
    every job has run: `tag_ids` (int64, one per token), `probs` (float32 (tokens, tags), when asked),
    `scores` (float32, each token's probability of its tag, when asked) and `pos_ids` (int64, the POS
    head's choice, when asked and the package has a head), all in input order; `offsets` (int64,
    units + 1) locate each unit's tokens, a unit being a sentence, or a piece of one longer than
    `buckets.MAX_BATCH_TOKENS` (`Tagger._plan_flat`).
    """

    __slots__ = ("_model", "_matrix", "offsets", "lengths", "jobs", "tag_ids", "probs", "scores", "pos_ids")

    def __init__(
        self,
        model: Model,
        matrix: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        jobs: list[tuple[int | None, np.ndarray]],
        probs: bool = False,
        scores: bool = False,
        pos: bool = False,
    ) -> None:
        n_tokens = matrix.shape[0]
        self._model = model
        self._matrix = matrix
        self.offsets = offsets
        self.lengths = lengths
        self.jobs = jobs
        self.tag_ids = np.empty((n_tokens,), dtype=np.int64)
        self.probs = np.empty((n_tokens, len(model.tags)), dtype=np.float32) if probs else None
        self.scores = np.empty((n_tokens,), dtype=np.float32) if scores else None
        self.pos_ids = np.empty((n_tokens,), dtype=np.int64) if pos and model.pos_tags is not None else None

    def run(self, job: tuple[int | None, np.ndarray]) -> None:
        """Tag one batch of `jobs` and write its sentences' rows of the outputs."""
        key, batch = job
        want_pos = self.pos_ids is not None
        top, out, pos_scores = self._model._infer(self._matrix, self.offsets, self.lengths, key, batch, want_pos)
        # The batch's real tokens (`keep`, row by row) and their rows in the flat outputs (`rows`), in
        # the same order; one sentence (the latency path) as slices, which cost less than masks.
        if len(batch) == 1:
            a, n = int(self.offsets[batch[0]]), int(self.lengths[batch[0]])
            keep: Any = (0, slice(0, n))
            rows: Any = slice(a, a + n)
        else:
            positions = np.arange(top.shape[1])
            keep = positions < self.lengths[batch][:, None]
            rows = (self.offsets[batch][:, None] + positions)[keep]
        chosen = top[keep]
        self.tag_ids[rows] = chosen
        if self.probs is not None or self.scores is not None:
            real = out[keep]
            if self.probs is not None:
                self.probs[rows] = real
            if self.scores is not None:
                self.scores[rows] = real[np.arange(len(chosen)), chosen]
        if self.pos_ids is not None and pos_scores is not None:
            # POS ids 0 and 1 are <pad> and <unk>, never an answer.
            self.pos_ids[rows] = pos_scores[keep][:, UNK + 1 :].argmax(axis=1) + UNK + 1

    def run_all(self, workers: int) -> None:
        """Run every job: in this thread, or `workers` at once in threads."""
        if workers > 1 and len(self.jobs) > 1:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(self.run, self.jobs))  # list(): re-raises the first exception of a job
        else:
            for job in self.jobs:
                self.run(job)


# ------------------------------------------------------------------------------------ raw text


def check_reads_no_pos(uses_pos: bool, source: str = "raw text does not have",
                       remedy: str = "tag pre-tokenized sentences with their POS tags (tagger.tag / tagger.tag_batch with "
                                     "pos=...), or use a package trained without POS input") -> None:
    """ValueError for a model that reads POS tags (`uses_pos`) asked to tag input without them: the one rule
    of what can tag raw text, for the Python API (`check_model`, `Tagger.tag_batch`), `ner-fast tag`, `evaluate`,
    `serve` and a cluster run, each saying where its input comes from (`source`, after "which") and what to do
    instead (`remedy`)."""
    if uses_pos:
        raise ValueError(reads_pos_message(source, remedy))


def reads_pos_message(source: str, remedy: str) -> str:
    """The words of `check_reads_no_pos` (for an error of another class: a corpus's, naming its file)."""
    return f"this model reads POS tags, which {source}: {remedy}"


def check_model(model: Model) -> None:
    """ValueError for a model that cannot tag raw text (it reads POS tags, which raw text lacks)."""
    check_reads_no_pos(model.uses_pos)


def segment_input(index: int, text: Any) -> Segments:
    """`text.segment` of the input's text number `index`, whose errors name that number."""
    if not isinstance(text, str):
        raise TypeError(f"texts must be strings, got {type(text).__name__} (text {index})")
    try:
        return segment(text)
    except ValueError as err:
        raise ValueError(f"text {index}: {err}") from None


def tag_texts(
    model: Model,
    texts: Sequence[str],
    workers: int | None = None,
    segments: Sequence[Segments] | None = None,
) -> list[Doc]:
    """Tokenize, split and tag `texts` with one tagging call over all their sentences (`workers`
    batches at once, default the model's); one `Doc` each.

    `segments`: the texts' tokens and sentences as `segment` returns them, when the caller has them
    already (`ner-fast serve` for pre-tokenized sentences: `join_tokens`, one sentence each)."""
    check_model(model)
    if segments is None:  # one text (`Tagger.__call__`): its errors need no number
        segments = [segment(t) for t in texts] if len(texts) == 1 else [segment_input(i, t) for i, t in enumerate(texts)]
    group = _Group(model, texts, segments)
    group.work.run_all(model.workers if workers is None else workers)
    return group.docs()


class _Group:
    """Texts tagged by one call: their segments, the call (`work`, a `TagWork` not run yet) and, once its
    jobs have run, their `Doc`s."""

    __slots__ = ("texts", "segments", "work", "model", "futures")

    def __init__(self, model: Model, texts: Sequence[str], segments: Sequence[Segments]) -> None:
        self.model = model
        self.texts = texts
        self.segments = segments
        words = [w for seg in segments for w in seg[0]]
        lengths = np.fromiter(
            (b - a for seg in segments for a, b in zip(seg[3][:-1], seg[3][1:])), dtype=np.int64
        )
        self.work = TagWork(model, *model._plan_flat(words, None, lengths, RUN_BATCH), scores=True, pos=True)
        self.futures: list[Future[None]] = []

    def submit(self, pool: ThreadPoolExecutor) -> _Group:
        """Queue the call's jobs on `pool`."""
        self.futures = [pool.submit(self.work.run, job) for job in self.work.jobs]
        return self

    def docs(self) -> list[Doc]:
        """The texts' `Doc`s, once the jobs have run (waits for those queued by `submit`)."""
        for future in self.futures:
            future.result()  # re-raises a job's exception
        model, work = self.model, self.work
        tagged = Tagged(work.tag_ids, work.scores, work.pos_ids, model.tags, model.pos_tags, model.scheme, model.entity_types)
        docs = []
        base = 0
        for text, (words, starts, ends, offsets) in zip(self.texts, self.segments):
            docs.append(Doc(text, words, starts, ends, offsets, tagged, base))
            base += len(words)
        return docs

    def cancel(self) -> None:
        """Drop the jobs not started yet."""
        for future in self.futures:
            future.cancel()


def pipe(model: Model, texts: Iterable[str], batch_size: int = BATCH_SIZE, n_threads: int | None = None) -> Iterator[Doc]:
    """`Doc`s of `texts`, in input order, lazily: documents are read and segmented until they hold
    `batch_size` sentences (a document is never split), and each such group is one tagging call whose
    batches (grouped by length, `tag_batch`'s batch size) go to a pool of `n_threads` threads (default:
    the model's `workers`). The pool holds the jobs of two groups: while it tags them (onnxruntime
    releases the GIL), this thread segments the next group and hands out the `Doc`s of the previous one.

    When reading `texts` fails (the iterable raises, a text is not a str or holds a lone surrogate),
    every document before the failing one is yielded first, then the error is raised.
    """
    check_batch_size(batch_size)
    threads = model.workers if n_threads is None else check_threads("n_threads", n_threads)
    check_model(model)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="ner-fast-tag")
    pending: deque[_Group] = deque()
    pause = _Pauses()
    reading = _Reader(iter(texts), pause)
    try:
        for texts_, segments in reading.groups(batch_size):
            pending.append(_Group(model, texts_, segments).submit(pool))
            if len(pending) > 1:
                yield from pause.between(pending.popleft().docs())
        while pending:
            yield from pause.between(pending.popleft().docs())
        if reading.failure is not None:
            raise reading.failure
    finally:
        for group in pending:  # stopped early (or failed): drop the work not started yet
            group.cancel()
        pool.shutdown(wait=True)


class _Pauses:
    """Lets the pool's threads take the GIL while `pipe`'s thread works in Python (segmenting, handing
    out Docs, the caller's own work on each Doc): a release every `GIL_PAUSE_TOKENS` tokens.

    A thread that runs Python keeps the GIL until another has waited for it for `sys.getswitchinterval()`
    (5 ms). A tagging job needs the GIL for a moment after each of its nogil sections (filling the
    batch, onnxruntime's run, the Viterbi kernel), so with the tokenizer busy every job waited some
    5 ms several times for 9 ms of onnxruntime work. Measured (`benchmarks/text.py`, docs/BENCHMARKS.md, "Raw text").
    """

    __slots__ = ("tokens",)

    def __init__(self) -> None:
        self.tokens = 0

    def after(self, tokens: int) -> None:
        """Count `tokens` of work; release the GIL (`time.sleep(0)`) when they add up to GIL_PAUSE_TOKENS."""
        self.tokens += tokens
        if self.tokens >= GIL_PAUSE_TOKENS:
            self.tokens = 0
            time.sleep(0)

    def between(self, docs: list[Doc]) -> Iterator[Doc]:
        """The docs, with a pause after every GIL_PAUSE_TOKENS tokens of them (the caller works on each)."""
        for doc in docs:
            yield doc
            self.after(len(doc))


class _Reader:
    """`pipe`'s input, read and segmented in groups. A failure to read a text ends the groups (the texts
    read before it form the last one) and is kept in `failure`, for `pipe` to raise once it has handed
    out their Docs."""

    __slots__ = ("texts", "pause", "failure")

    def __init__(self, texts: Iterator[Any], pause: _Pauses) -> None:
        self.texts = texts
        self.pause = pause
        self.failure: Exception | None = None

    def groups(self, sentences: int) -> Iterator[tuple[list[str], list[Segments]]]:
        """Consecutive documents, segmented, holding at least `sentences` sentences (fewer at the end)."""
        group: list[str] = []
        segments: list[Segments] = []
        count = 0
        for index in count_from(0):
            try:
                text = next(self.texts, _END)
                if text is _END:
                    break
                segments.append(segment_input(index, text))
            except Exception as err:  # the caller's iterable, or a text that is not one
                self.failure = err
                break
            group.append(text)
            self.pause.after(len(segments[-1][0]))
            count += max(1, len(segments[-1][3]) - 1)  # a text without sentences counts one: the input stays lazy
            if count >= sentences:
                yield group, segments
                group, segments, count = [], [], 0
        if group:
            yield group, segments


_END = object()
