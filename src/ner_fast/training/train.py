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

Here: the driver `train()` and the loop over epochs (`_epochs`), with the save after each epoch
(`_save`). Around it: `run_setup.py` builds the run (folder, data, module, optimizer, average),
`epoch.py` runs one pass over a split and scores it, `run_dir.py` claims and reads back the run folder
and saves the optimizer's state, `cpu.py` sets the process up for MXNet.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from ner_fast.atomic import atomic_group, json_document
from ner_fast.checkpoint import (
    AVERAGE_FILE, METRICS_FILE, STATE_FILE, STATES_FILE, non_finite, params_file, save_params, unpack_params,
)
from ner_fast.config import OptionError, TrainConfig
from ner_fast.metrics import Scores, format_table
from ner_fast.signals import Terminated
from ner_fast.training.cpu import spin_openmp_threads
from ner_fast.training.distributed import check_worker_kvstore
from ner_fast.training.epoch import AVERAGE_WINS, EpochRecord, run_epoch
from ner_fast.training.run_dir import module_canonical, save_optimizer_states
from ner_fast.training.run_setup import Run, make_trainer, set_up

# `ner-fast train` (cli/train.py) imports the spinning switch (`cpu.py`) with the driver.
__all__ = ["TrainResult", "params_sha256", "spin_openmp_threads", "train"]


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


def params_sha256(params: dict[str, np.ndarray]) -> str:
    """A digest of canonical parameters (names and float32 bytes) to compare models exactly."""
    h = hashlib.sha256()
    for name in sorted(params):
        h.update(name.encode())
        h.update(np.ascontiguousarray(params[name], dtype=np.float32).tobytes())
    return h.hexdigest()


