"""The bucketing data iterator that feeds prepared buckets to `mx.mod.BucketingModule`.

Each batch comes from one bucket (so one graph, one sequence length). Batches always hold
`batch_size` rows: a bucket's last, partial batch is topped up with all-padding rows (features 0,
labels -1), which get no gradient and no metric, so every sentence is used and every token scored.

Training shuffles sentences within each bucket and the order of batches across buckets, afresh
each epoch from (seed, epoch), as the tutorial's iterator does. For parameter-server training the
epoch's batch list is the same on every worker (same seed) and worker `part_index` of `num_parts`
takes every `num_parts`-th batch, cut to an equal count so all workers push the same number of times.

`word_dropout` (training only) replaces each real word id by UNK with that probability, drawn
afresh every epoch: the network then learns to tag from characters and casing too, as it must for
words it has never seen.

With `teacher` (distillation, `distill.py`) each batch carries a second label, the teacher's per-token
distributions (B, L, T) of its rows (zeros on padding); `soft_tags` T alone (validation of a distilling
module, which binds that label too) gives zeros of that width.
"""
from __future__ import annotations

from typing import Sequence

import mxnet as mx
import numpy as np

from ner_fast.buckets import Bucket
from ner_fast.features import ROW_WORD
from ner_fast.training.model import TEACHER_LABEL
from ner_fast.vocab import UNK


class BucketIter(mx.io.DataIter):
    """Batches of (`data` (B, F, L) float32, `softmax_label` (B, L) float32) with `bucket_key` = L.

    Call `start_epoch(epoch)` before each pass; `batch.index` holds each row's sentence index in
    its split (-1 for filler rows) so results can be put back in input order.
    """

    def __init__(
        self,
        buckets: Sequence[Bucket],
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        num_parts: int = 1,
        part_index: int = 0,
        word_dropout: float = 0.0,
        teacher: Sequence[np.ndarray] | None = None,
        soft_tags: int = 0,
    ):
        super().__init__(batch_size)
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        if not 0 <= part_index < num_parts:
            raise ValueError(f"part_index {part_index} must lie in 0..{num_parts - 1}")
        if teacher is not None:
            if len(teacher) != len(buckets) or any(t.shape[:2] != (len(b.lengths), b.length) for t, b in zip(teacher, buckets)):
                raise ValueError("teacher needs one (sentences, length, tags) array per bucket")
            soft_tags = int(teacher[0].shape[2]) if len(teacher) else soft_tags
        self.teacher = None if teacher is None else [t for t, b in zip(teacher, buckets) if len(b.lengths) > 0]
        self.soft_tags = soft_tags
        self.buckets = [b for b in buckets if len(b.lengths) > 0]
        if not self.buckets:
            raise ValueError("no sentences to iterate over")
        if not 0 <= word_dropout < 1:
            raise ValueError("word_dropout must lie in [0, 1)")
        self.shuffle = shuffle
        self.word_dropout = word_dropout
        self.seed = seed
        self.num_parts = num_parts
        self.part_index = part_index
        self.n_features = int(self.buckets[0].features.shape[1])
        self.default_bucket_key = max(int(b.length) for b in self.buckets)
        self._plan: list[tuple[int, np.ndarray]] = []
        self._epoch = 0
        self._cursor = 0
        self.start_epoch(0)

    @property
    def provide_data(self) -> list[mx.io.DataDesc]:
        return [mx.io.DataDesc("data", (self.batch_size, self.n_features, self.default_bucket_key))]

    @property
    def provide_label(self) -> list[mx.io.DataDesc]:
        descs = [mx.io.DataDesc("softmax_label", (self.batch_size, self.default_bucket_key))]
        if self.soft_tags:
            descs.append(mx.io.DataDesc(TEACHER_LABEL, (self.batch_size, self.default_bucket_key, self.soft_tags)))
        return descs

    @property
    def num_batches(self) -> int:
        """Batches in one epoch (for this part)."""
        return len(self._plan)

    @property
    def num_tokens(self) -> int:
        """Real tokens in one epoch (for this part)."""
        return int(sum(self.buckets[b].lengths[rows].sum() for b, rows in self._plan))

    def start_epoch(self, epoch: int) -> None:
        """Plan the batches of pass `epoch` (a pure function of seed and epoch) and rewind."""
        rng = np.random.default_rng((self.seed, epoch))
        plan: list[tuple[int, np.ndarray]] = []
        for b, bucket in enumerate(self.buckets):
            n = len(bucket.lengths)
            order = rng.permutation(n) if self.shuffle else np.arange(n)
            plan += [(b, order[i : i + self.batch_size]) for i in range(0, n, self.batch_size)]
        if self.shuffle:
            plan = [plan[i] for i in rng.permutation(len(plan))]
        if self.num_parts > 1:
            per_part = len(plan) // self.num_parts
            if per_part == 0:
                raise ValueError(f"{len(plan)} batches cannot be shared among {self.num_parts} workers")
            plan = plan[self.part_index :: self.num_parts][:per_part]
        self._plan = plan
        self._epoch = epoch
        self.reset()

    def reset(self) -> None:
        """Rewind to the start of the current epoch's plan (same order, same word dropout)."""
        self._cursor = 0
        self._rng = np.random.default_rng((self.seed, self._epoch, 1))

    def next(self) -> mx.io.DataBatch:
        if self._cursor >= len(self._plan):
            raise StopIteration
        b, rows = self._plan[self._cursor]
        self._cursor += 1
        bucket = self.buckets[b]
        length = int(bucket.length)
        pad = self.batch_size - len(rows)
        data = np.zeros((self.batch_size, self.n_features, length), dtype=np.float32)
        label = np.full((self.batch_size, length), -1, dtype=np.float32)
        data[: len(rows)] = bucket.features[rows]
        label[: len(rows)] = bucket.tags[rows]
        if self.word_dropout > 0:
            words = data[:, ROW_WORD]  # a view: writes go into `data`
            words[(words > UNK) & (self._rng.random(words.shape) < self.word_dropout)] = UNK
        index = np.full(self.batch_size, -1, dtype=np.int64)
        index[: len(rows)] = bucket.indices[rows]
        labels = [label]
        if self.soft_tags:
            soft = np.zeros((self.batch_size, length, self.soft_tags), dtype=np.float32)
            if self.teacher is not None:
                soft[: len(rows)] = self.teacher[b][rows]
            labels.append(soft)
        names = ("softmax_label", TEACHER_LABEL)
        return mx.io.DataBatch(
            data=[mx.nd.array(data)],
            label=[mx.nd.array(a) for a in labels],
            pad=pad,
            index=index,
            bucket_key=length,
            provide_data=[mx.io.DataDesc("data", data.shape)],
            provide_label=[mx.io.DataDesc(n, a.shape) for n, a in zip(names, labels)],
        )
