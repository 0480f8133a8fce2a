"""Word-embedding rows carried over by word: the one rule that pretrained vectors (`--vectors`) and
starting from an earlier model (`--init`) share.

A new vocabulary's row for a word comes from the source when the source knows that word (exact string:
both sides look words up the way their vocabulary was built, lower-cased or not); every other row keeps
its fresh initialisation.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def rows_by_word(
    words: Sequence[str], known: Mapping[str, int], vectors: np.ndarray, fresh: np.ndarray
) -> tuple[np.ndarray, int]:
    """A copy of `fresh` (one row per entry of `words`) whose row i is `vectors[known[words[i]]]` wherever
    `words[i]` is in `known`. Returns the matrix (float32) and how many rows came from `vectors`.
    Raises ValueError when `fresh` has another number of rows than `words`, or `vectors` another width."""
    fresh = np.asarray(fresh)
    vectors = np.asarray(vectors)
    if fresh.ndim != 2 or fresh.shape[0] != len(words):
        raise ValueError(f"fresh rows must be ({len(words)}, width), got {fresh.shape}")
    if vectors.ndim != 2 or vectors.shape[1] != fresh.shape[1]:
        raise ValueError(f"source vectors have width {vectors.shape[-1]}, the embedding {fresh.shape[1]}")
    out = np.array(fresh, dtype=np.float32, copy=True)
    pairs = [(i, known[w]) for i, w in enumerate(words) if w in known]
    if pairs:
        rows, src = (np.fromiter(col, dtype=np.int64, count=len(pairs)) for col in zip(*pairs))
        out[rows] = vectors[src]
    return out, len(pairs)
