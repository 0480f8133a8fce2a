"""Bucketing: sentences grouped by padded length into contiguous tensors.

A bucket of length L holds every sentence assigned to it (the smallest bucket length that fits
the sentence) as ``features`` (n, F, L) int32, zero on padding, ``tags`` (n, L) int32 with
`IGNORE_LABEL` on padding, the true ``lengths`` and each sentence's ``indices`` in its split.
Sentences keep their original order inside a bucket.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from collections.abc import Iterable
from typing import Sequence

import numpy as np

from ner_fast import _kernels
from ner_fast.features import TokenFeatures

#: Label value of padding positions (``SoftmaxOutput(use_ignore=True, ignore_label=-1)``).
IGNORE_LABEL = -1
#: Most padded tokens (sentences x padded length) one inference batch of sentences longer than every
#: bucket may hold; a longer sentence runs alone. 8192 tokens are ~100 MB of LSTM activations at the
#: default dimensions, where one 2,000-token sentence padding 63 short ones took 2.7 GB.
MAX_BATCH_TOKENS = 8192
#: The longest bucket (`--buckets` of prepare, train and export): the tagger runs a longer sentence in
#: pieces of at most `MAX_BATCH_TOKENS` (`text.piece_lengths`), so no longer padded length is ever used, and one batch
#: of a bucket is its length times the batch size (a length of 10**21 ended in an OverflowError).
MAX_BUCKET_LENGTH = MAX_BATCH_TOKENS


@dataclass
class Bucket:
    """The sentences of one bucket, laid out for the network (see the module docstring)."""

    length: int
    features: np.ndarray
    tags: np.ndarray | None
    lengths: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


def digest(buckets: Sequence[Bucket]) -> str:
    """A sha256 of a split's buckets (their lengths, features, tags and sentence order): equal exactly when
    a network would train or validate on the same data. A run records its splits' (`prepare`'s summary),
    so that `train --resume` and `evaluate` can tell a corpus or prepared folder changed since."""
    h = hashlib.sha256()
    for b in buckets:
        h.update(np.int64(b.length).tobytes())
        for part in (b.features, b.tags, b.lengths, b.indices):
            h.update(b"-" if part is None else np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


def default_buckets(lengths: Sequence[int] | np.ndarray, batch_size: int) -> list[int]:
    """The tutorial's rule: one bucket for every sentence length with at least `batch_size` sentences.

    Longer sentences than the largest such length are left to the caller: training cuts them to it
    (`training_buckets` without `keep_long`), other splits get buckets of their own.
    When no length is that frequent (a tiny corpus), the one bucket is the longest length, so
    nothing is cut. No bucket is longer than `MAX_BUCKET_LENGTH`, the bound `--buckets` has (a CoNLL
    file without blank lines, one 9,000-token sentence, made a 9,000 bucket that `export --buckets auto`
    wrote as a graph): longer lengths become that bucket, their training sentences cut to it.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    chosen = _frequent_lengths(lengths, batch_size)
    if not chosen:
        longest = int(lengths.max()) if len(lengths) else 0
        return [min(max(longest, 1), MAX_BUCKET_LENGTH)]
    return chosen


def _frequent_lengths(lengths: np.ndarray, batch_size: int) -> list[int]:
    """The lengths with at least `batch_size` sentences (the tutorial's buckets), at most `MAX_BUCKET_LENGTH`."""
    counts = np.bincount(lengths) if len(lengths) else np.zeros(1, dtype=np.int64)
    return sorted({min(int(n), MAX_BUCKET_LENGTH) for n in np.flatnonzero(counts >= batch_size) if n > 0})


