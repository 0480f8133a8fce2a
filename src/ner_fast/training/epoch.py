"""One pass over a split (`run_epoch`): the bound `BucketingModule` it runs (`make_module`), the
parameters' moving average updated after every step (`ParamAverage`), and the metrics gathered per
batch (`metrics.Accumulator`, the CRF's loss and decoding, the POS head's accuracy) into the scores
of an epoch (`EpochRecord`, one line of metrics.jsonl). The loop over epochs is `train.py`'s.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ner_fast.config import ModelConfig
from ner_fast.decode import CRF, CRF_PARAMS
from ner_fast.metrics import Accumulator, PosCounts, Scores, TagScheme
from ner_fast.signals import check_terminated


@dataclass
class EpochRecord:
    """One line of `metrics.jsonl`."""

    epoch: int
    train: Scores
    valid: Scores
    train_tokens_per_s: float
    valid_tokens_per_s: float
    seconds: float
    learning_rate: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "epoch": self.epoch,
            "train": self.train.to_dict(),
            "valid": self.valid.to_dict(),
            "train_tokens_per_s": self.train_tokens_per_s,
            "valid_tokens_per_s": self.valid_tokens_per_s,
            "seconds": self.seconds,
            "learning_rate": self.learning_rate,
        }


def make_module(config: ModelConfig, params: dict[str, np.ndarray], contexts: Sequence[Any], batch_size: int, longest: int,
                distill: Any = None) -> Any:
    """A bound `mx.mod.BucketingModule` for `config` holding canonical `params`.

    `longest` is the largest bucket length it will see: the default bucket, whose memory the
    shorter buckets share. `distill` (`model.Distill`): the graph with the distillation loss and its label.
    """
    import mxnet as mx

    from ner_fast.training.model import TEACHER_LABEL, make_sym_gen, module_params

    labels = [mx.io.DataDesc("softmax_label", (batch_size, longest))]
    if distill is not None:
        labels.append(mx.io.DataDesc(TEACHER_LABEL, (batch_size, longest, config.n_tags)))
    module = mx.mod.BucketingModule(make_sym_gen(config, distill), default_bucket_key=longest, context=list(contexts))
    module.bind(data_shapes=[mx.io.DataDesc("data", (batch_size, config.n_features, longest))], label_shapes=labels)
    module.init_params(arg_params=module_params(config, params), aux_params={}, allow_missing=False, force_init=True)
    return module


# Epochs in a row in which the parameters' average must score better than the live parameters before
# only the average is validated (`train._epochs`, `--average`).
AVERAGE_WINS = 2


class ParamAverage:
    """An exponential moving average of a module's parameters (Polyak averaging), kept on the devices.

    `live[i]` holds parameter `names[i]` once per device (equal after every update). After each update
    `avg = d * avg + (1 - d) * w` with `d = min(decay, (1 + t) / (10 + t))` at update t, so that the
    first updates do not give the random initialisation the weight `decay` would (TensorFlow's
    `ExponentialMovingAverage(num_updates=t)`). That warm-up still leaves the average about a tenth of
    the updates behind: each epoch validates both (`swapped`) and keeps the better as the epoch's model
    (`best.params.npz`), until the average has won AVERAGE_WINS epochs in a row; training goes on from
    the live parameters. With `frozen` (`frozen.FrozenEntries`, `--freeze-vectors`) its entries of the average
    are set back to their values whenever the average is read (`arrays`, `swapped`), as the optimizer does
    for the live ones after each step: the average of a constant is that constant only up to float32
    rounding. Once a read, not once a step: nothing else reads the average, and each entry's average
    depends on that entry alone, so the result is the same at a fraction of the cost.
    """

    def __init__(self, names: Sequence[str], live: Sequence[Sequence[Any]], decay: float, steps: int = 0,
                 start: dict[str, np.ndarray] | None = None, frozen: Any = None) -> None:
        import mxnet as mx

        self.names, self.live, self.decay, self.steps = list(names), [list(d) for d in live], decay, steps
        self.frozen = frozen
        first = [d[0] for d in self.live]
        self.avg = [w.copy() if start is None else mx.nd.array(start[n], ctx=w.context, dtype=w.dtype)
                    for n, w in zip(self.names, first)]

    @classmethod
    def of_module(cls, module: Any, decay: float, steps: int = 0, start: dict[str, np.ndarray] | None = None,
                  frozen: Any = None) -> "ParamAverage":
        """The average of a BucketingModule's parameters (its bucket modules share their memory)."""
        group = module._buckets[module._default_bucket_key]._exec_group
        return cls(group.param_names, group.param_arrays, decay, steps, start, frozen)

    def update(self) -> None:
        """Fold the current parameters in (after `module.update()`; runs asynchronously on the engine)."""
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        self.steps += 1
        for avg, devices in zip(self.avg, self.live):
            avg *= d
            avg += (1 - d) * devices[0]

    def _settle(self) -> None:
        """Set the frozen entries of the average back to their values (`frozen`; nothing without)."""
        for name, avg in zip(self.names, self.avg):
            if self.frozen is not None and name == self.frozen.name:
                self.frozen.restore(avg)

    def arrays(self) -> dict[str, np.ndarray]:
        """The average by module parameter name, as NumPy arrays."""
        self._settle()
        return {n: a.asnumpy() for n, a in zip(self.names, self.avg)}

    @contextlib.contextmanager
    def swapped(self) -> Any:
        """Inside the block the module holds the average; the live parameters come back after it."""
        saved = [devices[0].copy() for devices in self.live]
        self._settle()
        for avg, devices in zip(self.avg, self.live):
            for w in devices:
                avg.copyto(w)
        try:
            yield
        finally:
            for keep, devices in zip(saved, self.live):
                for w in devices:
                    keep.copyto(w)


