"""The BiLSTM-CNN network (Chiu & Nichols 2016, as in the MXNet NER tutorial) on MXNet; `directions` 1
makes its LSTM layers forward-only.

`make_sym_gen(config)` gives the `sym_gen(seq_len)` of `mx.mod.BucketingModule`: one graph per
bucket length. The input layout and the parameter names are fixed in docs/ARCHITECTURE.md because
the ONNX exporter rebuilds the same network from the same named arrays; `ModelConfig` and the
canonical (unpacked) parameter dicts live in the mxnet-free `checkpoint.py`.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterable, NamedTuple

import mxnet as mx
import numpy as np

from ner_fast.checkpoint import ModelConfig, check_params, pack_params
from ner_fast.training.crf_loss import crf_loss_symbol, crf_params, soft_crf_loss_symbol
from ner_fast.features import ROW_CASING, ROW_CHARS, ROW_POS, ROW_WORD
from ner_fast.vocab import UNK

__all__ = ["ModelConfig", "Distill", "TEACHER_LABEL", "label_names", "make_sym_gen", "check_bucket_params", "proba_symbol", "logits_symbol", "module_params",
           "pos_output_index", "Predictor", "predict_proba"]


# The second label of a distilling module: the teacher's per-token tag distribution (B, L, T), zeros on padding.
TEACHER_LABEL = "teacher_label"


class Distill(NamedTuple):
    """Distillation in the training graph (`--teacher`): the distillation loss's weight ALPHA (the gold loss
    gets 1 - ALPHA) and temperature T; `through_crf` (`--distill-target crf`): the student's CRF learns the
    teacher's distributions (`crf_loss.soft_crf_loss_symbol`) rather than its per-token softmax."""

    weight: float
    temperature: float
    through_crf: bool = False


def label_names(distill: Distill | None = None) -> tuple[str, ...]:
    """The training graph's labels: the gold tags, and with distillation the teacher's distributions."""
    return ("softmax_label",) if distill is None else ("softmax_label", TEACHER_LABEL)


def distill_loss_symbol(logits: mx.sym.Symbol, teacher: mx.sym.Symbol, label: mx.sym.Symbol, distill: Distill) -> mx.sym.Symbol:
    """Hinton et al. (2015)'s distillation loss as a `MakeLoss` head: the soft cross-entropy
    -sum_t q_t log softmax(z / T)_t summed over the batch's tokens and divided by its real tokens (labels >= 0,
    at least 1), for logits z (B, L, T) and the teacher's distributions q (B, L, T), already softened by T
    (`distill.soften`; zeros on padding, so padding adds nothing). Its gradient is scaled by ALPHA * T^2, so
    that its size does not depend on T (the gradient of the soft term is (softmax(z / T) - q) / T)."""
    log_p = mx.sym.log_softmax(logits / distill.temperature, axis=-1)
    tokens = mx.sym.BlockGrad(mx.sym.maximum(mx.sym.sum(label >= 0), 1))
    loss = mx.sym.broadcast_div(-mx.sym.sum(teacher * log_p), tokens)
    return mx.sym.MakeLoss(loss, grad_scale=distill.weight * distill.temperature**2, name="distill_loss")


def module_params(config: ModelConfig, params: dict[str, np.ndarray]) -> dict[str, mx.nd.NDArray]:
    """Canonical parameters as the NDArrays a module of this config (fused or not) binds."""
    arrays = pack_params(config, params) if config.fused else params
    return {name: mx.nd.array(arr, dtype=np.float32) for name, arr in arrays.items()}


# --------------------------------------------------------------------------- the graph


def _row(data: mx.sym.Symbol, row: int) -> mx.sym.Symbol:
    """Row `row` of the (B, F, L) input as (B, L)."""
    return mx.sym.reshape(mx.sym.slice_axis(data, axis=1, begin=row, end=row + 1), shape=(0, -1))


