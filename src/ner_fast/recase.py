"""Re-cased copies of training sentences (`--recase FRACTION`): the one home of the re-casing rule.

Text that is not cased like news (chat, transcripts, headlines, form fields) breaks a tagger that
learnt from capital letters. Training on extra copies of some sentences, re-cased, keeps the cased
score and holds most of it on lower- and upper-cased text (Mayhew et al. 2019; the trials in
docs/TRAINING.md). The rule:

- `round(fraction * n)` sentences of the n training sentences get one copy each (all of them at
  fraction 1), chosen by a NumPy generator seeded with `seed` (the sentences in their order);
- of the copies, half are lower-cased, a quarter upper-cased and a quarter title-cased (every word:
  first character upper, the rest lower), the modes shuffled among them by the same generator;
- the gold tags are the original's, token for token (re-casing keeps the tokens).

`recase_plan` is a pure function of (n, fraction, seed), so anything that needs to know which
sentence a copy came from (the distillation teacher reads the original casing) recomputes it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ner_fast.corpus import Corpus

#: The re-casing modes by id, as `recase_plan` gives them.
MODES = ("lower", "upper", "title")
#: The seed of the draw when none is given (`prepare --recase`: the copies do not depend on the training seed,
#: so a prepared folder serves every seed).
RECASE_SEED = 0


def recase_word(word: str, mode: str) -> str:
    """`word` lower-cased, upper-cased or title-cased (first character upper, the rest lower)."""
    if mode == "lower":
        return word.lower()
    if mode == "upper":
        return word.upper()
    if mode == "title":
        return word[:1].upper() + word[1:].lower()
    raise ValueError(f"re-casing mode must be one of {', '.join(MODES)}, got {mode!r}")


def recase_plan(n: int, fraction: float, seed: int = RECASE_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(origins, modes) of the copies of n sentences: `origins` (int64, ascending) the sentence each copy
    re-cases, `modes` (int8) its mode's index in `MODES`. Half lower, a quarter upper, the rest title
    (counts rounded down for lower and upper)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"the re-cased fraction must lie in [0, 1], got {fraction}")
    k = int(round(fraction * n))
    rng = np.random.default_rng(seed)
    origins = np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64) if k else np.zeros(0, np.int64)
    modes = np.full(k, 2, dtype=np.int8)
    modes[: k // 2] = 0
    modes[k // 2 : k // 2 + k // 4] = 1
    return origins, modes[rng.permutation(k)]


def recased_sentences(sentences: Sequence[Sequence[str]], fraction: float, seed: int = RECASE_SEED) -> tuple[list[list[str]], np.ndarray]:
    """The copies of `recase_plan(len(sentences), fraction, seed)` as token lists, and their origins."""
    origins, modes = recase_plan(len(sentences), fraction, seed)
    copies = [[recase_word(w, MODES[m]) for w in sentences[i]] for i, m in zip(origins.tolist(), modes.tolist())]
    return copies, origins


def origin_of(indices: np.ndarray, n: int, fraction: float, seed: int = RECASE_SEED) -> np.ndarray:
    """The original sentence of each training-split index: itself below n, else the copy's origin (the
    copies follow the n sentences, in `recase_plan` order)."""
    indices = np.asarray(indices, dtype=np.int64)
    origins, _ = recase_plan(n, fraction, seed)
    out = indices.copy()
    copy = indices >= n
    if copy.any():
        if int(indices.max()) >= n + len(origins):
            raise ValueError(f"sentence index {int(indices.max())} beyond the {n} sentences and {len(origins)} copies")
        out[copy] = origins[indices[copy] - n]
    return out


def with_recased_copies(corpus: Corpus, fraction: float, seed: int = RECASE_SEED) -> Corpus:
    """`corpus` followed by the re-cased copies of `recase_plan(len(corpus), fraction, seed)`: each copy with
    its original's POS and tags (sentence n + k is copy k; `origin_of` maps it back)."""
    if fraction == 0:
        return corpus
    sentences = [corpus.offsets[i : i + 2] for i in range(len(corpus))]
    copies, origins = recased_sentences([corpus.words[a:b] for a, b in sentences], fraction, seed)

    def column(values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        return values + [v for i in origins.tolist() for v in values[sentences[i][0] : sentences[i][1]]]

    lengths = np.diff(corpus.offsets)
    offsets = np.concatenate([corpus.offsets, corpus.offsets[-1] + np.cumsum(lengths[origins])])
    return Corpus(corpus.words + [w for c in copies for w in c], column(corpus.pos), column(corpus.tags), offsets,
                  corpus.source, corpus.format)