def _say(msg: str) -> None:
    """A line of the run's log on stderr. When its reader has gone (`ner-fast train ... 2>&1 | head`), the
    run goes on and its log goes to /dev/null: a closed pipe ended hours of training at the next line."""
    try:
        print(msg, file=sys.stderr, flush=True)
    except BrokenPipeError:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stderr.fileno())  # also what Python writes to stderr when it exits
        os.close(null)


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

    The driver: `set_up` and `make_trainer` build the run, `_epochs` trains it and yields after each
    epoch (as spaCy's `train_while_improving`); here each epoch is saved and reported, the run stops
    early after `patience` epochs without improvement, and an interrupt saves and says how to resume.
    """
    if resume and force:
        raise OptionError("--force", "a resumed run continues in its own folder; --force only applies to a new run")
    check_worker_kvstore(cfg.kvstore, resumed=cfg.out if resume else None)
    say = echo or _say
    wall_start = time.perf_counter()
    with ExitStack() as hold:  # the run folder's lock (`run_dir.run_lock`), held until the run returns or raises
        run, data, params, kv, contexts = set_up(cfg, resume, force, say, hold)
        make_trainer(run, data, params, kv, contexts, resume, say)
        state = run.state
        stopped = "epochs"
        try:
            for record, improved in _epochs(run, progress):
                # Recorded with the epoch, before anything can interrupt: a resume is then refused unless
                # --patience grows (`run_setup`); a run at its --epochs cap, or killed, never says so.
                state["patience_stopped"] = bool(cfg.patience and state["bad_epochs"] >= cfg.patience)
                _save(run, best=improved)
                say(
                    f"epoch {record.epoch}/{cfg.epochs}: {record.seconds:.0f} s, train {record.train_tokens_per_s:,.0f} tokens/s,"
                    f" valid {record.valid_tokens_per_s:,.0f} tokens/s, lr {record.learning_rate:.5g}"
                    + ("  (best so far)" if improved else "")
                )
                say(format_table({"train": record.train, "valid": record.valid}))
                if state["patience_stopped"]:
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

        final = module_canonical(run.module, run.config)
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


def _epochs(run: Run, progress: bool) -> Iterator[tuple[EpochRecord, bool]]:
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
        # The scheduler's rate for this epoch's first update (`run_setup.decay_step`: it steps every that many).
        lr = cfg.learning_rate * cfg.lr_decay ** (epoch * run.train_iter.num_batches // run.decay_step)
        if run.init_record is not None:
            _set_encoder_lr(module, cfg, epoch)
        tr, tr_speed = run_epoch(
            module, run.train_iter, run.scheme, train=True, desc=f"epoch {epoch + 1} train", progress=progress,
            decode=cfg.decode, crf=config.crf, average=average, pos_index=pos_output_index(config),
        )
        _check_diverged(run, epoch, tr.loss)

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
        elif state["best_f1"] > 0:
            # Patience counts from the first epoch that finds an entity: on a few hundred sentences a
            # network from scratch tags everything O for several epochs before it starts (re3d, 250
            # sentences: F1 0 for 5 epochs, then stopped by --patience 4 with nothing learnt).
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        state["interrupted"] = False
        yield record, improved


def _check_diverged(run: Run, epoch: int, loss: float | None) -> None:
    """Stop a run whose training diverged (its parameters or loss no longer finite numbers) before anything of
    the epoch is saved or validated: a checkpoint of NaNs exported to a package that tags everything O. The
    workers of a dist_sync job see the same parameters, so NaN parameters stop each at the same epoch; the
    loss is each worker's own (a NaN loss with finite parameters stops that worker, and `launch` the job)."""
    bad = non_finite(module_canonical(run.module, run.config))
    if bad is None and (loss is None or np.isfinite(loss)):
        return
    what = f"parameter {bad} holds NaN or infinity" if bad is not None else f"the training loss is {loss}"
    kept = (f"{run.out} keeps the checkpoint of epoch {run.state['epoch']}" if run.state["epoch"]
            else "no parameters were saved")
    raise ValueError(f"training diverged in epoch {epoch + 1} ({what}): {kept}; train again with a lower --lr"
                     f" (it was {run.cfg.learning_rate:g})")


def _save(run: Run, best: bool) -> None:
    """Write the run's checkpoint files (worker 0 only): last parameters, the average, best parameters
    when `best`, optimizer states, metrics.jsonl and state.json, all together (`atomic.atomic_group`): a
    process killed while saving leaves the previous checkpoint whole, never the new parameters beside
    the old state.json (one SIGKILL did: --resume then redid epoch N from epoch N's parameters with epoch
    N-1's optimizer state, and best.params.npz was not the epoch state.json named)."""
    if not run.writes:
        return
    out, config, state, average = run.out, run.config, run.state, run.average
    if run.frozen is not None:
        # Every save writes the vectors' values exactly, whatever stopped the last update midway: a Ctrl-C
        # between FrozenAdam's step and its restore, or one a multi-device kvstore's callback swallowed.
        run.frozen.restore_module(run.module)
    canonical = module_canonical(run.module, config)
    with atomic_group(out) as group:
        save_params(out / params_file("last"), canonical, group.write_bytes)
        averaged = None
        if average is not None:
            averaged = unpack_params(config, average.arrays())
            save_params(out / AVERAGE_FILE, averaged, group.write_bytes)
            state["average_steps"] = average.steps
        if best:
            # The parameters that were validated best: the average or the live ones (see `_epochs`).
            save_params(out / params_file("best"), averaged if state.get("best_is_average") else canonical, group.write_bytes)
        save_optimizer_states(out / STATES_FILE, run.module, config, group.write_bytes)
        lines = "".join(json.dumps(h) + "\n" for h in run.history)
        group.write_bytes(out / METRICS_FILE, lambda f: f.write(lines.encode()))
        document = json_document(state).encode()
        group.write_bytes(out / STATE_FILE, lambda f: f.write(document))
    if best:
        run.written_best = state["best_epoch"]


def _set_encoder_lr(module: Any, cfg: TrainConfig, epoch: int) -> None:
    """The learning-rate multiplier of the parameters taken whole from --init's SOURCE in `epoch`: 0 (frozen)
    for the first `freeze_epochs`, then `init_lr_scale` (the optimizer keys multipliers by module name)."""
    from ner_fast.training.init_source import encoder_names

    optimizer = module._curr_module._optimizer
    scale = 0.0 if epoch < cfg.freeze_epochs else cfg.init_lr_scale
    optimizer.set_lr_mult({n: scale for n in encoder_names(list(optimizer.idx2name.values()))})