def _lstm(config: ModelConfig, prefix: str, inputs: mx.sym.Symbol, seq_len: int) -> mx.sym.Symbol:
    """One unidirectional LSTM over TNC `inputs` -> (L, B, H) outputs."""
    if config.fused:
        cell = mx.rnn.FusedRNNCell(config.hidden, num_layers=1, mode="lstm", prefix=prefix)
    else:
        cell = mx.rnn.LSTMCell(config.hidden, prefix=prefix)
    outputs, _ = cell.unroll(seq_len, inputs=inputs, layout="TNC", merge_outputs=True)
    return outputs


def _encode(config: ModelConfig, seq_len: int, data: mx.sym.Symbol) -> mx.sym.Symbol:
    """The network up to the last LSTM layer's output, after dropout: (B, F, L) -> (B, L, directions * H),
    forward states in the first H columns, backward ones (with 2 directions) in the last H."""
    c = config
    words = _row(data, ROW_WORD)
    # A real token is never PAD (an unseen one is UNK), so counting non-zero ids gives each length.
    lengths = mx.sym.sum(words != 0, axis=1)

    parts = [mx.sym.Embedding(words, input_dim=c.n_words, output_dim=c.word_dim, name="word_embed")]
    if c.use_casing:
        casing = _row(data, ROW_CASING)
        parts.append(mx.sym.Embedding(casing, input_dim=c.n_casing, output_dim=c.casing_dim, name="casing_embed"))
    if c.pos_enabled:
        parts.append(mx.sym.one_hot(_row(data, ROW_POS), depth=c.n_pos))

    # Characters: (B, C, L) -> (B*L, 1, C, char_dim) images, one convolution per filter width.
    chars = mx.sym.slice_axis(data, axis=1, begin=ROW_CHARS, end=ROW_CHARS + c.max_token_chars)
    chars = mx.sym.reshape(mx.sym.transpose(chars, axes=(0, 2, 1)), shape=(-1, c.max_token_chars))
    char_embed = mx.sym.Embedding(chars, input_dim=c.n_chars, output_dim=c.char_dim, name="char_embed")
    char_embed = mx.sym.expand_dims(char_embed, axis=1)
    pooled = []
    for w in c.filter_widths:
        conv = mx.sym.Convolution(
            char_embed, kernel=(w, c.char_dim), num_filter=c.filters, name=f"char_conv{w}"
        )
        # Max pooling over the windows, as the tutorial's: its gradient goes to one window. (A reduce-max's goes
        # whole to every tied window, and a short word's fully padded windows tie: the character CNN's gradient
        # then grew with max_token_chars, and differed where other kernels broke the ties by rounding.)
        pool = mx.sym.Pooling(mx.sym.tanh(conv), pool_type="max", global_pool=True, kernel=(1, 1))
        pooled.append(mx.sym.reshape(pool, shape=(0, 0)))
    char_feats = pooled[0] if len(pooled) == 1 else mx.sym.concat(*pooled, dim=1)
    parts.append(mx.sym.reshape(char_feats, shape=(-1, seq_len, c.filters * len(c.filter_widths))))

    x = mx.sym.concat(*parts, dim=2) if len(parts) > 1 else parts[0]
    if c.dropout > 0:
        x = mx.sym.Dropout(x, p=c.dropout)

    # LSTM layers in TNC. The backward LSTM reads each sentence reversed over its true length
    # only (SequenceReverse leaves the padding in place), so it starts at the last real token and
    # a sentence's tags do not depend on the bucket it landed in. The forward one never sees the
    # padding before a real token, so a forward-only model (directions 1) needs no lengths.
    x = mx.sym.transpose(x, axes=(1, 0, 2))
    for k in range(c.num_layers):
        if k > 0 and c.dropout > 0:
            x = mx.sym.Dropout(x, p=c.dropout)
        fwd = _lstm(c, f"lstm{k}_fwd_", x, seq_len)
        if c.directions == 1:
            x = fwd
            continue
        rev = mx.sym.SequenceReverse(x, sequence_length=lengths, use_sequence_length=True)
        bwd = mx.sym.SequenceReverse(
            _lstm(c, f"lstm{k}_bwd_", rev, seq_len), sequence_length=lengths, use_sequence_length=True
        )
        x = mx.sym.concat(fwd, bwd, dim=2)
    x = mx.sym.transpose(x, axes=(1, 0, 2))  # (B, L, directions * H)
    if c.dropout > 0:
        x = mx.sym.Dropout(x, p=c.dropout)
    return x