def training_buckets(
    lengths: Sequence[int] | np.ndarray, batch_size: int, keep_long: bool, given: Sequence[int] | None = None
) -> list[int]:
    """The bucket lengths of a training split (`prepare`, the one rule): `given` (`--buckets`) or the
    tutorial's, and with `keep_long` (the default recipe's `--keep-long`) buckets for the training
    sentences longer than the largest of those (all of them, where no length holds `batch_size`).

    The tutorial cuts those sentences to its largest bucket. On GMB few are (270 of the 38,367
    training sentences lose 1,695 of 839,237 tokens), but on a few hundred sentences of another
    corpus the largest frequent length is short: 500 wikigold sentences at batch size 16 lost 23% of
    their tokens. `keep_long` carries the rule on (`_long_buckets`): every added bucket but the
    longest holds at least `batch_size` of them, so padding stays small and nothing is cut, up to
    `long_bucket_limit` tokens (longer sentences are cut to that, or to the largest bucket without
    `keep_long` where that is longer: it never cuts more). Without `keep_long`: `given`, or `default_buckets`.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    cut = sorted({int(b) for b in given}) if given else default_buckets(lengths, batch_size)
    if not keep_long:
        return cut
    chosen = sorted({int(b) for b in given}) if given else _frequent_lengths(lengths, batch_size)
    top = chosen[-1] if chosen else 0
    longer = lengths[lengths > top]
    if len(longer):
        # Never cut shorter than the rule without keep_long: where no length is frequent, its one bucket
        # is the longest sentence, so nothing is cut even where that is over `long_bucket_limit`.
        limit = max(long_bucket_limit(batch_size), cut[-1])
        chosen = sorted(set(chosen) | set(_long_buckets(np.minimum(longer, limit), batch_size)))
    return chosen or [1]


def _long_buckets(lengths: np.ndarray, batch_size: int) -> list[int]:
    """`training_buckets`' buckets for the sentences longer than the others: walking their lengths up, a
    bucket closes at a length once it holds `batch_size` sentences; those left over at the end, fewer,
    make the last bucket (not joining the one before: one outlier would pad a full bucket to its length)."""
    values, counts = np.unique(lengths, return_counts=True)
    ends: list[int] = []
    held = 0
    for value, count in zip(values.tolist(), counts.tolist()):
        held += count
        if held >= batch_size:
            ends.append(value)
            held = 0
    if held:
        ends.append(int(values[-1]))
    return ends


def long_bucket_limit(batch_size: int) -> int:
    """The longest bucket `training_buckets`' `keep_long` adds: one training batch of it (`batch_size` rows, every batch is
    padded to that many) holds at most `MAX_BATCH_TOKENS` tokens, the bound of an inference batch, so
    one stray very long sentence (a CoNLL file missing a blank line) cannot make every epoch's
    memory that of batch size x its length."""
    return max(1, min(MAX_BUCKET_LENGTH, MAX_BATCH_TOKENS // max(batch_size, 1)))


def assign_buckets(lengths: np.ndarray, bucket_lengths: Sequence[int]) -> np.ndarray:
    """Index into sorted `bucket_lengths` of the smallest bucket that fits each sentence.

    A sentence longer than every bucket gets ``len(bucket_lengths)``.
    """
    return np.searchsorted(np.asarray(bucket_lengths, dtype=np.int64), np.asarray(lengths), side="left")


def checked_bucket_lengths(values: object) -> list[int]:
    """The one rule of bucket lengths that a caller gives (`Tagger.load(buckets=)`, `--buckets`, export,
    `build_buckets`): an iterable, not a str, of positive integers (no bools, no floats), returned sorted
    without repeats; a ValueError naming what was given otherwise. An empty list is valid here (the
    free-length graph alone); an option that needs one length says so itself."""
    items = list(values) if isinstance(values, Iterable) and not isinstance(values, (str, bytes)) else None
    if items is None or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in items):
        raise ValueError(f"bucket lengths must be positive integers, got {values!r}")
    return sorted({int(v) for v in items})


def check_batch_size(batch_size: object) -> None:
    """The rule of every `batch_size` a caller gives the tagger (`tag_batch`, `pipe`): a positive int
    (TypeError for another type, such as the string "4", ValueError below 1)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__} {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


def plan_batches(
    lengths: np.ndarray, bucket_lengths: Sequence[int], batch_size: int, max_tokens: int = MAX_BATCH_TOKENS
) -> list[tuple[int | None, np.ndarray]]:
    """Inference batches: (padded length, sentence indices int64), or (None, indices) for the free-length graph.

    A sentence goes to the smallest bucket that fits it (`assign_buckets`), `batch_size` at a time, in
    input order. Sentences longer than every bucket (all of them when there is no bucket) are sorted by
    length and cut into batches of at most `batch_size` sentences and at most `max_tokens` padded
    tokens, so that one long sentence never pads short ones: the cost follows the real tokens. Empty
    sentences get no batch.
    """
    if batch_size < 1 or max_tokens < 1:
        raise ValueError(f"batch_size and max_tokens must be positive, got {batch_size} and {max_tokens}")
    lengths = np.asarray(lengths, dtype=np.int64)
    which = assign_buckets(lengths, bucket_lengths)
    if len(lengths) == 1:  # one sentence (the tagger's latency path): no grouping work
        if lengths[0] == 0:
            return []
        k = int(which[0])
        return [(int(bucket_lengths[k]) if k < len(bucket_lengths) else None, np.zeros(1, dtype=np.int64))]
    which[lengths == 0] = -1
    batches: list[tuple[int | None, np.ndarray]] = []
    for k in np.unique(which[(which >= 0) & (which < len(bucket_lengths))]).tolist():
        members = np.flatnonzero(which == k)
        batches += [(int(bucket_lengths[k]), members[a : a + batch_size]) for a in range(0, len(members), batch_size)]
    longer = np.flatnonzero(which == len(bucket_lengths))
    longer = longer[np.argsort(lengths[longer], kind="stable")]
    sizes = lengths[longer].tolist()
    start = 0
    while start < len(longer):
        # Sorted ascending, so a batch's last sentence sets its padded length, and count x that length
        # only grows with the count: the largest count under the cap is found by counting down.
        count = min(batch_size, len(longer) - start)
        while count > 1 and count * sizes[start + count - 1] > max_tokens:
            count -= 1
        batches.append((None, longer[start : start + count]))
        start += count
    return batches


def build_buckets(
    token_features: TokenFeatures | np.ndarray,
    offsets: np.ndarray,
    tag_ids: np.ndarray | None,
    bucket_lengths: Sequence[int],
    cut: bool,
) -> tuple[list[Bucket], int]:
    """Lay out every sentence (tokens ``offsets[i]:offsets[i+1]``) in its bucket.

    `token_features` is a `TokenFeatures` or its (n_tokens, F) int32 matrix. With ``cut=True``
    sentences longer than the largest bucket are cut to it; with ``cut=False`` they get extra
    buckets of their own lengths. Returns the non-empty buckets, shortest first, and the number
    of sentences cut.
    """
    matrix = token_features.matrix if isinstance(token_features, TokenFeatures) else token_features
    matrix = np.ascontiguousarray(matrix, dtype=np.int32)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if tag_ids is not None:
        tag_ids = np.ascontiguousarray(tag_ids, dtype=np.int32)
    lengths = np.diff(offsets)
    buckets = checked_bucket_lengths(bucket_lengths)
    if cut and not buckets:
        raise ValueError("cutting needs at least one bucket length")

    longest = buckets[-1] if buckets else 0
    too_long = lengths > longest
    n_cut = int(too_long.sum()) if cut else 0
    if not cut and too_long.any():
        buckets += sorted({int(n) for n in lengths[too_long]})
    which = assign_buckets(lengths, buckets)
    if cut:
        which[too_long] = len(buckets) - 1

    order = np.argsort(which, kind="stable")
    counts = np.bincount(which, minlength=len(buckets))
    out: list[Bucket] = []
    start = 0
    for k, count in enumerate(counts.tolist()):
        if count == 0:
            continue
        members = np.ascontiguousarray(order[start : start + count], dtype=np.int64)
        start += count
        features, tags, true_lengths = _kernels.fill_bucket(matrix, tag_ids, offsets, members, buckets[k])
        out.append(Bucket(buckets[k], features, tags, true_lengths, members))
    return out, n_cut
