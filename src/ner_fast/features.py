"""Tokens -> per-token feature ids, using the compiled kernels.

Every token gets ``F = 3 + max_token_chars`` int32 features, in the row order the model reads
(docs/ARCHITECTURE.md): word id, casing class, POS id, then its characters' ids cut or padded
with 0. Unseen words, characters and POS tags map to `UNK` (1); id 0 is padding only.

The same code serves training (a million tokens at once) and the tagger (one short sentence):
the vocabularies keep their lookup tables once built, so a call costs no setup.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ner_fast import _kernels
from ner_fast.vocab import Vocabularies, word_keys

ROW_WORD = 0
ROW_CASING = 1
ROW_POS = 2
ROW_CHARS = 3

#: Casing class names by id (id 0 is padding); defined next to the kernel that computes them.
CASING_CLASSES: tuple[str, ...] = _kernels.CASING_CLASSES


def n_features(max_token_chars: int) -> int:
    """Features per token: word, casing, POS and `max_token_chars` characters."""
    return ROW_CHARS + max_token_chars


@dataclass(frozen=True)
class TokenFeatures:
    """Per-token features as one int32 matrix (n_tokens, F), rows `ROW_WORD` .. `ROW_CHARS` as above."""

    matrix: np.ndarray

    def __len__(self) -> int:
        return self.matrix.shape[0]


def featurize(
    words: Sequence[str],
    pos: Sequence[str] | None,
    vocabs: Vocabularies,
    max_token_chars: int,
) -> TokenFeatures:
    """Feature ids of a flat token list (any number of sentences; see `TokenFeatures`).

    The POS row stays 0 when the vocabularies have no POS or `pos` is None.
    """
    if max_token_chars < 1:
        raise ValueError("max_token_chars must be at least 1")
    # Not zeroed: the kernels write every word, casing and character cell; only POS may stay 0.
    matrix = np.empty((len(words), n_features(max_token_chars)), dtype=np.int32)
    tokens = _kernels.Tokens(words)
    word_tokens = _kernels.Tokens(word_keys(words, True)) if vocabs.lowercase else tokens
    table, entries = vocabs.words.hash_table()
    _kernels.token_features(
        tokens, word_tokens, table, entries, vocabs.words.first_id, vocabs.chars.char_table(),
        matrix[:, ROW_WORD], matrix[:, ROW_CASING], matrix[:, ROW_CHARS:],
    )
    if pos is not None and vocabs.pos is not None:
        if len(pos) != len(words):
            raise ValueError(f"{len(pos)} POS tags for {len(words)} words")
        vocabs.pos.lookup_many(pos, out=matrix[:, ROW_POS])
    else:
        matrix[:, ROW_POS] = 0
    return TokenFeatures(matrix)


def tag_ids(tags: Sequence[str], vocabs: Vocabularies) -> np.ndarray:
    """Tag ids (int32) of a flat tag list; an unknown tag raises KeyError naming it."""
    return vocabs.tags.lookup_many(tags)


def tag_names(ids: Sequence[int] | np.ndarray, vocabs: Vocabularies) -> list[str]:
    """Tag strings of tag ids (the inverse of `tag_ids`)."""
    itos = vocabs.tags.itos
    return [itos[i] for i in np.asarray(ids).tolist()]