def _dense(x: mx.sym.Symbol, seq_len: int, width: int, units: int, name: str) -> mx.sym.Symbol:
    """A fully connected layer applied to every position: (B, L, width) -> (B, L, units)."""
    fc = mx.sym.FullyConnected(mx.sym.reshape(x, shape=(-1, width)), num_hidden=units, name=name)
    return mx.sym.reshape(fc, shape=(-1, seq_len, units))


def logits_symbol(config: ModelConfig, seq_len: int, data: mx.sym.Symbol) -> mx.sym.Symbol:
    """The network up to the fully connected layer: (B, F, L) input -> (B, L, T) scores."""
    return _dense(_encode(config, seq_len, data), seq_len, config.state_dim, config.n_tags, "fc")


def _aux_softmax(scores: mx.sym.Symbol, label: mx.sym.Symbol, weight: float, name: str) -> mx.sym.Symbol:
    """Cross-entropy of (B, L, C) scores against (B, L) class ids, weighted by `weight`, as a mean
    over the positions whose label is not 0 (padding). Outputs the softmax (B, C, L)."""
    return mx.sym.SoftmaxOutput(
        mx.sym.transpose(scores, axes=(0, 2, 1)),
        label=label,
        multi_output=True,
        use_ignore=True,
        ignore_label=0,
        normalization="valid",
        grad_scale=weight,
        name=name,
    )


def _lm_heads(config: ModelConfig, seq_len: int, states: mx.sym.Symbol, words: mx.sym.Symbol) -> list[mx.sym.Symbol]:
    """Rei (2017)'s language-model losses on the last layer's (B, L, 2H) states: the forward half
    predicts the next word id, the backward half the previous one (ids past `lm_classes` count as
    UNK; nothing to predict beyond the sentence: label 0, ignored). Only with 2 directions
    (`config.check_combinations` refuses it on a forward-only LSTM)."""
    c = config
    h = c.hidden
    if seq_len > 1:
        pad = mx.sym.zeros_like(mx.sym.slice_axis(words, axis=1, begin=0, end=1))
        nxt = mx.sym.concat(mx.sym.slice_axis(words, axis=1, begin=1, end=seq_len), pad, dim=1)
        prev = mx.sym.concat(pad, mx.sym.slice_axis(words, axis=1, begin=0, end=seq_len - 1), dim=1)
    else:
        nxt = prev = mx.sym.zeros_like(words)
    heads = []
    for d, target, begin in (("fwd", nxt, 0), ("bwd", prev, h)):
        target = mx.sym.where(target >= c.lm_classes, mx.sym.ones_like(target) * UNK, target)
        half = mx.sym.slice_axis(states, axis=2, begin=begin, end=begin + h)
        hidden = mx.sym.tanh(_dense(half, seq_len, h, c.lm_dim, f"lm_{d}_hidden"))
        scores = _dense(hidden, seq_len, c.lm_dim, c.lm_classes, f"lm_{d}_out")
        heads.append(_aux_softmax(scores, target, c.lm_aux_weight, f"lm_{d}_softmax"))
    return heads


def pos_output_index(config: ModelConfig) -> int | None:
    """Index of the POS head's probabilities (B, n_pos, L) among a training module's outputs."""
    if not config.pos_head:
        return None
    return 2 if config.crf else 1


