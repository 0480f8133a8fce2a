"""`CharCache`: the character CNN's features of each word form, computed once and kept across batches.

A format-2 package (`package.CHAR_GRAPH_FILE`) has the character CNN as its own graph: int32 character
rows (n, max_token_chars) -> float32 features (n, F), a row's features depending on that row alone (as
the single graph's `Unique` over a batch's rows already relies on). Most tokens of a batch are word forms
seen in earlier batches (97 % on GMB), so the tagger looks each token's row up here and runs the graph
only on the distinct rows it has not seen: the features are the same floats, whatever was cached before.

The key is the character row itself (its bytes), not the token string: the row is exactly what the CNN
reads, so tokens whose rows are equal (cut at max_token_chars, unknown characters mapped to one id, all
padding positions) share one entry, and no rule of the character kernel is repeated here. The ids are
written in the narrowest unsigned type that holds the character vocabulary (uint8 for GMB's ~100
characters: a 20-byte key hashes and compares in about half the time of an 80-byte int32 one).

Bounded: rows go into a preallocated float32 (capacity, F) matrix and no row is inserted past
`capacity` (no eviction: a published row never changes, so readers need no lock); a row seen when the
cache is full is computed for its batch and not kept. Insertions take a lock (`Tagger` workers run
batches in threads); a slot is published in the dict only after its row is written.
"""
from __future__ import annotations

import numbers
import threading
from typing import Any

import numpy as np

from ner_fast.buckets import MAX_BATCH_TOKENS
from ner_fast.errors import CacheSizeError

#: Rows a `Tagger.load` cache holds by default: 50,000 x F float32 (10.6 MB at F=53, 30 MB at F=150),
#: plus the dict of keys (measured with tracemalloc: 6.9 MB for 50,000 20-byte keys, max_token_chars 20).
DEFAULT_CHAR_CACHE = 50_000


def check_capacity(capacity: object) -> int:
    """`capacity` (`Tagger.load(char_cache=...)`) as an int if it is a whole number of rows, 0 or more (a
    NumPy integer too); ValueError otherwise (a float, a bool, a string, a negative number). Checked whatever
    the package's format, before any session starts."""
    if isinstance(capacity, (bool, np.bool_)) or not isinstance(capacity, numbers.Integral) or capacity < 0:
        raise ValueError(f"char_cache must be a whole number of rows, 0 or more, got {capacity!r} ({type(capacity).__name__})")
    return int(capacity)


class CharCache:
    """The features of character rows, computed by `session` (the character graph) once per distinct row
    and kept for up to `capacity` rows (0: nothing kept, every batch computes its distinct rows).
    `n_chars`: the size of the character vocabulary (every id below it), which picks the keys' type."""

    def __init__(self, session: Any, max_token_chars: int, capacity: int = DEFAULT_CHAR_CACHE, n_chars: int | None = None) -> None:
        capacity = check_capacity(capacity)
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or inputs[0].shape[1] != max_token_chars:
            raise ValueError(f"the character graph must map (rows, {max_token_chars}) character ids to (rows, F) features")
        width = outputs[0].shape[1]
        if type(width) is not int or width < 1:
            raise ValueError(f"the character graph's output must have a fixed width, got {width!r}")
        self.width = width
        self.capacity = capacity
        self._session = session
        self._input = inputs[0].name
        self._chars = max_token_chars
        n = np.iinfo(np.int32).max if n_chars is None else n_chars
        self._code = np.dtype(np.uint8 if n <= 1 << 8 else np.uint16 if n <= 1 << 16 else np.int32)
        self._key = np.dtype((np.void, self._code.itemsize * max_token_chars))  # one row as one bytes key
        try:
            self._table = np.zeros((max(capacity, 1), width), dtype=np.float32)
        except (MemoryError, ValueError):  # ValueError: past numpy's largest dimension
            raise CacheSizeError(f"char_cache: {capacity:,} rows of {width} features ({capacity * width * 4 / 2**30:,.1f} GiB)"
                                 f" cannot be allocated; give fewer rows (default {DEFAULT_CHAR_CACHE:,})") from None
        self._slots: dict[bytes, int] = {}
        self._used = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Rows held."""
        return self._used

    def compute(self, rows: np.ndarray) -> np.ndarray:
        """The character graph on int32 rows (n, max_token_chars): (n, F), in pieces of at most
        `buckets.MAX_BATCH_TOKENS` rows, so no call's memory grows with its size."""
        pieces = [self._session.run(None, {self._input: rows[i:i + MAX_BATCH_TOKENS]})[0]
                  for i in range(0, len(rows), MAX_BATCH_TOKENS)]
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def features(self, rows: np.ndarray) -> np.ndarray:
        """float32 (n, F): the features of int32 character rows (n, max_token_chars), cached or computed."""
        keys = np.ascontiguousarray(rows, dtype=self._code).view(self._key).ravel().tolist()  # bytes, one a row
        slots = list(map(self._slots.get, keys))
        if None not in slots:
            return self._table.take(slots, axis=0)
        missing = dict.fromkeys(k for k, s in zip(keys, slots) if s is None)  # distinct, in order
        distinct = np.frombuffer(b"".join(missing), dtype=self._code).reshape(len(missing), self._chars)
        fresh = self.compute(distinct.astype(np.int32))
        self._insert(missing, fresh)
        slots = list(map(self._slots.get, keys))
        if None not in slots:
            return self._table.take(slots, axis=0)
        # The cache is full: rows not kept come from `fresh` (index -1 - i: row i of it).
        where = {k: -1 - i for i, k in enumerate(missing)}
        index = np.array([s if s is not None else where[k] for k, s in zip(keys, slots)], dtype=np.int64)
        kept = index >= 0
        out = np.empty((len(keys), self.width), dtype=np.float32)
        out[kept] = self._table.take(index[kept], axis=0)
        out[~kept] = fresh.take(-1 - index[~kept], axis=0)
        return out

    def _insert(self, missing: dict[bytes, None], fresh: np.ndarray) -> None:
        """Keep the rows of `fresh` (those of the keys of `missing`, in order) that another thread has not
        kept meanwhile, while there is room: rows written first, then their slots published."""
        with self._lock:
            room = self.capacity - self._used
            if room <= 0:
                return
            new = [i for i, k in enumerate(missing) if k not in self._slots][:room]
            if not new:
                return
            start = self._used
            self._table[start:start + len(new)] = fresh[new]
            keys = list(missing)
            self._slots.update((keys[i], start + j) for j, i in enumerate(new))
            self._used = start + len(new)
