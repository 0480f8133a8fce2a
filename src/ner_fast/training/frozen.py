"""`train --freeze-vectors`: the word-embedding entries that started from a pretrained vector keep their
pretrained values throughout training (docs/TRAINING.md, "Frozen vectors").

Which entries: the first d numbers (the vectors' own) of every row whose word the vectors know
(`rows.frozen_entries`, the rule `rows.rows_by_word` starts them with); rows without a vector and the
extra numbers of a wider embedding train as without the option.

How: the network keeps its one word-embedding parameter, `word_embed_weight`, so the checkpoint, the
average, export, evaluate, `--init` and `--resume` see the ordinary table and the package format does
not change. After each Adam step on it (`FrozenAdam`, which the module's updater or a local kvstore
calls, per device), and whenever the parameter average is read (`epoch.ParamAverage`), the frozen
entries are set back to their values (`FrozenEntries.restore`): an exact copy, whatever Adam or the
average's float32 rounding did to them. Rewriting them, rather than multiplying their gradient by zero,
does not rest on the optimizer leaving zero-gradient entries alone. Parameter servers run their own
optimizer, so `TrainConfig` refuses the option with a `dist` kvstore.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import mxnet as mx
import numpy as np

from ner_fast.training.rows import frozen_entries

#: The parameter whose entries are frozen.
WORD_TABLE = "word_embed_weight"


class FrozenEntries:
    """The frozen entries of one parameter: a boolean `mask` and their `values` (zero elsewhere), both of
    the parameter's shape, kept as NumPy arrays and as NDArrays on each device that asks (`restore`)."""

    def __init__(self, mask: np.ndarray, values: np.ndarray, name: str = WORD_TABLE) -> None:
        if mask.shape != values.shape:
            raise ValueError(f"mask {mask.shape} and values {values.shape} differ")
        self.name, self.mask, self.values = name, mask.astype(bool), values.astype(np.float32)
        self._on: dict[Any, tuple[Any, Any]] = {}

    @classmethod
    def of_vectors(cls, words: Sequence[str], known: Mapping[str, int], vectors: np.ndarray, width: int) -> "FrozenEntries":
        """The entries that start from `vectors` (rows of the words in `known`) in a table of `width` numbers a word."""
        return cls(*frozen_entries(words, known, vectors, width))

    @property
    def count(self) -> int:
        """How many numbers are frozen."""
        return int(self.mask.sum())

    def restore(self, weight: Any) -> None:
        """Set the frozen entries of the NDArray `weight` (this parameter's shape) back to their values."""
        if weight.context not in self._on:
            self._on[weight.context] = (mx.nd.array(self.mask, ctx=weight.context, dtype=np.float32),
                                        mx.nd.array(self.values, ctx=weight.context, dtype=np.float32))
        mask, values = self._on[weight.context]
        mx.nd.where(mask, values, weight, out=weight)  # in place: each entry reads only itself

    def restore_module(self, module: Any) -> None:
        """Set the frozen entries back on every device of the BucketingModule `module` (`train._save`, before
        every save): a Ctrl-C can land between `FrozenAdam`'s Adam step and its restore."""
        group = module._buckets[module._default_bucket_key]._exec_group  # its bucket modules share this memory
        for name, devices in zip(group.param_names, group.param_arrays):
            if name == self.name:
                for weight in devices:
                    self.restore(weight)

    def check(self, table: np.ndarray, where: str) -> None:
        """ValueError naming `where` unless `table`'s frozen entries hold exactly their values (a resumed run's)."""
        if table.shape != self.mask.shape or not np.array_equal(table[self.mask], self.values[self.mask]):
            raise ValueError(f"{where}: the word rows that --freeze-vectors keeps are not the vectors' values"
                             " (the vectors or the run changed)")


@mx.optimizer.register
class FrozenAdam(mx.optimizer.Adam):  # type: ignore[misc]
    """Adam whose update of `frozen.name` ends by restoring `frozen`'s entries (created by name,
    "frozenadam", with `frozen=` among the optimizer parameters)."""

    def __init__(self, frozen: FrozenEntries, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frozen = frozen

    def update(self, index: Any, weight: Any, grad: Any, state: Any) -> None:
        super().update(index, weight, grad, state)
        # Indices are ints (the module's updater) or parameter names (a local kvstore's).
        if self.idx2name.get(index, index) == self.frozen.name:
            self.frozen.restore(weight)
