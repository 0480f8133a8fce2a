"""Word-embedding rows carried over by word: the one rule that pretrained vectors (`--vectors`) and
starting from an earlier model (`--init`) share.

A new vocabulary's row for a word comes from the source when the source knows that word (exact string:
both sides look words up the way their vocabulary was built, lower-cased or not); every other row keeps
its fresh initialisation.

Vectors inside a wider embedding (`--vectors` of d numbers with `--word-dim D`, D > d; `wider=True`):
a known word's row is its vector in the first d columns and ZERO in the other D - d; a word the vectors
do not know keeps its fresh draw in all D columns, as without vectors. Zero, not a draw, because of the
words the vectors add beyond the training data (`--vector-words`): training never shows them, so their
rows never get a gradient and Adam (no weight decay) never moves them. With a zero tail such a word
reads, when tagging, as exactly its vector plus nothing: the same input a training word known to the
vectors gave the network when training started. A random tail would be noise, different for every
such word, that the network never saw and never learned to ignore. Training words learn their tail from
zero (the LSTM's input weights for those columns are drawn, so the gradient there is not zero).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def rows_by_word(
    words: Sequence[str], known: Mapping[str, int], vectors: np.ndarray, fresh: np.ndarray, *, wider: bool = False
) -> tuple[np.ndarray, int]:
    """A copy of `fresh` (one row per entry of `words`) whose row i is `vectors[known[words[i]]]` wherever
    `words[i]` is in `known`. Returns the matrix (float32) and how many rows came from `vectors`.
    With `wider`, `vectors` may be narrower than `fresh`: a carried row is its vector, then zeros (the
    module's docstring says why). Raises ValueError when `fresh` has another number of rows than `words`,
    or `vectors` another width (with `wider`: a larger one)."""
    fresh = np.asarray(fresh)
    vectors = np.asarray(vectors)
    if fresh.ndim != 2 or fresh.shape[0] != len(words):
        raise ValueError(f"fresh rows must be ({len(words)}, width), got {fresh.shape}")
    width = vectors.shape[-1]
    if vectors.ndim != 2 or width > fresh.shape[1] or (width != fresh.shape[1] and not wider):
        raise ValueError(f"source vectors have width {width}, the embedding {fresh.shape[1]}")
    out = np.array(fresh, dtype=np.float32, copy=True)
    pairs = [(i, known[w]) for i, w in enumerate(words) if w in known]
    if pairs:
        rows, src = (np.fromiter(col, dtype=np.int64, count=len(pairs)) for col in zip(*pairs))
        out[rows, :width] = vectors[src]
        out[rows, width:] = 0.0
    return out, len(pairs)


def frozen_entries(
    words: Sequence[str], known: Mapping[str, int], vectors: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The entries of a word embedding (one row per entry of `words`, `width` numbers) that `--freeze-vectors`
    keeps at their pretrained values, by the rule `rows_by_word` starts them with: (mask, values), both
    (len(words), width); mask is True in the first d numbers (the vectors' width) of every row whose word is
    in `known`, False elsewhere (rows without a vector, the other width - d numbers); values holds
    `vectors[known[word]]` there and 0 elsewhere."""
    zeros = np.zeros((len(words), width), dtype=np.float32)
    values, _ = rows_by_word(words, known, vectors, zeros, wider=True)
    ones, _ = rows_by_word(words, known, np.ones_like(vectors, dtype=np.float32), zeros, wider=True)
    return ones.astype(bool), values
