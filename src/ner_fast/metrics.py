"""Tagging metrics over real tokens only (padding never counts), in NumPy.

- token accuracy;
- the MXNet tutorial's token-level "entity" precision/recall/F1 (a token predicted as any non-O tag
  is correct if it equals the gold tag), reported for comparison with the tutorial's 86.54;
- entity-level micro precision/recall/F1 with conlleval semantics (what NER papers report): an
  entity counts as found only if its type and both boundaries match; plus a per-type table.

Sequences arrive flat: one array of tag ids for all sentences back to back, and their lengths.
Entities never cross a sentence boundary; they are cut by `ner_fast.schemes.entity_spans`, the
package's one chunker.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ner_fast.decode import CRF, DECODERS, crf_nll
from ner_fast.decode import decode as decode_tags
from ner_fast.schemes import TagScheme, entity_spans

def prf(correct: np.ndarray | int, predicted: np.ndarray | int, gold: np.ndarray | int) -> tuple[Any, Any, Any]:
    """Precision, recall, F1 (0 where undefined), element-wise, from counts of `correct` predictions, of
    `predicted` and of `gold` items."""
    correct, predicted, gold = (np.asarray(a, dtype=np.float64) for a in (correct, predicted, gold))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(predicted > 0, correct / predicted, 0.0)
        r = np.where(gold > 0, correct / gold, 0.0)
        f = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return p, r, f


@dataclass
class Scores:
    """Every metric of one evaluation pass (fractions in 0..1)."""

    tokens: int
    sentences: int
    accuracy: float
    token_precision: float
    token_recall: float
    token_f1: float
    precision: float
    recall: float
    f1: float
    per_type: dict[str, dict[str, float]] = field(default_factory=dict)
    loss: float | None = None
    #: Token accuracy of a model's auxiliary POS head (None without one).
    pos_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


@dataclass
class PosCounts:
    """The one rule of `Scores.pos_accuracy` (training's validation, `evaluate` of a run or a package):
    the share of the tokens with a gold POS tag whose predicted one is equal (a tag the model does not know
    counts as wrong); None where none has one, or where the model knows under `KNOWN_SHARE` of their gold
    tags (another tag set: UPOS, a CoNLL file's chunk column), which would read as a head always wrong."""

    #: The least share of gold POS tags the model must know for the accuracy to be one of its tag set.
    KNOWN_SHARE = 0.5

    right: int = 0
    total: int = 0
    known: int = 0

    def add(self, predicted: np.ndarray, gold: np.ndarray, real: np.ndarray, known: np.ndarray) -> None:
        """Count the tokens where `real` (those with a gold POS tag) of equal-shaped `predicted` and `gold`;
        `known`: those whose gold tag the model's POS vocabulary holds."""
        real = np.asarray(real, dtype=bool)
        known = np.asarray(known, dtype=bool) & real  # an unknown gold tag never matches (UNK == UNK is no hit)
        self.right += int((np.asarray(predicted) == np.asarray(gold))[known].sum())
        self.total += int(real.sum())
        self.known += int(known.sum())

    def add_ids(self, predicted: np.ndarray, gold: np.ndarray) -> None:
        """`add` for POS ids as a run's features hold them: 0 is padding (every token of a corpus without
        POS), 1 (`vocab.UNK`) a tag the model does not know (training's validation and `evaluate RUN`)."""
        from ner_fast.vocab import PAD, UNK

        gold = np.asarray(gold)
        self.add(predicted, gold, gold > PAD, gold > UNK)

    @property
    def accuracy(self) -> float | None:
        return self.right / self.total if self.total and self.known >= self.KNOWN_SHARE * self.total else None


def score(gold: np.ndarray, pred: np.ndarray, lengths: np.ndarray, scheme: TagScheme, loss: float | None = None) -> Scores:
    """All metrics for flat gold and predicted tag ids of real tokens, sentence `lengths` back to back."""
    gold = np.asarray(gold, dtype=np.int64).ravel()
    pred = np.asarray(pred, dtype=np.int64).ravel()
    if gold.shape != pred.shape:
        raise ValueError(f"gold has {gold.size} tags, predictions {pred.size}")
    n = gold.size
    accuracy = float((gold == pred).mean()) if n else 0.0

    # The tutorial's token-level figures: a predicted non-O token is right if it equals the gold tag.
    pred_entity = pred != scheme.o_index
    gold_entity = gold != scheme.o_index
    right = int((pred_entity & (pred == gold)).sum())
    tp, tr, tf = prf(right, int(pred_entity.sum()), int(gold_entity.sum()))

    gs, ge, gk = entity_spans(gold, lengths, scheme)
    ps, pe, pk = entity_spans(pred, lengths, scheme)
    n_types = max(len(scheme.types), 1)
    # One integer key per entity (start, end, type) so matching is a set intersection.
    width = np.int64(n + 1)
    gold_keys = (gs * width + ge) * n_types + gk
    pred_keys = (ps * width + pe) * n_types + pk
    hit = np.intersect1d(gold_keys, pred_keys, assume_unique=True) % n_types
    n_gold = np.bincount(gk, minlength=n_types)
    n_pred = np.bincount(pk, minlength=n_types)
    n_hit = np.bincount(hit, minlength=n_types)
    p, r, f = prf(n_hit.sum(), n_pred.sum(), n_gold.sum())
    tp_, tr_, tf_ = prf(n_hit, n_pred, n_gold)
    per_type = {
        name: {
            "precision": float(tp_[i]),
            "recall": float(tr_[i]),
            "f1": float(tf_[i]),
            "support": int(n_gold[i]),
            "predicted": int(n_pred[i]),
        }
        for i, name in enumerate(scheme.types)
    }
    return Scores(
        tokens=n,
        sentences=int(np.count_nonzero(np.asarray(lengths))),
        accuracy=accuracy,
        token_precision=float(tp),
        token_recall=float(tr),
        token_f1=float(tf),
        precision=float(p),
        recall=float(r),
        f1=float(f),
        per_type=per_type,
        loss=loss,
    )


class Accumulator:
    """Collects padded batches (labels with -1 on padding) during an epoch, then scores them at once.

    Predictions are decoded from the probabilities by `decode` ("argmax" or "bio", see `decode.py`).
    """

    def __init__(self, scheme: TagScheme, decode: str = "argmax"):
        if decode not in DECODERS:
            raise ValueError(f"decode must be one of {DECODERS}, got {decode!r}")
        self.scheme = scheme
        self.decode = decode
        self._gold: list[np.ndarray] = []
        self._pred: list[np.ndarray] = []
        self._lengths: list[np.ndarray] = []
        self._nll: list[np.ndarray] = []  # float64 parts, summed exactly at the end (`result`)

    @property
    def tokens(self) -> int:
        """Real tokens seen so far."""
        return int(sum(a.size for a in self._gold))

    def add(self, labels: np.ndarray, proba: np.ndarray, crf: CRF | None = None, nll: float | None = None) -> None:
        """Add one batch: `labels` (B, L) with -1 padding, `proba` (B, L, T) tag probabilities.

        With `crf` (a CRF model's current scores), tags are its Viterbi path and the loss is its
        sentence negative log-likelihood: `nll`, the batch's sum, where the network computed it
        already (training reads it from the CRF loss output instead of running the forward
        algorithm again in NumPy), else `decode.crf_nll`. Real tokens are a prefix of each row,
        so row-major masking keeps sentences contiguous.
        """
        labels = np.asarray(labels).astype(np.int64)
        mask = labels >= 0
        gold = labels[mask]
        lengths = mask.sum(axis=1)
        self._gold.append(gold)
        self._pred.append(decode_tags(proba, lengths, self.scheme.tags, self.decode, crf)[mask])
        self._lengths.append(lengths)
        if nll is not None:
            self._nll.append(np.array([nll], dtype=np.float64))
        elif crf is not None:
            self._nll.append(np.asarray(crf_nll(proba, labels, crf), dtype=np.float64))
        else:
            picked = proba[mask][np.arange(gold.size), gold].astype(np.float64)
            self._nll.append(-np.log(np.maximum(picked, 1e-12)))

    def result(self) -> Scores:
        """Scores of everything added; `loss`: negative log-likelihood per real token, each token's (or CRF
        sentence's) term summed exactly (`math.fsum`), so that how they were batched does not change it
        (`evaluate`; training's CRF validation adds the network's sum of each batch, `nll`)."""
        if not self._gold:
            return score(np.zeros(0), np.zeros(0), np.zeros(0), self.scheme, loss=0.0)
        gold = np.concatenate(self._gold)
        return score(
            gold,
            np.concatenate(self._pred),
            np.concatenate(self._lengths),
            self.scheme,
            loss=math.fsum(np.concatenate(self._nll)) / max(gold.size, 1),
        )


def format_table(results: dict[str, Scores]) -> str:
    """A plain-text table: one column per named result (e.g. train, valid), then per-type entity F1."""
    names = list(results)
    rows = [
        ("loss", lambda s: "-" if s.loss is None else f"{s.loss:.4f}"),
        ("accuracy", lambda s: f"{s.accuracy:.4f}"),
        ("token P (tutorial)", lambda s: f"{s.token_precision:.4f}"),
        ("token R (tutorial)", lambda s: f"{s.token_recall:.4f}"),
        ("token F1 (tutorial)", lambda s: f"{s.token_f1:.4f}"),
        ("entity P", lambda s: f"{s.precision:.4f}"),
        ("entity R", lambda s: f"{s.recall:.4f}"),
        ("entity F1", lambda s: f"{s.f1:.4f}"),
    ]
    if any(s.pos_accuracy is not None for s in results.values()):
        rows.append(("POS accuracy (aux)", lambda s: "-" if s.pos_accuracy is None else f"{s.pos_accuracy:.4f}"))
    types = sorted({t for s in results.values() for t in s.per_type})
    for t in types:
        rows.append(
            (
                f"  F1 {t}",
                lambda s, t=t: _type_cell(s.per_type[t]) if t in s.per_type else "-",
            )
        )
    label_w = max(len(r[0]) for r in rows)
    cells = [[fmt(results[n]) for n in names] for _, fmt in rows]
    col_w = [max(len(n), *(len(c[i]) for c in cells)) for i, n in enumerate(names)]
    lines = [" " * label_w + "  " + "  ".join(n.rjust(w) for n, w in zip(names, col_w))]
    for (label, _), row in zip(rows, cells):
        lines.append(label.ljust(label_w) + "  " + "  ".join(c.rjust(w) for c, w in zip(row, col_w)))
    return "\n".join(lines)


def _type_cell(scores: dict[str, Any]) -> str:
    """One type's entity F1 and support as the table shows them: "-" where the data has no entity of the
    type (its F1 is undefined, not the 0.0 the scorer keeps for JSON)."""
    f1 = "-" if scores["support"] == 0 else f"{scores['f1']:.4f}"
    return f"{f1} ({scores['support']})"