def _current_crf(module: Any) -> CRF:
    """The CRF scores the module holds right now (read from its first executor, no full sync)."""
    arrays = module._curr_module._exec_group.execs[0].arg_dict
    return CRF(*(arrays[name].asnumpy().astype(np.float64) for name in CRF_PARAMS))


def _crf_nll_sum(module: Any, labels: np.ndarray) -> float:
    """The batch's summed CRF NLL from the loss outputs: each device's is a mean over the real
    tokens of its slice of the batch (`crf_loss.crf_loss_symbol`)."""
    losses = module.get_outputs(merge_multi_context=False)[1]
    slices = module._curr_module._exec_group.slices
    return sum(float(loss.asnumpy().sum()) * max(int((labels[part] >= 0).sum()), 1) for loss, part in zip(losses, slices))


def run_epoch(
    module: Any,
    data_iter: Any,
    scheme: TagScheme,
    *,
    train: bool,
    desc: str,
    progress: bool,
    decode: str = "argmax",
    crf: bool = False,
    average: ParamAverage | None = None,
    pos_index: int | None = None,
) -> tuple[Scores, float]:
    """One pass (training or scoring) -> (scores, real tokens per second).

    `decode` as in `decode.py`; `crf`: the module has a CRF output layer, whose current scores
    decode each batch and whose loss output (the batch's mean NLL per real token,
    `crf_loss.crf_loss_symbol`) is the reported loss, not computed again in NumPy; `average`: updated
    after every training update; `pos_index`: the module output holding the POS head's
    probabilities (`model.pos_output_index`), scored against the input's POS row into
    `Scores.pos_accuracy`.
    """
    from tqdm import tqdm

    from ner_fast.features import ROW_POS

    acc = Accumulator(scheme, decode)
    pos = PosCounts()
    data_iter.reset()
    start = time.perf_counter()
    with tqdm(total=data_iter.num_batches, desc=desc, unit="batch", disable=not progress, leave=False) as bar:
        for batch in data_iter:
            check_terminated()
            module.forward(batch, is_train=train)
            if train:
                module.backward()
                module.update()
                if average is not None:
                    average.update()
            outputs = module.get_outputs()
            proba = outputs[0].asnumpy().transpose(0, 2, 1)
            labels = batch.label[0].asnumpy()
            if crf:
                acc.add(labels, proba, _current_crf(module), _crf_nll_sum(module, labels))
            else:
                acc.add(labels, proba)
            if pos_index is not None:
                gold_pos = batch.data[0].asnumpy()[:, ROW_POS]
                pos.add_ids(outputs[pos_index].asnumpy().argmax(axis=1), gold_pos)
            bar.update(1)
    seconds = time.perf_counter() - start
    scores = acc.result()
    scores.pos_accuracy = pos.accuracy
    return scores, scores.tokens / max(seconds, 1e-9)
