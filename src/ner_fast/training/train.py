"""The training loop: prepared buckets -> `mx.mod.BucketingModule` -> a checkpoint folder.

`train(TrainConfig(...))` does the whole run: it prepares (or loads) the data, builds the model,
trains epoch by epoch with Adam, scores train and validation data after each epoch
(`metrics.py`), keeps the best model by validation entity F1, stops early after `patience`
epochs without improvement, and writes the checkpoint files of docs/ARCHITECTURE.md atomically
after every epoch. Ctrl-C saves the current parameters and returns (`stopped="interrupted"`); SIGTERM
(`signals.Terminated`, raised by the command line's handler) saves them too and is raised again;
`config.resume_config(DIR)` gives the configuration to continue from such a folder. The configuration itself (`TrainConfig`,
`ModelConfig`, every option's default and range) lives in the MXNet-free `config.py`.

Several devices (`context="gpu:0,gpu:1"`) split each batch (data parallel, kvstore `device` or
`local`); several machines use MXNet's parameter server (`kvstore="dist_sync"` and friends, see
`distributed.py`), each worker training on its own share of each epoch's batches. Only worker 0
writes the checkpoint.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, MutableMapping, Sequence

import numpy as np

from ner_fast import __version__
from ner_fast.atomic import atomic_write_bytes, atomic_write_json, claim_output_dir, read_json, read_npz
from ner_fast.checkpoint import (
    AVERAGE_FILE,
    CONFIG_VERSION,
    check_params,
    RUN_FILES,
    run_files,
    init_params,
    load_params,
    pack_params,
    save_params,
    unpack_params,
)
from ner_fast.config import (
    N_CASING,
    ModelConfig,
    OptionError,
    TrainConfig,
    default_of,
    fixed_by_prepared,
    parse_context,
)
from ner_fast.cores import usable_cores
from ner_fast.decode import CRF, CRF_PARAMS
from ner_fast.metrics import Accumulator, Scores, TagScheme, format_table
from ner_fast.signals import Terminated, check_terminated
from ner_fast.vocab import Vocabularies

# MXNet logs a line per bound graph ("Subgraph backend MKLDNN is activated"): dozens per bucket run.
os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")


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


@dataclass
class TrainResult:
    """What a run did: per-epoch history (dicts as in metrics.jsonl), the best epoch, and how it ended."""

    out: str
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_f1: float
    stopped: str  # "epochs", "patience" or "interrupted"
    seconds: float
    params_sha256: str
    rank: int = 0
    num_workers: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- helpers


def mx_contexts(spec: str) -> list[Any]:
    """`--context` (`config.parse_context`) -> MXNet contexts; OptionError for a GPU this MXNet cannot use."""
    import mxnet as mx

    contexts = []
    for kind, index in parse_context(spec):
        if kind == "gpu":
            if not mx.runtime.Features().is_enabled("CUDA"):
                raise OptionError(
                    "--context", f"gpu:{index}: this MXNet ({mx.__version__}) is a CPU-only build; install the `gpu` extra"
                )
            visible = mx.context.num_gpus()
            if index >= visible:
                raise OptionError("--context", f"gpu:{index}: {visible} GPU(s) visible to MXNet")
        contexts.append(getattr(mx, kind)(index))
    return contexts


def params_sha256(params: dict[str, np.ndarray]) -> str:
    """A digest of canonical parameters (names and float32 bytes) to compare models exactly."""
    h = hashlib.sha256()
    for name in sorted(params):
        h.update(name.encode())
        h.update(np.ascontiguousarray(params[name], dtype=np.float32).tobytes())
    return h.hexdigest()


def flush_denormals() -> bool:
    """Switch this process to flush-to-zero before MXNet starts its threads (`_kernels.flush_denormals`).

    Without it training slows down epoch after epoch (denormal Adam moments); with it nothing
    changes but the speed. Returns False where the processor has no such mode.
    """
    import warnings

    from ner_fast.training import _kernels

    if not _kernels.flush_denormals():
        return False
    # NumPy's finfo notices the mode and warns that the smallest subnormal is now zero: expected.
    warnings.filterwarnings("ignore", message="The value of the smallest subnormal", category=UserWarning)
    return True


def omp_threads(processes: int = 1) -> int:
    """OpenMP threads for MXNet's operators in each of `processes` training processes sharing this
    machine: the cores this process may run on, shared out evenly (at least 1)."""
    return max(1, usable_cores() // max(1, processes))


def set_mxnet_threads(env: MutableMapping[str, str] | None = None, processes: int = 1, cpu_contexts: int = 1) -> str:
    """Set `OMP_NUM_THREADS` in `env` (default: this process's environment) to
    `omp_threads(processes * cpu_contexts)`, and with several CPU contexts (`--context cpu:0,cpu:1`)
    `MXNET_CPU_WORKER_NTHREADS` to their number, each unless set already (a user's value wins);
    returns the OpenMP value in effect.

    Why: when OMP_NUM_THREADS is unset, MXNet 1.x sizes its operators' OpenMP pool at half the
    processors (it assumes two hyper-threads a core), so on 2 cores every operator ran on one
    thread and `ner-fast train` used one core of two. And MXNet runs the operators of every CPU
    context on one engine thread unless told otherwise, so CPU contexts would take turns instead of
    working on their shares of a batch at once. Must run before MXNet is imported, as libgomp and
    MXNet read the variables once.
    """
    target = os.environ if env is None else env
    if cpu_contexts > 1:
        target.setdefault("MXNET_CPU_WORKER_NTHREADS", str(cpu_contexts))
    return target.setdefault("OMP_NUM_THREADS", str(omp_threads(processes * max(1, cpu_contexts))))


def spin_openmp_threads(env: MutableMapping[str, str] | None = None) -> str:
    """Set `OMP_WAIT_POLICY=ACTIVE` in `env` (default: this process's environment) unless set (a
    user's value wins); returns the value in effect. For a process that only trains (`ner-fast
    train`): call it before MXNet is imported.

    Why: between MXNet's operators (hundreds a batch, many small) libgomp's threads go to sleep
    and must be woken for the next one: with more threads than cores (MXNet's engine thread, the
    OpenMP pool, Python) libgomp cuts its spin-wait to almost nothing. Spinning instead trained
    1.19x faster on 2 quiet cores (docs/TRAINING.md "Threads"), the same losses to the last digit.
    Not for a process that does other work after training, nor on a machine whose cores are busy
    with other jobs (set OMP_WAIT_POLICY=PASSIVE there): idle OpenMP threads keep spinning.
    """
    target = os.environ if env is None else env
    return target.setdefault("OMP_WAIT_POLICY", "ACTIVE")


def _seed_everything(seed: int) -> None:
    import mxnet as mx

    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


def load_data(cfg: TrainConfig, check: bool = True, words: Sequence[str] = ()) -> Any:
    """The `PreparedData` a run trains on: loaded from a prepare folder, or built from the corpus.

    A prepared folder fixes the data options: `cfg` takes its values (so config.json records what
    was used), and (with `check`) a value of `cfg` that differs from the table default and from the
    folder's is an OptionError (`config.fixed_by_prepared`). Rebuilding a recorded run's data
    (`evaluate`) does not check: runs recorded before this rule hold the recipe's values there.
    `words` are added to a corpus's word vocabulary after its own (`prepare(extra_words=...)`: `--init`).
    """
    from ner_fast.prepare import PreparedData, prepare

    if cfg.data is not None and Path(cfg.data).is_dir():
        data = PreparedData.load(cfg.data)
        asked = {k: v for k, v in cfg.data_options().items() if check and v != default_of(k)}
        for name, value in fixed_by_prepared(data.settings, asked).items():
            setattr(cfg, name, value)
        return data
    return prepare(cfg.data, batch_size=cfg.batch_size, extra_words=words, **cfg.data_options())


def model_config_for(cfg: TrainConfig, vocabs: Any, max_token_chars: int) -> ModelConfig:
    """The `ModelConfig` for these vocabularies with the run's architecture overrides."""
    return ModelConfig(
        n_words=len(vocabs.words),
        n_chars=len(vocabs.chars),
        n_tags=len(vocabs.tags),
        max_token_chars=max_token_chars,
        n_pos=len(vocabs.pos) if vocabs.pos is not None else 0,
        n_casing=N_CASING,
        **cfg.arch,
    )


def pretrained_vectors(cfg: TrainConfig, described: Mapping[str, Any]) -> Any:
    """The `--vectors` of a new run (`vectors.Vectors`), read again for their rows; ValueError when they
    are no longer the ones the data was prepared with (`described`, its `vectors_source`: by digest)."""
    from ner_fast.vectors import read_vectors

    vectors = read_vectors(str(cfg.vectors))
    if vectors.sha256() != described["sha256"]:
        raise ValueError(f"--vectors {cfg.vectors}: not the vectors the data was prepared with (sha256 differs); prepare it again")
    return vectors


def start_from_vectors(vectors: Any, vocabs: Vocabularies, fresh: np.ndarray, say: Callable[[str], None]) -> np.ndarray:
    """The word embedding of a new run with `--vectors`: `fresh` with the row of every word the vectors
    know replaced by its vector (`rows.rows_by_word`, the rule `--init` shares)."""
    from ner_fast.training.rows import rows_by_word

    rows, known = rows_by_word(vocabs.words.itos, vectors.index, vectors.matrix, fresh)
    say(f"word vectors {vectors.name}: {known:,} of the {len(vocabs.words):,} words start from them")
    return rows


def _module_canonical(module: Any, config: ModelConfig) -> dict[str, np.ndarray]:
    """The module's current parameters in canonical form."""
    arg, _ = module.get_params()
    return unpack_params(config, {n: a.asnumpy() for n, a in arg.items()})


def _updater(module: Any) -> tuple[Any, list[tuple[Any, str]]]:
    """The module's optimizer `Updater` and its (state key, parameter name) pairs.

    The updater lives in the module, keyed by parameter index (one index per device), or in a local
    kvstore, keyed by parameter name. With parameter servers the servers hold it: (None, []).
    """
    inner = module._curr_module  # the BucketingModule shares one optimizer among its bucket modules
    if inner._updater is not None:
        updater = inner._updater
        return updater, list(updater.optimizer.idx2name.items())
    kv = inner._kvstore
    if kv is not None and "dist" not in kv.type and getattr(kv, "_updater", None) is not None:
        updater = kv._updater
        return updater, [(name, name) for name in updater.optimizer.idx2name.values()]
    return None, []


def _save_optimizer_states(path: Path, module: Any, config: ModelConfig) -> bool:
    """Adam's moments and step counts as an npz in canonical naming; False where not reachable."""
    updater, keys = _updater(module)
    if updater is None:
        return False
    opt = updater.optimizer
    counts: dict[Any, int] = {}
    for per_device in opt._all_index_update_counts.values():
        counts.update(per_device)
    mean: dict[str, np.ndarray] = {}
    var: dict[str, np.ndarray] = {}
    steps: dict[str, np.ndarray] = {}
    for key, name in keys:
        if key not in updater.states or name in mean:  # one copy per device: equal, keep the first
            continue
        mean[name] = updater.states[key][0].asnumpy()
        var[name] = updater.states[key][1].asnumpy()
        steps[name] = np.full(mean[name].shape, counts.get(key, 0), dtype=np.float32)
    arrays: dict[str, np.ndarray] = {"num_update": np.array(opt.num_update, dtype=np.int64)}
    for prefix, d in (("mean", mean), ("var", var), ("steps", steps)):
        arrays.update({f"{prefix}:{n}": a for n, a in unpack_params(config, d).items()})
    atomic_write_bytes(path, lambda f: np.savez(f, **arrays))
    return True


def _load_optimizer_states(path: Path, module: Any, config: ModelConfig) -> bool:
    """Put states saved by `_save_optimizer_states` back into the module's optimizer."""
    import mxnet as mx

    updater, keys = _updater(module)
    if updater is None or not path.exists():
        return False
    saved = read_npz(path, "optimizer state file")
    parts: dict[str, dict[str, np.ndarray]] = {"mean": {}, "var": {}, "steps": {}}
    for key, arr in saved.items():
        prefix, _, name = key.partition(":")
        if name and prefix in parts:
            parts[prefix][name] = arr
        elif key != "num_update":
            raise ValueError(f"{path}: unexpected array {key!r}")
    if "num_update" not in saved or set(parts["mean"]) != set(parts["var"]) or set(parts["mean"]) != set(parts["steps"]):
        raise ValueError(f"{path}: incomplete optimizer state (num_update, mean:, var:, steps: arrays)")
    if config.fused:
        parts = {p: pack_params(config, d) for p, d in parts.items()}
    opt = updater.optimizer
    for key, name in keys:
        if name not in parts["mean"]:
            continue
        updater.states[key] = (mx.nd.array(parts["mean"][name]), mx.nd.array(parts["var"][name]))
        updater.states_synced[key] = False  # moved to the weight's device on first use
        for per_device in opt._all_index_update_counts.values():
            per_device[key] = int(parts["steps"][name].ravel()[0])
    opt.num_update = int(saved["num_update"])
    return True


def claim_run_dir(out: Path, force: bool = False) -> None:
    """Check (and clear of an earlier run) the folder a new run writes, before any work.

    `atomic.claim_output_dir` with the run's files (`checkpoint.run_files`): other files refuse the
    folder unless `force`. A finished run (state.json) is only started over with `force`, since
    `--resume` continues it; the files of the earlier run are removed then, nothing else.
    """
    claim = claim_output_dir(out, run_files, force=force)
    claim.refuse_clashes(RUN_FILES)
    if (out / "state.json").exists() and not force:
        raise OptionError(
            "--out", f"{out} holds a training run: continue it with --resume {out}, or add --force to start over"
        )
    for name in claim.previous:
        (out / name).unlink(missing_ok=True)


def read_state(out: Path) -> dict[str, Any]:
    """`state.json` of a run to resume; ValueError naming the file when missing or malformed."""
    path = out / "state.json"
    if not path.exists():
        raise ValueError(
            f"{path}: missing, so the run in {out} never finished an epoch; nothing to resume,"
            f" start it again with --out {out}"
        )
    doc = read_json(path, "training state")
    if not isinstance(doc, dict) or not isinstance(doc.get("epoch"), int) or not isinstance(doc.get("bad_epochs", 0), int):
        raise ValueError(f"{path}: not a ner-fast training state (needs integer 'epoch' and 'bad_epochs')")
    return doc


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The epoch records of `metrics.jsonl` (none if it is missing); ValueError naming file and line."""
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not valid JSON ({err.msg})") from None
    return records


def _versions() -> dict[str, str]:
    import mxnet as mx

    return {
        "ner_fast": __version__,
        "mxnet": mx.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _init_source(cfg: TrainConfig, out: Path, resume: bool) -> tuple[Any, dict[str, Any] | None]:
    """--init: (the `Source`, its record for config.json); a resumed run keeps the record its config.json
    has and reads no source (its parameters are its own by then)."""
    if resume:
        return None, read_json(out / "config.json", "ner-fast training config").get("init")
    if not cfg.init:
        return None, None
    from ner_fast.training.init_source import load_source

    source = load_source(cfg.init)
    return source, source.record()


def _init_words(source: Any, record: dict[str, Any] | None, out: Path) -> list[str]:
    """The words a run started with --init adds to its corpus's vocabulary: SOURCE's (a resumed run: its
    own saved vocabulary's, which are the same), so words SOURCE knew keep their rows when tagging."""
    if source is not None:
        return source.vocabs.words.itos
    if record is not None:
        return Vocabularies.load(out / "vocab.json").words.itos
    return []


def _teachers(cfg: TrainConfig) -> list[Any]:
    """--teacher: the `distill.Teacher`s (none without it), resolved before any data is read."""
    if not cfg.teacher:
        return []
    from ner_fast.training.distill import resolve_teachers

    return resolve_teachers(cfg.teacher)


def _teacher_arrays(cfg: TrainConfig, teachers: Sequence[Any], data: Any, say: Callable[[str], None]) -> list[np.ndarray] | None:
    """The teachers' distributions per training bucket row (`distill.teacher_arrays`), None without teachers.
    They tag the training split's own sentences, which a prepared folder does not keep."""
    if not teachers:
        return None
    from ner_fast.training.distill import teacher_arrays, teacher_distributions

    corpus = data.corpora.get("train")
    if corpus is None:
        raise OptionError("--teacher", "DATA is a prepared folder, which keeps no tokens for the teacher to tag:"
                          " give the corpus file itself (or no DATA: the bundled corpus)")
    sentences = [corpus.words[a:b] for a, b in zip(corpus.offsets[:-1].tolist(), corpus.offsets[1:].tolist())]
    started = time.perf_counter()
    distributions = teacher_distributions(teachers, sentences, data.vocabs.tags.itos, say)
    arrays = teacher_arrays(data.splits["train"], distributions, cfg.recase, cfg.distill_temperature)
    say(f"--teacher: distributions of {len(sentences):,} sentences in {time.perf_counter() - started:.0f} s")
    return arrays


def _set_encoder_lr(module: Any, cfg: TrainConfig, epoch: int) -> None:
    """The learning-rate multiplier of the parameters taken whole from --init's SOURCE in `epoch`: 0 (frozen)
    for the first `freeze_epochs`, then `init_lr_scale` (the optimizer keys multipliers by module name)."""
    from ner_fast.training.init_source import encoder_names

    optimizer = module._curr_module._optimizer
    scale = 0.0 if epoch < cfg.freeze_epochs else cfg.init_lr_scale
    optimizer.set_lr_mult({n: scale for n in encoder_names(list(optimizer.idx2name.values()))})


# --------------------------------------------------------------------------- the loop


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
# only the average is validated (`train`, `--average`).
AVERAGE_WINS = 2


class ParamAverage:
    """An exponential moving average of a module's parameters (Polyak averaging), kept on the devices.

    `live[i]` holds parameter `names[i]` once per device (equal after every update). After each update
    `avg = d * avg + (1 - d) * w` with `d = min(decay, (1 + t) / (10 + t))` at update t, so that the
    first updates do not give the random initialisation the weight `decay` would (TensorFlow's
    `ExponentialMovingAverage(num_updates=t)`). That warm-up still leaves the average about a tenth of
    the updates behind: each epoch validates both (`swapped`) and keeps the better as the epoch's model
    (`best.params.npz`), until the average has won AVERAGE_WINS epochs in a row; training goes on from
    the live parameters.
    """

    def __init__(self, names: Sequence[str], live: Sequence[Sequence[Any]], decay: float, steps: int = 0,
                 start: dict[str, np.ndarray] | None = None) -> None:
        import mxnet as mx

        self.names, self.live, self.decay, self.steps = list(names), [list(d) for d in live], decay, steps
        first = [d[0] for d in self.live]
        self.avg = [w.copy() if start is None else mx.nd.array(start[n], ctx=w.context, dtype=w.dtype)
                    for n, w in zip(self.names, first)]

    @classmethod
    def of_module(cls, module: Any, decay: float, steps: int = 0, start: dict[str, np.ndarray] | None = None) -> "ParamAverage":
        """The average of a BucketingModule's parameters (its bucket modules share their memory)."""
        group = module._buckets[module._default_bucket_key]._exec_group
        return cls(group.param_names, group.param_arrays, decay, steps, start)

    def update(self) -> None:
        """Fold the current parameters in (after `module.update()`; runs asynchronously on the engine)."""
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        self.steps += 1
        for avg, devices in zip(self.avg, self.live):
            avg *= d
            avg += (1 - d) * devices[0]

    def arrays(self) -> dict[str, np.ndarray]:
        """The average by module parameter name, as NumPy arrays."""
        return {n: a.asnumpy() for n, a in zip(self.names, self.avg)}

    @contextlib.contextmanager
    def swapped(self) -> Any:
        """Inside the block the module holds the average; the live parameters come back after it."""
        saved = [devices[0].copy() for devices in self.live]
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
    pos_right = pos_total = 0
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
                real = gold_pos > 0  # POS id 0 is padding
                pos_right += int((outputs[pos_index].asnumpy().argmax(axis=1) == gold_pos)[real].sum())
                pos_total += int(real.sum())
            bar.update(1)
    seconds = time.perf_counter() - start
    scores = acc.result()
    if pos_index is not None:
        scores.pos_accuracy = pos_right / max(pos_total, 1)
    return scores, scores.tokens / max(seconds, 1e-9)


@dataclass
class _Run:
    """A training run once set up (`_set_up`, `_make_trainer`): what the epochs, `_save` and the driver share.

    `state` is state.json (epoch, best F1 and epoch, bad epochs, interrupted, average steps); `history`
    the lines of metrics.jsonl; `written_best` the best epoch whose parameters best.params.npz holds
    (a stop that lands while an improved epoch is being saved saves them in its own save)."""

    cfg: TrainConfig
    out: Path
    rank: int
    num_workers: int
    state: dict[str, Any]
    history: list[dict[str, Any]]
    config: ModelConfig
    scheme: TagScheme
    module: Any = None
    train_iter: Any = None
    valid_iter: Any = None
    average: ParamAverage | None = None
    written_best: int | None = None
    #: `--init`: the source read (`init_source.InitSource`) and config.json's record of it; None without.
    init_source: Any = None
    init_record: dict[str, Any] | None = None
    #: `--teacher`: the teachers' distributions per training bucket row (`distill.teacher_arrays`); None without.
    teacher: list[np.ndarray] | None = None
    #: `--vectors`: the pretrained vectors a new run's word rows start from (None without, or resumed).
    vectors: Any = None

    @property
    def writes(self) -> bool:
        """Whether this worker writes the checkpoint (worker 0 only)."""
        return self.rank == 0


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train per `cfg` into the folder `cfg.out` (created; with `resume`, continued).

    The folder must be new, empty, or a run that never finished an epoch (`claim_run_dir`); `force`
    also starts over a finished run or writes beside other files (kept). Returns the history and
    how the run ended; raises OptionError (a ValueError) on unusable options, ValueError on unusable
    data or checkpoint files, OSError where the folder cannot be written.
    The process is switched to flush-to-zero (`flush_denormals`) and MXNet given every core
    (`set_mxnet_threads`) before MXNet is imported.

    The driver: `_set_up` and `_make_trainer` build the run, `_epochs` trains it and yields after each
    epoch (as spaCy's `train_while_improving`); here each epoch is saved and reported, the run stops
    early after `patience` epochs without improvement, and an interrupt saves and says how to resume.
    """
    if resume and force:
        raise OptionError("--force", "a resumed run continues in its own folder; --force only applies to a new run")
    say = echo or (lambda msg: print(msg, file=sys.stderr, flush=True))
    wall_start = time.perf_counter()
    run, data, params, kv, contexts = _set_up(cfg, resume, force, say)
    _make_trainer(run, data, params, kv, contexts, resume, say)
    state = run.state
    stopped = "epochs"
    try:
        for record, improved in _epochs(run, progress):
            _save(run, best=improved)
            say(
                f"epoch {record.epoch}/{cfg.epochs}: {record.seconds:.0f} s, train {record.train_tokens_per_s:,.0f} tokens/s,"
                f" valid {record.valid_tokens_per_s:,.0f} tokens/s, lr {record.learning_rate:.5g}"
                + ("  (best so far)" if improved else "")
            )
            say(format_table({"train": record.train, "valid": record.valid}))
            if cfg.patience and state["bad_epochs"] >= cfg.patience:
                stopped = "patience"
                say(f"no better validation entity F1 for {cfg.patience} epochs: stopping")
                break
    except (KeyboardInterrupt, Terminated) as stop:
        # The current, partly trained epoch is redone on resume from the parameters saved here.
        stopped = "interrupted"
        state["interrupted"] = True
        _save(run, best=state["best_epoch"] != run.written_best)
        if run.writes:
            say(f"interrupted: parameters saved in {run.out}; continue with --resume {run.out}")
        else:  # only worker 0 writes the checkpoint
            say(f"interrupted: worker {run.rank} of {run.num_workers} saved nothing (worker 0 saves in {run.out})")
        if isinstance(stop, Terminated):
            raise  # asked to end: the command line reports it and exits 143

    final = _module_canonical(run.module, run.config)
    return TrainResult(
        out=str(run.out),
        history=run.history,
        best_epoch=state["best_epoch"],
        best_f1=float(state["best_f1"]),
        stopped=stopped,
        seconds=time.perf_counter() - wall_start,
        params_sha256=params_sha256(final),
        rank=run.rank,
        num_workers=run.num_workers,
    )


def _set_up(
    cfg: TrainConfig, resume: bool, force: bool, say: Callable[[str], None]
) -> tuple[_Run, Any, dict[str, np.ndarray] | None, Any, list[Any]]:
    """Start MXNet, claim (or read back) the run folder, read the data and write config.json and
    vocab.json: (the run, the data, the parameters to resume from or None, the kvstore, the contexts)."""
    flush_denormals()
    set_mxnet_threads(cpu_contexts=sum(kind == "cpu" for kind, _ in parse_context(cfg.context)))
    import mxnet as mx

    _seed_everything(cfg.seed)
    contexts = mx_contexts(cfg.context)
    kv: Any = cfg.kvstore
    rank, num_workers = 0, 1
    if "dist" in cfg.kvstore:
        kv = mx.kv.create(cfg.kvstore)
        rank, num_workers = kv.rank, kv.num_workers
    writes = rank == 0
    out = Path(cfg.out)

    # The folder is checked before the data is read: a mistake there costs nothing.
    state: dict[str, Any] = {"epoch": 0, "best_f1": -1.0, "best_epoch": None, "bad_epochs": 0}
    if resume:
        state.update(read_state(out))
    elif writes:
        claim_run_dir(out, force=force)

    source, init_record = _init_source(cfg, out, resume)  # --init: read before the data, whose vocabulary takes its words
    teachers = _teachers(cfg)  # --teacher: found before the data is read
    data = load_data(cfg, words=_init_words(source, init_record, out))
    vocabs = data.vocabs
    teacher = _teacher_arrays(cfg, teachers, data, say)
    max_token_chars = int(data.settings["max_token_chars"])
    config = model_config_for(cfg, vocabs, max_token_chars)
    described = data.settings.get("vectors_source")
    if described and described["dim"] != config.word_dim:
        raise OptionError("--word-dim", f"{config.word_dim}, but the vectors {described['name']} have {described['dim']}"
                          " numbers a word; leave --word-dim out with --vectors (the word dimension follows them)")
    if source is not None:
        from ner_fast.training.init_source import check_architecture

        check_architecture(source, config)
    run = _Run(cfg, out, rank, num_workers, state, [], config, TagScheme(vocabs.tags.itos), written_best=state["best_epoch"],
               init_source=source, init_record=init_record, teacher=teacher,
               # Read (and checked) before anything is written; a resumed run has its rows already.
               vectors=pretrained_vectors(cfg, described) if described and not resume else None)

    params: dict[str, np.ndarray] | None = None
    if resume:
        if Vocabularies.load(out / "vocab.json") != vocabs:
            raise ValueError(f"{out}: the data no longer gives the vocabularies this run was trained with")
        params = load_params(out / "last.params.npz")
        try:
            check_params(config, params)
        except ValueError as err:
            raise ValueError(f"{out / 'last.params.npz'}: {err}") from None
        run.history = read_metrics(out / "metrics.jsonl")[: state["epoch"]]
        say(f"resuming {out} after epoch {state['epoch']}")
    elif writes:
        out.mkdir(parents=True, exist_ok=True)
    if writes:
        atomic_write_json(
            out / "config.json",
            {
                "format_version": CONFIG_VERSION,
                "model": config.to_dict(),
                "train": cfg.to_dict(),
                "data": {**data.settings, "summary": data.summary},
                "versions": _versions(),
                "init": init_record,
                "teacher": None if not teachers else [t.record() for t in teachers],
            },
        )
        vocabs.save(out / "vocab.json")
    return run, data, params, kv, contexts


def _make_trainer(run: _Run, data: Any, params: dict[str, np.ndarray] | None, kv: Any, contexts: list[Any],
                  resume: bool, say: Callable[[str], None]) -> None:
    """The run's iterators, module (from `params`, or initialised), optimizer and parameter average
    (restored from the run folder when resuming)."""
    import mxnet as mx

    from ner_fast.training.iterators import BucketIter
    from ner_fast.training.model import Distill, check_bucket_params

    cfg, config, out, state = run.cfg, run.config, run.out, run.state
    train_iter = BucketIter(
        data.splits["train"],
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        num_parts=run.num_workers,
        part_index=run.rank,
        word_dropout=cfg.word_dropout,
        teacher=run.teacher,
    )
    # A distilling module binds the teacher's label: validation feeds zeros there (the loss is not read).
    valid_iter = BucketIter(data.splits["valid"], cfg.batch_size, soft_tags=len(data.vocabs.tags) if run.teacher else 0)
    distill = Distill(cfg.distill_weight, cfg.distill_temperature) if run.teacher else None
    if params is None:
        params = init_params(config, cfg.seed)
        if run.vectors is not None:
            params["word_embed_weight"] = start_from_vectors(run.vectors, data.vocabs, params["word_embed_weight"], say)
        if run.init_source is not None:
            from ner_fast.training.init_source import initial_params

            params, report = initial_params(run.init_source, config, data.vocabs, params)
            say(f"--init {cfg.init}: {len(report['whole'])} parameters whole, rows by name "
                + ", ".join(f"{n} {k}/{len(params[n])}" for n, k in report["rows"].items()) + f"; fresh: {', '.join(report['fresh']) or 'none'}")
    longest = max(train_iter.default_bucket_key, valid_iter.default_bucket_key)
    check_bucket_params(config, [b.length for split in data.splits.values() for b in split], distill)
    module = make_module(config, params, contexts, cfg.batch_size, longest, distill)
    optimizer_params: dict[str, Any] = {
        "learning_rate": cfg.learning_rate,
        "beta1": cfg.beta1,
        "beta2": cfg.beta2,
        "epsilon": cfg.epsilon,
        # Each device's gradient is already a mean over its real tokens (see model.make_sym_gen);
        # devices and synchronous workers are summed by the kvstore, so average them here.
        "rescale_grad": 1.0 / (len(contexts) * (run.num_workers if "sync" in cfg.kvstore else 1)),
    }
    if cfg.clip_gradient:
        optimizer_params["clip_gradient"] = cfg.clip_gradient
    if cfg.lr_decay < 1:
        # Step decay once per epoch, counted in updates so it also runs on parameter servers.
        optimizer_params["lr_scheduler"] = mx.lr_scheduler.FactorScheduler(
            step=train_iter.num_batches, factor=cfg.lr_decay, base_lr=cfg.learning_rate
        )
    module.init_optimizer(kvstore=kv, optimizer="adam", optimizer_params=optimizer_params)
    if resume and not _load_optimizer_states(out / "last.states.npz", module, config):
        say("optimizer state not restored (none saved, or held by parameter servers): Adam restarts")

    if cfg.average:
        start, steps = None, 0
        if resume and (out / AVERAGE_FILE).exists():
            saved = load_params(out / AVERAGE_FILE)
            steps = int(state.get("average_steps", 0))
            try:
                check_params(config, saved)
            except ValueError as err:
                raise ValueError(f"{out / AVERAGE_FILE}: {err}") from None
            start = pack_params(config, saved) if config.fused else saved
        run.average = ParamAverage.of_module(module, cfg.average, steps, start)
    run.module, run.train_iter, run.valid_iter = module, train_iter, valid_iter

    say(
        f"training on {train_iter.num_tokens:,} tokens in {train_iter.num_batches} batches per epoch"
        f" (worker {run.rank} of {run.num_workers}), validating on {valid_iter.num_tokens:,} tokens; {config.to_dict()}"
    )


def _epochs(run: _Run, progress: bool) -> Iterator[tuple[EpochRecord, bool]]:
    """Train the run's remaining epochs, yielding after each (its record, whether validation entity F1
    improved) once `history` and `state` say it is done; the caller saves, reports and may stop."""
    import mxnet as mx

    from ner_fast.training.model import pos_output_index

    cfg, config, module, average, state = run.cfg, run.config, run.module, run.average, run.state
    for epoch in range(state["epoch"], cfg.epochs):
        epoch_start = time.perf_counter()
        run.train_iter.start_epoch(epoch)
        # Dropout draws from a stream seeded per epoch, so a resumed run repeats an unbroken one.
        mx.random.seed(cfg.seed * 100_003 + epoch)
        lr = cfg.learning_rate * cfg.lr_decay**epoch
        if run.init_record is not None:
            _set_encoder_lr(module, cfg, epoch)
        tr, tr_speed = run_epoch(
            module, run.train_iter, run.scheme, train=True, desc=f"epoch {epoch + 1} train", progress=progress,
            decode=cfg.decode, crf=config.crf, average=average, pos_index=pos_output_index(config),
        )

        def validate(what: str) -> tuple[Scores, float]:
            return run_epoch(
                module, run.valid_iter, run.scheme, train=False, desc=f"epoch {epoch + 1} valid{what}", progress=progress,
                decode=cfg.decode, crf=config.crf, pos_index=pos_output_index(config),
            )

        averaging: dict[str, Any] = {}
        if average is None:
            va, va_speed = validate("")
        else:
            # The average lags the live parameters (by about a tenth of the updates so far, see
            # ParamAverage): while a run still improves fast it scores far worse (the quick run: F1
            # 0.10 against 0.21), later better. So both are validated and the better one is the
            # epoch's model, until the average has scored better twice in a row; from then on the
            # average alone (a validation pass costs a third to a half of a training pass's time).
            with average.swapped():
                va, va_speed = validate(" (average)")
            averaging = {"f1": va.f1, "live_f1": None, "kept": "average"}
            if state.get("average_wins", 0) < AVERAGE_WINS:
                live, live_speed = validate(" (live)")
                averaging["live_f1"] = live.f1
                state["average_wins"] = state.get("average_wins", 0) + 1 if va.f1 > live.f1 else 0
                if live.f1 > va.f1:
                    va, va_speed, averaging["kept"] = live, live_speed, "live"
        record = EpochRecord(epoch + 1, tr, va, tr_speed, va_speed, time.perf_counter() - epoch_start, lr)
        run.history.append({**record.to_dict(), **({"average": averaging} if average is not None else {})})
        improved = va.f1 > state["best_f1"]
        if improved:
            state.update(best_f1=va.f1, best_epoch=epoch + 1, bad_epochs=0, best_is_average=averaging.get("kept") == "average")
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        state["interrupted"] = False
        yield record, improved


def _save(run: _Run, best: bool) -> None:
    """Write the run's checkpoint files (worker 0 only): last parameters, the average, best parameters
    when `best`, optimizer states, metrics.jsonl and state.json, each atomically."""
    if not run.writes:
        return
    out, config, state, average = run.out, run.config, run.state, run.average
    canonical = _module_canonical(run.module, config)
    save_params(out / "last.params.npz", canonical)
    averaged = None
    if average is not None:
        averaged = unpack_params(config, average.arrays())
        save_params(out / AVERAGE_FILE, averaged)
        state["average_steps"] = average.steps
    if best:
        # The parameters that were validated best: the average or the live ones (see `_epochs`).
        save_params(out / "best.params.npz", averaged if state.get("best_is_average") else canonical)
        run.written_best = state["best_epoch"]
    _save_optimizer_states(out / "last.states.npz", run.module, config)
    lines = "".join(json.dumps(h) + "\n" for h in run.history)
    atomic_write_bytes(out / "metrics.jsonl", lambda f: f.write(lines.encode()))
    atomic_write_json(out / "state.json", state)
