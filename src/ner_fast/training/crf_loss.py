"""The CRF training loss as one MXNet operator whose forward and backward are a compiled kernel.

`crf_loss_symbol(scores, label, n_tags)` is the batch's CRF negative log-likelihood
summed over its sentences and divided by its real tokens (at least 1), for scores (B, L, T) and
labels (B, L) (tag ids, -1 on padding, real tokens first): the quantity `decode.crf_nll` computes
in NumPy. The forward algorithm unrolled into the graph cost ~12 tiny operators a time step forward
and ~20 backward, each paying the engine's and OpenMP's overhead far above its arithmetic; here
`training._kernels.crf_nll_grad` computes the likelihood and every gradient (forward-backward marginals
minus the gold indicators) in one call without the GIL, in the operator's forward, and the backward
hands out the gradients kept from it, scaled by the incoming gradient.

`soft_crf_loss_symbol(scores, teacher, label, params)` is the same likelihood with the gold tags replaced by a
teacher's per-token distributions (`train --distill-target crf`): the expected negative log-likelihood of a tag
sequence drawn from the teacher, each token's tag independently (its marginals), so the gradient is the
student's own CRF marginals minus the teacher's, through the student's forward-backward, where the per-token
distillation of `model.distill_loss_symbol` pulls the student's softmax, not its CRF, towards them. This is
Wang et al. (2021)'s structural distillation into a linear-chain CRF with the teacher's pairwise marginals
taken as products of its per-token ones (a (T, T) table per token would not fit in memory for a corpus).

Training code only: importing this module imports mxnet and registers the operators (`OP_TYPE`, `SOFT_OP_TYPE`).
"""
from __future__ import annotations

from typing import Any

import mxnet as mx
import numpy as np

from ner_fast.training import _kernels
from ner_fast.decode import CRF_PARAMS

__all__ = ["OP_TYPE", "SOFT_OP_TYPE", "crf_params", "crf_loss_symbol", "soft_crf_loss_symbol", "soft_crf_nll_grad"]

OP_TYPE = "ner_fast_crf_loss"
SOFT_OP_TYPE = "ner_fast_soft_crf_loss"

# The operator's inputs. The CRF parameters come after the label, start first: a graph lists its
# parameters in the order its operators first read them, and this keeps the order the unrolled
# graph had (crf_start, crf_transitions, crf_end), so a bucket, a checkpoint and the optimizer
# states line up as before. The soft operator reads the teacher's distributions before the label; it
# follows the gold one in a graph, so the parameters' order is the gold operator's.
_INPUTS = ("scores", "label", "start", "transitions", "end")
_SOFT_INPUTS = ("scores", "teacher", "label", "start", "transitions", "end")


