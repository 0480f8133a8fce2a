"""Constrained decoding: Viterbi against brute force over every tag sequence."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner_fast.decode import decode, viterbi
from helpers import float_tol

IOB = ["O", "B-a", "I-a", "B-b", "I-b"]
IOBES = ["O", "B-a", "I-a", "E-a", "S-a", "B-b", "E-b"]


def _valid_iob(seq: list[str]) -> bool:
    prev = "O"
    for tag in seq:
        if tag.startswith("I-") and prev not in ("B-" + tag[2:], "I-" + tag[2:]):
            return False
        prev = tag
    return True


def _valid_iobes(seq: list[str]) -> bool:
    open_kind = None  # the type of the chunk B-/I- left open
    for tag in seq:
        prefix, _, kind = tag.partition("-")
        if open_kind is not None:
            if prefix not in ("I", "E") or kind != open_kind:
                return False
        elif prefix in ("I", "E"):
            return False
        open_kind = kind if prefix in ("B", "I") else None
    return open_kind is None


def _best_score(logp: np.ndarray, tags: list[str], valid) -> float:  # type: ignore[no-untyped-def]
    n = logp.shape[0]
    best = -np.inf
    for seq in itertools.product(range(len(tags)), repeat=n):
        if valid([tags[i] for i in seq]):
            best = max(best, float(sum(logp[t, k] for t, k in enumerate(seq))))
    return best


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["iob", "iobes"]))
def test_viterbi_finds_the_best_valid_sequence(seed: int, scheme: str) -> None:
    tags, valid = (IOB, _valid_iob) if scheme == "iob" else (IOBES, _valid_iobes)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 5, 3)
    proba = rng.dirichlet(np.full(len(tags), 0.3), size=(3, 4))
    out = viterbi(proba, lengths, tags)
    for b, n in enumerate(lengths):
        assert (out[b, n:] == -1).all()
        if n == 0:
            continue
        path = out[b, :n]
        assert valid([tags[k] for k in path])
        logp = np.log(np.maximum(proba[b, :n], 1e-30))
        # float64 sums of n log-probabilities (each down to log 1e-30 = -69) in two orders.
        tol = float_tol(2 * int(n), 70.0 * int(n), np.float64)
        assert float(logp[np.arange(n), path].sum()) == pytest.approx(_best_score(logp, tags, valid), abs=tol)


def test_bio_repairs_what_argmax_breaks() -> None:
    # Argmax says "O I-a" (a lone I-); the best valid sequence is "B-a I-a" or "O O".
    proba = np.array([[[0.5, 0.45, 0.01, 0.02, 0.02], [0.05, 0.05, 0.8, 0.05, 0.05]]])
    assert decode(proba, np.array([2]), IOB, "argmax").tolist() == [[0, 2]]
    assert decode(proba, np.array([2]), IOB, "bio").tolist() == [[1, 2]]
    with pytest.raises(ValueError):
        decode(proba, np.array([2]), IOB, "greedy")