def make_sym_gen(
    config: ModelConfig, distill: Distill | None = None
) -> Callable[[int], tuple[mx.sym.Symbol, tuple[str, ...], tuple[str, ...]]]:
    """`sym_gen(seq_len) -> (symbol, data_names, label_names)` for `mx.mod.BucketingModule`.

    The training head is `SoftmaxOutput` over the tag axis of (B, T, L) scores with label
    `softmax_label` (B, L); label -1 (padding) gets no gradient. The gradient is the mean over the
    batch's real tokens (`normalization="valid"`): MXNet's default for `multi_output` divides by
    L instead, so a sentence's weight would depend on the bucket (padding) it lands in.

    With `config.crf` the loss is the CRF's (`crf_loss.crf_loss_symbol`, one compiled operator, also
    a mean over real tokens) and the outputs are the per-token softmax (B, T, L), as without CRF,
    then the loss. The auxiliary heads' outputs follow: the POS probabilities (B, n_pos, L) (`pos_output_index`), then the
    language model's forward and backward word probabilities. Every bucket's graph holds the same
    parameters: the heads read every position, whatever the length.

    With `distill` the graph has a second label, `TEACHER_LABEL` (B, L, T), the gold loss's gradient is
    scaled by 1 - ALPHA and the distillation loss (`distill_loss_symbol`, or with `through_crf` the CRF's
    likelihood of the teacher's distributions scaled by ALPHA) is the last output; without it the graph is
    the one it always was.
    """
    if distill is not None and distill.through_crf and not config.crf:
        raise ValueError("distilling through the CRF (--distill-target crf) needs a network with a CRF")
    gold_scale = 1.0 if distill is None else 1.0 - distill.weight

    def sym_gen(seq_len: int) -> tuple[mx.sym.Symbol, tuple[str, ...], tuple[str, ...]]:
        data = mx.sym.Variable("data")
        label = mx.sym.Variable("softmax_label")
        # Only a distilling graph passes grad_scale: the graph without it stays exactly today's.
        scaled = {} if distill is None else {"grad_scale": gold_scale}
        states = _encode(config, seq_len, data)
        logits = _dense(states, seq_len, config.state_dim, config.n_tags, "fc")
        scores = mx.sym.transpose(logits, axes=(0, 2, 1))
        if config.crf:
            proba = mx.sym.BlockGrad(mx.sym.softmax(scores, axis=1))
            crf = crf_params(config.n_tags)  # one set, shared with a distilling CRF loss
            loss = mx.sym.MakeLoss(crf_loss_symbol(logits, label, config.n_tags, crf), name="crf_loss", **scaled)
            outputs = [proba, loss]
        else:
            outputs = [
                mx.sym.SoftmaxOutput(
                    scores,
                    label=label,
                    multi_output=True,
                    use_ignore=True,
                    ignore_label=-1,
                    normalization="valid",
                    name="softmax",
                    **scaled,
                )
            ]
        # The auxiliary heads read their labels from the input rows (the POS row is never an input
        # of a model with a POS head), so the data iterator needs no second label.
        if config.pos_head:
            pos_scores = _dense(states, seq_len, config.state_dim, config.n_pos, "pos_fc")
            outputs.append(_aux_softmax(pos_scores, _row(data, ROW_POS), config.pos_aux_weight, "pos_softmax"))
        if config.lm_head:
            outputs += _lm_heads(config, seq_len, states, _row(data, ROW_WORD))
        if distill is not None and distill.through_crf:
            # The CRF's expected likelihood: its gradient does not shrink with T as the soft softmax's does.
            soft = soft_crf_loss_symbol(logits, mx.sym.Variable(TEACHER_LABEL), label, crf)
            outputs.append(mx.sym.MakeLoss(soft, grad_scale=distill.weight, name="distill_loss"))
        elif distill is not None:
            outputs.append(distill_loss_symbol(logits, mx.sym.Variable(TEACHER_LABEL), label, distill))
        out = outputs[0] if len(outputs) == 1 else mx.sym.Group(outputs)
        return out, ("data",), label_names(distill)

    return sym_gen


def check_bucket_params(config: ModelConfig, lengths: Iterable[int], distill: Distill | None = None) -> None:
    """RuntimeError unless the training graph of every length in `lengths` lists the same parameters
    in the same order: `BucketingModule`'s buckets share one optimizer that keys its states by
    parameter position, so a bucket that differs would update parameters with another's state."""
    sym_gen = make_sym_gen(config, distill)
    inputs = ("data", *label_names(distill))
    seen: dict[tuple[str, ...], int] = {}
    for length in sorted(set(lengths)):
        names = tuple(a for a in sym_gen(length)[0].list_arguments() if a not in inputs)
        seen.setdefault(names, length)
    if len(seen) > 1:
        (a, la), (b, lb) = list(seen.items())[:2]
        raise RuntimeError(f"bucket {la} lists parameters {list(a)}, bucket {lb} {list(b)}: the optimizer would mix them")


