"""The run folder on disk: claimed before a new run (`claim_run_dir`), read back to resume one
(`read_state`, `read_metrics`, `logged_validation`, `logged_record`), and the parts of a checkpoint that need the MXNet module: its
parameters in canonical form (`module_canonical`) and Adam's state (`save_optimizer_states`,
`load_optimizer_states`), and the lock a training process holds on it (`run_lock`). The file names are `checkpoint.py`'s; `train.py`'s `_save` writes a
checkpoint after each epoch.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, ContextManager

import numpy as np

from ner_fast.atomic import atomic_write_bytes, folder_lock, read_json
from ner_fast.checkpoint import METRICS_FILE, RUN_FILES, STATE_FILE, pack_params, run_files, unpack_params
from ner_fast.config import ModelConfig, OptionError
from ner_fast.errors import place
from ner_fast.npz import read_npz, write_npz
from ner_fast.option_table import CHECKPOINTS
from ner_fast.package import claim_folder


def module_canonical(module: Any, config: ModelConfig) -> dict[str, np.ndarray]:
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


def save_optimizer_states(path: Path, module: Any, config: ModelConfig,
                          write: Callable[[Path, Callable[[Any], None]], None] = atomic_write_bytes) -> bool:
    """Adam's moments and step counts as an npz in canonical naming, through `write` (as `save_params`);
    False where not reachable."""
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
    write(path, lambda f: write_npz(f, arrays))
    return True


def load_optimizer_states(path: Path, module: Any, config: ModelConfig) -> bool:
    """Put states saved by `save_optimizer_states` back into the module's optimizer."""
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


def run_lock(out: Path) -> ContextManager[bool]:
    """Hold the run folder `out` for this process while it trains (`atomic.folder_lock`): a second `ner-fast
    train` on the folder (a --resume while the run still trains, --out DIR --force over it) is refused in
    one line: both wrote the checkpoint, and the folder held whichever saved last."""
    return folder_lock(out, f"{out}: another ner-fast train is training in this folder now; wait for it to end,"
                            " or stop it (Ctrl-C saves it) and then --resume")


def claim_run_dir(out: Path, force: bool = False) -> list[str]:
    """Check the folder a new run writes, before any work: the files of an earlier run there, which the
    caller removes (`clear_previous`) only once the new run is set up, so that a refusal after this
    (a malformed corpus, --init, --teacher) loses nothing.

    `package.claim_folder` (a folder of another kind is refused, even with --force) with the run's files
    (`checkpoint.run_files`): other files refuse the
    folder unless `force`. A finished run (state.json) is only started over with `force`, since
    `--resume` continues it; the files of the earlier run are removed then, nothing else.
    """
    claim = claim_folder(out, "run", run_files, force=force, writes=RUN_FILES)
    if (out / STATE_FILE).exists() and not force:
        raise OptionError(
            "--out", f"{out} holds a training run: continue it with --resume {out}, or add --force to start over"
        )
    return sorted(claim.previous)


def clear_previous(out: Path, previous: list[str]) -> None:
    """Remove the earlier run's files `claim_run_dir` found in `out` (the new run is set up)."""
    for name in previous:
        (out / name).unlink(missing_ok=True)


def read_state(out: Path) -> dict[str, Any]:
    """`state.json` of a run to resume; ValueError naming the file when missing or malformed."""
    path = out / STATE_FILE
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
            raise ValueError(f"{place(path, number)}not valid JSON ({err.msg})") from None
    return records


#: How `logged_validation`'s F1 was measured: by the training loop on the dev data, not through the tagger.
LOGGED_WITH = "logged in training (MXNet float32)"


def logged_validation(run_dir: Path, which: str = "best") -> dict[str, Any]:
    """The validation entity F1 a run logged in training for the parameters of its checkpoint `which`, read
    from `metrics.jsonl`: "best" (best.params.npz: `state.json`'s best_epoch, the F1 that made it best) or
    "last" (last.params.npz: the live parameters of `state.json`'s epoch, the last one finished).

    {"epoch", "epochs_trained", "best_epoch", "f1", "per_type"} (per_type: each entity type's F1, P, R and support logged
    with that F1): each None where the run does not record it (no state.json: stopped
    before its first epoch ended; no line for that epoch in metrics.jsonl). For "last", f1 is None where no
    F1 was logged for last.params.npz's parameters: an interrupted run saved them partway through the
    epoch after its last finished one (`state.json` interrupted; epoch None then), and with `--average` an
    epoch that validated the average alone logged none for the live parameters (`average.live_f1` is their
    F1, `valid.f1` the kept one's). ValueError naming the file (and line) for a malformed one. The F1 is
    MXNet's float32 scoring during training (`LOGGED_WITH`).
    """
    if which not in CHECKPOINTS:
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    path = run_dir / STATE_FILE
    state = read_json(path, "training state") if path.exists() else {}
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a ner-fast training state (a JSON object)")
    if which == "last" and state.get("interrupted"):
        # Ctrl-C or SIGTERM saved the parameters of a partly trained epoch: no F1 was logged for them.
        return {"epoch": None, "epochs_trained": state.get("epoch"), "best_epoch": state.get("best_epoch"), "f1": None,
                "per_type": None}
    epoch = state.get("best_epoch" if which == "best" else "epoch")
    # A malformed line is a ValueError naming the file and line (`read_metrics`), not a bare JSON error.
    records = read_metrics(run_dir / METRICS_FILE) if epoch is not None else []
    record = next((r for r in records if r.get("epoch") == epoch), {})
    averaging = record.get("average")
    valid = record.get("valid") or {}
    if which == "last" and isinstance(averaging, dict):
        # last.params.npz holds the live parameters, not the average, whose scores `valid` holds.
        f1, per_type = averaging.get("live_f1"), None
    else:
        f1, per_type = valid.get("f1"), valid.get("per_type")
    return {"epoch": epoch, "epochs_trained": state.get("epoch"), "best_epoch": state.get("best_epoch"), "f1": f1,
            "per_type": per_type or None}


def logged_record(run_dir: Path, which: str) -> dict[str, Any] | None:
    """What a package records (`export`, each member's `source` `validation`) of the validation F1 the run
    `run_dir` logged in training at the epoch of its checkpoint `which` (`logged_validation`):
    {"epoch", "epochs_trained", "best_epoch", "f1", "measured_with": `LOGGED_WITH`, "per_type"} (per_type where logged;
    f1 None for the last parameters of an interrupted run, a partly trained epoch); None where the run
    logged nothing."""
    logged = logged_validation(run_dir, which)
    if logged["f1"] is None and logged["epochs_trained"] is None:
        return None
    record = {"epoch": logged["epoch"], "epochs_trained": logged["epochs_trained"], "best_epoch": logged["best_epoch"],
              "f1": logged["f1"], "measured_with": LOGGED_WITH}
    return record | ({"per_type": logged["per_type"]} if logged["per_type"] else {})
