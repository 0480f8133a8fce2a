"""The CRF training loss as one MXNet operator whose forward and backward are a compiled kernel.

`crf_loss_symbol(scores, label, n_tags)` is the batch's CRF negative log-likelihood
summed over its sentences and divided by its real tokens (at least 1), for scores (B, L, T) and
labels (B, L) (tag ids, -1 on padding, real tokens first): the quantity `decode.crf_nll` computes
in NumPy. The forward algorithm unrolled into the graph cost ~12 tiny operators a time step forward
and ~20 backward, each paying the engine's and OpenMP's overhead far above its arithmetic; here
`training._kernels.crf_nll_grad` computes the likelihood and every gradient (forward-backward marginals
minus the gold indicators) in one call without the GIL, in the operator's forward, and the backward
hands out the gradients kept from it, scaled by the incoming gradient.

Training code only: importing this module imports mxnet and registers the operator (`OP_TYPE`).
"""
from __future__ import annotations

from typing import Any

import mxnet as mx
import numpy as np

from ner_fast.training import _kernels
from ner_fast.decode import CRF_PARAMS

__all__ = ["OP_TYPE", "crf_loss_symbol"]

OP_TYPE = "ner_fast_crf_loss"

# The operator's inputs. The CRF parameters come after the label, start first: a graph lists its
# parameters in the order its operators first read them, and this keeps the order the unrolled
# graph had (crf_start, crf_transitions, crf_end), so a bucket, a checkpoint and the optimizer
# states line up as before.
_INPUTS = ("scores", "label", "start", "transitions", "end")


class _CRFLoss(mx.operator.CustomOp):
    """Forward: the loss (1,) from the kernel; backward: the kernel's gradients, kept from the forward."""

    def __init__(self) -> None:
        super().__init__()
        self._grads: tuple[np.ndarray, ...] | None = None

    def forward(self, is_train: bool, req: list[str], in_data: list[Any], out_data: list[Any], aux: list[Any]) -> None:
        scores, label, start, trans, end = (a.asnumpy() for a in in_data)
        labels = label.astype(np.int64)
        # MXNet hands out float32 C-contiguous arrays already: these make no copies.
        scores, trans, start, end = (np.ascontiguousarray(a, dtype=np.float32) for a in (scores, trans, start, end))
        nll, d_scores, d_trans, d_start, d_end = _kernels.crf_nll_grad(scores, labels, trans, start, end)
        # A mean over the batch's real tokens, so a sentence weighs the same in any bucket; the
        # divisor is a count, and no gradient flows through it.
        tokens = max(int((labels >= 0).sum()), 1)
        self.assign(out_data[0], req[0], mx.nd.array([nll.sum() / tokens], ctx=out_data[0].context))
        self._grads = (d_scores / tokens, None, d_start / tokens, d_trans / tokens, d_end / tokens) if is_train else None

    def backward(
        self, req: list[str], out_grad: list[Any], in_data: list[Any], out_data: list[Any], in_grad: list[Any], aux: list[Any]
    ) -> None:
        if self._grads is None:
            raise RuntimeError(f"{OP_TYPE}: backward without a training forward")
        head = float(out_grad[0].asnumpy()[0])  # 1 under MakeLoss: the loss is the head
        for i, grad in enumerate(self._grads):
            if req[i] == "null":  # the label's, and a frozen parameter's
                continue
            value = np.zeros(in_grad[i].shape, dtype=np.float32) if grad is None else grad * head
            self.assign(in_grad[i], req[i], mx.nd.array(value, ctx=in_grad[i].context, dtype=np.float32))
        self._grads = None


@mx.operator.register(OP_TYPE)
class _CRFLossProp(mx.operator.CustomOpProp):
    def __init__(self) -> None:
        super().__init__(need_top_grad=True)

    def list_arguments(self) -> list[str]:
        return list(_INPUTS)

    def list_outputs(self) -> list[str]:
        return ["output"]

    def infer_shape(self, in_shape: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
        scores, label = in_shape[0], in_shape[1]
        if len(scores) != 3 or tuple(label) != tuple(scores[:2]):
            raise ValueError(f"{OP_TYPE}: scores must be (B, L, T) and label (B, L), got {scores} and {label}")
        n_tags = scores[2]
        return [scores, label, [n_tags], [n_tags, n_tags], [n_tags]], [[1]], []

    def infer_type(self, in_type: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
        # Everything in the scores' dtype (float32): the CRF parameters' is not known otherwise.
        return [in_type[0]] * len(_INPUTS), [in_type[0]], []

    def declare_backward_dependency(self, out_grad: list[int], in_data: list[int], out_data: list[int]) -> list[int]:
        # The backward reads only the incoming gradient (the rest was kept by the forward), so MXNet
        # may free the inputs' buffers earlier.
        return list(out_grad)

    def create_operator(self, ctx: Any, shapes: Any, dtypes: Any) -> _CRFLoss:
        return _CRFLoss()


def crf_loss_symbol(scores: mx.sym.Symbol, label: mx.sym.Symbol, n_tags: int) -> mx.sym.Symbol:
    """Mean CRF negative log-likelihood per real token (shape (1,)), for scores (B, L, T) and labels (B, L).

    Labels are tag ids with -1 on padding, real tokens first. The CRF parameters are the graph's
    variables `crf_transitions` (T, T), `crf_start` and `crf_end` (T,), read by one operator whatever
    the bucket length L (the operator reads it from the scores' shape): a one-token bucket lists
    `crf_transitions` too, at the same place, with a gradient of 0, as `BucketingModule`'s buckets
    share one optimizer that keys Adam's states by parameter position.
    """
    shapes = {"crf_transitions": (n_tags, n_tags), "crf_start": (n_tags,), "crf_end": (n_tags,)}
    trans, start, end = (mx.sym.Variable(name, shape=shapes[name]) for name in CRF_PARAMS)
    return mx.sym.Custom(scores, label, start, trans, end, op_type=OP_TYPE, name="crf_nll")