def proba_symbol(config: ModelConfig, seq_len: int, pos: bool = False) -> mx.sym.Symbol:
    """The inference graph: `data` (B, F, L) -> tag probabilities (B, L, T); with `pos` (a model with a
    POS head) grouped with the head's POS ids (B, L), read from the same BiLSTM states."""
    data = mx.sym.Variable("data")
    if not pos:
        return mx.sym.softmax(logits_symbol(config, seq_len, data), axis=-1)
    states = _encode(config, seq_len, data)
    proba = mx.sym.softmax(_dense(states, seq_len, config.state_dim, config.n_tags, "fc"), axis=-1)
    return mx.sym.Group([proba, mx.sym.argmax(_dense(states, seq_len, config.state_dim, config.n_pos, "pos_fc"), axis=-1)])


# --------------------------------------------------------------------------- inference


class Predictor:
    """Plain-MXNet forward passes (no training) for canonical parameters.

    Executors are bound once per (batch, seq_len) and share one copy of the weights; each holds
    its own activation buffers, so only the `max_executors` most recently used are kept. With `pos`
    and a model with a POS head, each pass also gives the head's POS ids (`predict`).
    """

    def __init__(
        self,
        config: ModelConfig,
        params: dict[str, np.ndarray],
        ctx: mx.Context | None = None,
        max_executors: int = 16,
        pos: bool = False,
    ):
        check_params(config, params)
        self.config = config
        self.pos = pos and config.pos_head
        self.ctx = ctx or mx.cpu()
        self.max_executors = max_executors
        self._weights = {n: a.as_in_context(self.ctx) for n, a in module_params(config, params).items()}
        self._executors: OrderedDict[tuple[int, int], Any] = OrderedDict()

    def _executor(self, batch: int, seq_len: int) -> Any:
        key = (batch, seq_len)
        if key in self._executors:
            self._executors.move_to_end(key)
            return self._executors[key]
        sym = proba_symbol(self.config, seq_len, self.pos)
        args = {"data": mx.nd.zeros((batch, self.config.n_features, seq_len), ctx=self.ctx)}
        args.update({n: self._weights[n] for n in sym.list_arguments() if n != "data"})
        self._executors[key] = sym.bind(self.ctx, args, grad_req="null")
        while len(self._executors) > self.max_executors:
            self._executors.popitem(last=False)
        return self._executors[key]

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Tag probabilities (B, L, T) for int features (B, F, L) laid out as in docs/ARCHITECTURE.md."""
        return self.predict(features)[0]

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(tag probabilities (B, L, T), the POS head's POS ids (B, L) or None without `pos`) for int
        features (B, F, L)."""
        features = np.asarray(features)
        if features.ndim != 3 or features.shape[1] != self.config.n_features:
            raise ValueError(
                f"features must be (batch, {self.config.n_features}, seq_len), got {features.shape}"
            )
        if features.shape[0] == 0:
            empty = np.zeros((0, features.shape[2]), dtype=np.int64) if self.pos else None
            return np.zeros((0, features.shape[2], self.config.n_tags), dtype=np.float32), empty
        exe = self._executor(features.shape[0], features.shape[2])
        exe.arg_dict["data"][:] = features.astype(np.float32)
        exe.forward(is_train=False)
        return exe.outputs[0].asnumpy(), exe.outputs[1].asnumpy().astype(np.int64) if self.pos else None


def predict_proba(params: dict[str, np.ndarray], config: ModelConfig, features: np.ndarray) -> np.ndarray:
    """Tag probabilities (B, L, T) for features (B, F, L), on CPU: one call of a fresh `Predictor`
    (keep a `Predictor` to run many batches)."""
    return Predictor(config, params).predict_proba(features)