def soft_crf_nll_grad(
    scores: np.ndarray, teacher: np.ndarray, labels: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`_kernels.crf_nll_grad` with the gold tags replaced by `teacher` (B, L, T), each real token's tag
    distribution (zeros on padding; `labels` (B, L) still says which tokens are real, -1 on padding): per
    sentence log Z minus the expected score of a path whose tags are drawn from those distributions
    independently, and its gradients (scores, transitions, start, end), the student's marginals minus the
    teacher's expected indicators. With one-hot rows of the gold tags it is the gold likelihood exactly."""
    nll, d_scores, d_trans, d_start, d_end = _kernels.crf_nll_grad(scores, labels, trans, start, end)
    # The kernel's gradients are the marginals minus the gold path's indicators and its nll is log Z minus the
    # gold path's score; both are linear in the indicators, so swapping the gold indicators for the teacher's
    # expected ones is adding (gold - teacher) to each gradient and that difference's score to the nll.
    mask = labels >= 0
    lengths = mask.sum(axis=1)
    gold = np.zeros(scores.shape, np.float64)
    np.put_along_axis(gold, np.maximum(labels, 0)[:, :, None], 1.0, axis=2)
    gold *= mask[:, :, None]
    soft = teacher.astype(np.float64) * mask[:, :, None]
    diff = gold - soft
    # An empty sentence's rows are all 0, so its first and "last" rows add nothing.
    first, last = diff[:, 0], diff[np.arange(len(labels)), np.maximum(lengths - 1, 0)]
    # Transition counts (from, to): the gold path's, and the expected ones of independent tags, the outer
    # products of neighbouring rows (a padding row is 0, so a pair across the sentence's end adds nothing).
    def counts(x: np.ndarray) -> np.ndarray:
        return np.einsum("bli,blj->bij", x[:, :-1], x[:, 1:])

    pairs = counts(gold) - counts(soft)
    nll = nll + ((diff * scores).sum(axis=(1, 2)) + first @ start + last @ end + (pairs * trans).sum(axis=(1, 2)))
    moved = (d_scores + diff, d_trans + pairs.sum(axis=0), d_start + first.sum(axis=0), d_end + last.sum(axis=0))
    return (nll, *(m.astype(k.dtype) for m, k in zip(moved, (d_scores, d_trans, d_start, d_end))))  # the kernel's dtypes


class _CRFLoss(mx.operator.CustomOp):
    """Forward: the loss (1,) from the kernel (soft: `soft_crf_nll_grad`); backward: its gradients, kept from
    the forward."""

    def __init__(self, soft: bool) -> None:
        super().__init__()
        self._soft = soft
        self._grads: tuple[np.ndarray | None, ...] | None = None

    def forward(self, is_train: bool, req: list[str], in_data: list[Any], out_data: list[Any], aux: list[Any]) -> None:
        arrays = [a.asnumpy() for a in in_data]
        teacher = arrays.pop(1) if self._soft else None
        scores, label, start, trans, end = arrays
        labels = label.astype(np.int64)
        # MXNet hands out float32 C-contiguous arrays already: these make no copies.
        scores, trans, start, end = (np.ascontiguousarray(a, dtype=np.float32) for a in (scores, trans, start, end))
        if teacher is None:
            nll, d_scores, d_trans, d_start, d_end = _kernels.crf_nll_grad(scores, labels, trans, start, end)
        else:
            nll, d_scores, d_trans, d_start, d_end = soft_crf_nll_grad(scores, teacher, labels, trans, start, end)
        # A mean over the batch's real tokens, so a sentence weighs the same in any bucket; the
        # divisor is a count, and no gradient flows through it.
        tokens = max(int((labels >= 0).sum()), 1)
        self.assign(out_data[0], req[0], mx.nd.array([nll.sum() / tokens], ctx=out_data[0].context))
        grads = (d_scores / tokens, None, d_start / tokens, d_trans / tokens, d_end / tokens)
        # The teacher's distributions, like the label, get no gradient.
        self._grads = ((grads[0], None) + grads[1:] if self._soft else grads) if is_train else None

    def backward(
        self, req: list[str], out_grad: list[Any], in_data: list[Any], out_data: list[Any], in_grad: list[Any], aux: list[Any]
    ) -> None:
        if self._grads is None:
            raise RuntimeError(f"{SOFT_OP_TYPE if self._soft else OP_TYPE}: backward without a training forward")
        head = float(out_grad[0].asnumpy()[0])  # 1 under MakeLoss: the loss is the head
        for i, grad in enumerate(self._grads):
            if req[i] == "null":  # the label's, and a frozen parameter's
                continue
            value = np.zeros(in_grad[i].shape, dtype=np.float32) if grad is None else grad * head
            self.assign(in_grad[i], req[i], mx.nd.array(value, ctx=in_grad[i].context, dtype=np.float32))
        self._grads = None


@mx.operator.register(OP_TYPE)
class _CRFLossProp(mx.operator.CustomOpProp):
    soft: bool = False  # the gold operator; `_SoftCRFLossProp` the teacher's

    def __init__(self) -> None:
        super().__init__(need_top_grad=True)

    def list_arguments(self) -> list[str]:
        return list(_SOFT_INPUTS if self.soft else _INPUTS)

    def list_outputs(self) -> list[str]:
        return ["output"]

    def infer_shape(self, in_shape: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
        scores, label = in_shape[0], in_shape[2 if self.soft else 1]
        if len(scores) != 3 or tuple(label) != tuple(scores[:2]):
            raise ValueError(f"{SOFT_OP_TYPE if self.soft else OP_TYPE}: scores must be (B, L, T) and label (B, L),"
                             f" got {scores} and {label}")
        n_tags = scores[2]
        shapes = [scores, label, [n_tags], [n_tags, n_tags], [n_tags]]
        return ([scores, scores] + shapes[1:] if self.soft else shapes), [[1]], []

    def infer_type(self, in_type: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
        # Everything in the scores' dtype (float32): the CRF parameters' is not known otherwise.
        return [in_type[0]] * len(self.list_arguments()), [in_type[0]], []

    def declare_backward_dependency(self, out_grad: list[int], in_data: list[int], out_data: list[int]) -> list[int]:
        # The backward reads only the incoming gradient (the rest was kept by the forward), so MXNet
        # may free the inputs' buffers earlier.
        return list(out_grad)

    def create_operator(self, ctx: Any, shapes: Any, dtypes: Any) -> _CRFLoss:
        return _CRFLoss(self.soft)


@mx.operator.register(SOFT_OP_TYPE)
class _SoftCRFLossProp(_CRFLossProp):
    soft: bool = True


def crf_params(n_tags: int) -> tuple[mx.sym.Symbol, mx.sym.Symbol, mx.sym.Symbol]:
    """The CRF's parameters as graph variables, in the operators' order: `crf_start`, `crf_transitions`,
    `crf_end`. Two operators of one graph must share these three symbols: variables made twice under one
    name are two arguments of the graph."""
    shapes = {"crf_transitions": (n_tags, n_tags), "crf_start": (n_tags,), "crf_end": (n_tags,)}
    trans, start, end = (mx.sym.Variable(name, shape=shapes[name]) for name in CRF_PARAMS)
    return start, trans, end


def crf_loss_symbol(
    scores: mx.sym.Symbol, label: mx.sym.Symbol, n_tags: int, params: tuple[mx.sym.Symbol, ...] | None = None
) -> mx.sym.Symbol:
    """Mean CRF negative log-likelihood per real token (shape (1,)), for scores (B, L, T) and labels (B, L).

    Labels are tag ids with -1 on padding, real tokens first. The CRF parameters are the graph's
    variables `crf_transitions` (T, T), `crf_start` and `crf_end` (T,) (`params`, made by `crf_params`
    unless given), read by one operator whatever the bucket length L (the operator reads it from the
    scores' shape): a one-token bucket lists `crf_transitions` too, at the same place, with a gradient of 0,
    as `BucketingModule`'s buckets share one optimizer that keys Adam's states by parameter position.
    """
    return mx.sym.Custom(scores, label, *(params or crf_params(n_tags)), op_type=OP_TYPE, name="crf_nll")


def soft_crf_loss_symbol(
    scores: mx.sym.Symbol, teacher: mx.sym.Symbol, label: mx.sym.Symbol, params: tuple[mx.sym.Symbol, ...]
) -> mx.sym.Symbol:
    """`crf_loss_symbol` against a teacher's per-token distributions (B, L, T) instead of the gold tags
    (`soft_crf_nll_grad`); `label` only says which tokens are real; `params` the gold loss's `crf_params`."""
    return mx.sym.Custom(scores, teacher, label, *params, op_type=SOFT_OP_TYPE, name="soft_crf_nll")
