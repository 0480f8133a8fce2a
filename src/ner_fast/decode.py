"""From tag probabilities to tags: per-token argmax, or the best *valid* tag sequence.

The network scores each token on its own, so its argmax can produce sequences no annotator
would write, such as `O I-per` or `B-geo I-org`; conlleval then counts a spurious entity. `bio`
decoding picks instead the sequence with the highest total log-probability among those that obey
the tagging scheme (Viterbi over a 0/-inf transition table; the network itself is unchanged).
On the GMB validation split this adds about one point of entity F1 (docs in the training report).

A model trained with a CRF output layer (`ModelConfig.crf`) also learned a score for each tag pair
(`CRF`): its tags are then always the Viterbi path of per-token log-probabilities plus those scores;
"bio" adds the hand rules on top, "argmax" is the CRF's own best path. The per-token log-softmax
differs from the CRF's raw emission scores by one constant per token, which shifts every path
equally, so the best path and the sentence likelihood (`crf_nll`) come out the same from either.

The rules of a valid sequence (IOB2, IOBES) are `ner_fast.schemes.transition_rules`.
NumPy and the compiled kernels only: the onnxruntime tagger uses this module too.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np

from ner_fast import _decode
from ner_fast.schemes import transition_rules

DECODERS = ("bio", "argmax")

# Names of the CRF parameters in a canonical parameter dict (checkpoint.param_shapes).
CRF_PARAMS = ("crf_transitions", "crf_start", "crf_end")


@dataclass(frozen=True)
class CRF:
    """Learned sequence scores of a CRF output layer, added to the per-token log-probabilities.

    `transitions[i, j]` scores tag j right after tag i; `start[j]` a sentence opening with j,
    `end[i]` one closing with i.
    """

    transitions: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @classmethod
    def from_params(cls, params: Mapping[str, np.ndarray]) -> "CRF":
        """The CRF of a canonical parameter dict (`crf_transitions`, `crf_start`, `crf_end`)."""
        return cls(*(np.asarray(params[name], dtype=np.float64) for name in CRF_PARAMS))

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "CRF":
        """The inverse of `to_json` (the `crf` entry of a package's model.json)."""
        return cls(*(np.asarray(doc[key], dtype=np.float64) for key in ("transitions", "start", "end")))

    def to_json(self) -> dict[str, Any]:
        """Plain lists of floats; float32 values survive the round trip through JSON exactly."""
        return {"transitions": self.transitions.tolist(), "start": self.start.tolist(), "end": self.end.tolist()}


#: The smallest probability taken as it is: below it, log(PROBA_FLOOR) (so 0 is not -inf). Defined beside the
#: compiled Viterbi that floors at it (`cython/_decode.pyx`), read from there.
PROBA_FLOOR: float = _decode.PROBA_FLOOR


def log_proba(proba: np.ndarray) -> np.ndarray:
    """float64 log-probabilities, floored at `PROBA_FLOOR` (the one rule of decoding and distillation)."""
    return np.log(np.maximum(np.asarray(proba, dtype=np.float64), PROBA_FLOOR))


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    # Several times faster than np.logaddexp.reduce; x holds no -inf here (CRF scores are finite).
    top = x.max(axis=axis, keepdims=True)
    return np.log(np.exp(x - top).sum(axis=axis)) + np.squeeze(top, axis=axis)


def _forward(logp: np.ndarray, mask: np.ndarray, crf: CRF) -> np.ndarray:
    """The forward algorithm's log-scores (B, L, T) for log-probabilities `logp` (B, L, T): at [b, t, k] the
    log-sum over every tag path of tokens 0..t ending in k; past a sentence's end (`mask` false) the last
    real token's, carried on. The one forward pass of `crf_nll` and `crf_marginals`."""
    alpha = np.empty(logp.shape)
    alpha[:, 0] = crf.start[None] + logp[:, 0]
    for t in range(1, logp.shape[1]):
        stepped = _logsumexp(alpha[:, t - 1, :, None] + crf.transitions[None], axis=1) + logp[:, t]
        alpha[:, t] = np.where(mask[:, t, None], stepped, alpha[:, t - 1])
    return alpha


def crf_nll(proba: np.ndarray, labels: np.ndarray, crf: CRF) -> np.ndarray:
    """Negative log-likelihood of each gold sequence under a CRF: (B,) for proba (B, L, T).

    `labels` (B, L) holds tag ids with -1 on padding (real tokens first). The forward algorithm,
    vectorised over the batch; a sentence without tokens scores 0.
    """
    logp = log_proba(proba)
    labels = np.asarray(labels, dtype=np.int64)
    batch, seq_len, _ = logp.shape
    mask = labels >= 0
    lengths = mask.sum(axis=1)
    out = np.zeros(batch)
    if seq_len == 0 or batch == 0:
        return out
    y = np.maximum(labels, 0)
    rows = np.arange(batch)
    gold = (np.take_along_axis(logp, y[:, :, None], axis=2)[:, :, 0] * mask).sum(axis=1)
    gold += (crf.transitions[y[:, :-1], y[:, 1:]] * mask[:, 1:]).sum(axis=1)
    gold += crf.start[y[:, 0]] + crf.end[y[rows, np.maximum(lengths - 1, 0)]]
    log_z = _logsumexp(_forward(logp, mask, crf)[:, -1] + crf.end[None], axis=1)
    return np.where(lengths > 0, log_z - gold, 0.0)


def crf_marginals(proba: np.ndarray, crf: CRF) -> np.ndarray:
    """Each token's tag distribution under a CRF, P(y_t = k | sentence): (L, T) for one sentence's
    per-token probabilities `proba` (L, T), whose log the CRF's scores are added to, as `viterbi` adds them.
    The forward-backward algorithm in log space (float64); a token's row sums to 1. What `train --teacher
    ... --distill-target marginals` distils from a CRF teacher, instead of its per-token softmax."""
    logp = log_proba(proba)
    length, n_tags = logp.shape
    if length == 0:
        return np.zeros((0, n_tags), np.float32)
    alpha = _forward(logp[None], np.ones((1, length), bool), crf)[0]
    beta = np.empty((length, n_tags))
    beta[-1] = crf.end
    for t in range(length - 2, -1, -1):
        beta[t] = _logsumexp(crf.transitions + (logp[t + 1] + beta[t + 1])[None, :], axis=1)
    log_marginal = alpha + beta
    log_marginal -= _logsumexp(log_marginal, axis=1)[:, None]
    return np.exp(log_marginal).astype(np.float32)


@lru_cache(maxsize=16)
def _rules(tags: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # The tables depend only on the tag list: built once, not on every call (a Python loop over
    # all tag pairs costs more than the Viterbi pass of a short sentence). Read-only.
    tables = transition_rules(tags)
    for table in tables:
        table.flags.writeable = False
    return tables


def _tables(
    n_tags: int, tags: Sequence[str], crf: CRF | None, constrained: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transition, start and end scores of a Viterbi search: the scheme's rules as 0/-inf, plus `crf`."""
    trans = np.zeros((n_tags, n_tags))
    opening = np.zeros(n_tags)
    closing = np.zeros(n_tags)
    if constrained:
        allowed, first, last = _rules(tuple(tags))
        trans += np.where(allowed, 0.0, -np.inf)
        opening += np.where(first, 0.0, -np.inf)
        closing += np.where(last, 0.0, -np.inf)
    if crf is not None:
        trans += crf.transitions
        opening += crf.start
        closing += crf.end
    return trans, opening, closing


def viterbi(
    proba: np.ndarray, lengths: np.ndarray, tags: Sequence[str], crf: CRF | None = None, constrained: bool = True
) -> np.ndarray:
    """The best tag ids (B, L) for probabilities (B, L, T); -1 beyond each length.

    Best: the highest sum of log-probabilities plus, with `crf`, its transition, start and end
    scores; `constrained` allows only sequences that obey the tagging scheme.
    """
    proba = np.asarray(proba)
    return _search(proba, lengths, _tables(proba.shape[2], tags, crf, constrained))


def _search(proba: np.ndarray, lengths: np.ndarray, tables: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    # The search itself is a compiled loop (`_decode.viterbi_path`); tests hold the NumPy reference.
    # It reads float32 or float64 probabilities in place and takes their log as it goes.
    if proba.dtype != np.float32:
        proba = proba.astype(np.float64, copy=False)
    return _decode.viterbi_path(
        np.ascontiguousarray(proba), np.ascontiguousarray(lengths, dtype=np.int64), *tables, from_proba=True
    )


class Decoder:
    """`decode` for one tag list, method and CRF, with its Viterbi tables built once (the tagger
    calls it for every batch: rebuilding the tables cost more than decoding a short sentence)."""

    def __init__(self, tags: Sequence[str], method: str = "bio", crf: CRF | None = None) -> None:
        if method not in DECODERS:
            raise ValueError(f"decode must be one of {DECODERS}, got {method!r}")
        self.method = method
        self._tables = _tables(len(tags), tags, crf, method == "bio") if crf is not None or method == "bio" else None
        if self._tables is not None:
            for table in self._tables:
                table.flags.writeable = False

    def __call__(self, proba: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Tag ids (B, L), -1 beyond each length, of probabilities (B, L, T)."""
        proba = np.asarray(proba)
        if self._tables is not None:
            if proba.shape[2] != self._tables[1].shape[0]:
                raise ValueError(f"decode: {proba.shape[2]} tag probabilities for {self._tables[1].shape[0]} tags")
            return _search(proba, lengths, self._tables)
        ids = proba.argmax(axis=-1).astype(np.int64)
        ids[np.arange(ids.shape[1])[None, :] >= np.asarray(lengths)[:, None]] = -1
        return ids


def decode(
    proba: np.ndarray, lengths: np.ndarray, tags: Sequence[str], method: str = "bio", crf: CRF | None = None
) -> np.ndarray:
    """Tag ids (B, L), -1 beyond each length, by `method`: "bio" (valid sequences) or "argmax".

    With `crf`, "argmax" is the CRF's best path and "bio" its best valid path.
    """
    return Decoder(tags, method, crf)(proba, lengths)
