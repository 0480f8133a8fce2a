"""Canonical parameters and checkpoint files: everything about a trained network but the graph.

This module never imports mxnet, so the ONNX exporter and `ner-fast evaluate` can read a
checkpoint without it. The graph itself lives in `training/model.py`; `ModelConfig` lives with every other
option in `config.py` (re-exported here, where the checkpoint readers have always found it).

Parameters travel in one *canonical* form everywhere outside a running module: a dict of float32
NumPy arrays under the unpacked names of docs/ARCHITECTURE.md (`lstm{k}_{fwd|bwd}_{i2h|h2h}_{weight|bias}`,
MXNet gate order i, f, c, o; a forward-only model has no `bwd` ones). The fused LSTM (`mx.rnn.FusedRNNCell`, the `RNN` operator) wants one
packed vector per direction instead (`lstm{k}_{d}_parameters`); `pack_params` / `unpack_params` convert.

A checkpoint folder (`ner-fast train --out DIR`) holds `config.json`, `vocab.json`,
`best.params.npz`, `last.params.npz`, `last.states.npz` (optimizer state), `state.json` and
`metrics.jsonl`; every file is written to a temporary name in the same folder and renamed into place.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ner_fast.atomic import atomic_write_bytes, finish_group
from ner_fast.config import CONFIG_VERSION, LSTM_DIRECTIONS, ModelConfig, read_config
from ner_fast.decode import CRF_PARAMS
from ner_fast.npz import read_npz, write_npz
from ner_fast.option_table import CHECKPOINTS
from ner_fast.package import RUN_CONFIG_FILE, RUN_VOCAB_FILE
from ner_fast.vocab import Vocabularies

__all__ = ["ModelConfig", "CONFIG_VERSION", "RUN_FILES", "AVERAGE_FILE", "STATE_FILE", "METRICS_FILE", "STATES_FILE",
           "params_file", "check_has_params", "run_files", "param_shapes", "init_params", "pack_params", "unpack_params",
           "inference_params",
           "check_params", "save_params", "load_params", "read_config", "load_model"]

#: The run's progress (epoch, best F1, patience) and its per-epoch metrics, one JSON line each.
STATE_FILE = "state.json"
METRICS_FILE = "metrics.jsonl"
#: The optimizer's states (Adam's moments), continued by --resume.
STATES_FILE = "last.states.npz"
# With --average: the parameters' moving average (what is validated and kept as best), continued by --resume.
AVERAGE_FILE = "last.average.npz"


def params_file(which: str) -> str:
    """The file of the run's `which` parameters (`CHECKPOINTS`)."""
    return f"{which}.params.npz"


# Every file a training run writes into its folder (docs/ARCHITECTURE.md, "Checkpoints").
RUN_FILES = (RUN_CONFIG_FILE, RUN_VOCAB_FILE, *map(params_file, CHECKPOINTS), STATES_FILE, STATE_FILE, METRICS_FILE,
             AVERAGE_FILE)


# --------------------------------------------------------------------------- parameters


#: Float32 copies of every parameter that training keeps: the weights, their gradients and Adam's two moments;
#: one more with the moving average (`--average`).
TRAINING_COPIES = 4


def training_bytes(config: ModelConfig, average: bool = True) -> int:
    """The bytes training holds for a `config` network's parameters (`TRAINING_COPIES` float32 copies of each,
    and the moving average's with `average`): a floor of what it needs, its activations aside."""
    return 4 * (TRAINING_COPIES + average) * sum(math.prod(shape) for shape in param_shapes(config).values())


def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The canonical (unpacked) parameter names and shapes of a network."""
    c = config
    shapes: dict[str, tuple[int, ...]] = {
        "word_embed_weight": (c.n_words, c.word_dim),
        "char_embed_weight": (c.n_chars, c.char_dim),
    }
    if c.use_casing:
        shapes["casing_embed_weight"] = (c.n_casing, c.casing_dim)
    for w in c.filter_widths:
        shapes[f"char_conv{w}_weight"] = (c.filters, 1, w, c.char_dim)
        shapes[f"char_conv{w}_bias"] = (c.filters,)
    h = c.hidden
    for k in range(c.num_layers):
        d_in = c.input_dim if k == 0 else c.state_dim
        for d in c.lstm_directions:
            shapes[f"lstm{k}_{d}_i2h_weight"] = (4 * h, d_in)
            shapes[f"lstm{k}_{d}_h2h_weight"] = (4 * h, h)
            shapes[f"lstm{k}_{d}_i2h_bias"] = (4 * h,)
            shapes[f"lstm{k}_{d}_h2h_bias"] = (4 * h,)
    shapes["fc_weight"] = (c.n_tags, c.state_dim)
    shapes["fc_bias"] = (c.n_tags,)
    if c.crf:
        shapes.update(zip(CRF_PARAMS, [(c.n_tags, c.n_tags), (c.n_tags,), (c.n_tags,)]))
    # The auxiliary heads come last, so adding them leaves the other parameters' initial draws unchanged.
    if c.pos_head:
        shapes["pos_fc_weight"] = (c.n_pos, c.state_dim)
        shapes["pos_fc_bias"] = (c.n_pos,)
    if c.lm_head:  # always both directions (`config.check_combinations`)
        for d in LSTM_DIRECTIONS:
            shapes[f"lm_{d}_hidden_weight"] = (c.lm_dim, h)
            shapes[f"lm_{d}_hidden_bias"] = (c.lm_dim,)
            shapes[f"lm_{d}_out_weight"] = (c.lm_classes, c.lm_dim)
            shapes[f"lm_{d}_out_bias"] = (c.lm_classes,)
    return shapes


def inference_params(config: ModelConfig, params: dict[str, np.ndarray]) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """The config and parameters of the network as exported: without the training-only LM head."""
    if not config.lm_head:
        return config, params
    kept = dataclasses.replace(config, lm_aux_weight=0.0)
    names = set(param_shapes(kept))
    return kept, {n: a for n, a in params.items() if n in names}


def init_params(config: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh canonical parameters, drawn from NumPy with `seed` (so fused and unrolled runs start equal).

    Xavier-uniform for matrices and convolutions, U(-0.1, 0.1) for embeddings, zero biases except
    the LSTM forget gate, which starts at 1 (Jozefowicz et al. 2015, MXNet's default). CRF scores
    start at zero: at first the CRF ranks paths by the per-token scores alone.
    """
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    h = config.hidden
    for name, shape in param_shapes(config).items():
        if name.endswith("embed_weight"):
            arr = rng.uniform(-0.1, 0.1, shape)
        elif name in CRF_PARAMS:
            arr = np.zeros(shape)
        elif name.endswith("bias"):
            arr = np.zeros(shape)
            if name.endswith("i2h_bias"):
                arr[h : 2 * h] = 1.0  # gate order i, f, c, o: rows h..2h are the forget gate
        else:
            fan_out, fan_in = shape[0], int(np.prod(shape[1:]))
            if len(shape) == 4:  # convolution: the receptive field counts on both sides
                fan_out = shape[0] * int(np.prod(shape[2:]))
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            arr = rng.uniform(-bound, bound, shape)
        params[name] = arr.astype(np.float32)
    return params


def _lstm_keys(k: int, d: str) -> list[str]:
    # The order of the packed RNN-operator vector: all weights, then all biases.
    p = f"lstm{k}_{d}_"
    return [p + "i2h_weight", p + "h2h_weight", p + "i2h_bias", p + "h2h_bias"]


def pack_params(config: ModelConfig, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical parameters -> the fused module's (`lstm{k}_{d}_parameters` vectors).

    Works for anything shaped like the parameters (Adam's moments too). Non-LSTM entries pass through.
    """
    out = dict(params)
    for k in range(config.num_layers):
        for d in config.lstm_directions:
            keys = _lstm_keys(k, d)
            out[f"lstm{k}_{d}_parameters"] = np.concatenate([np.asarray(out.pop(n)).ravel() for n in keys])
    return out


def unpack_params(config: ModelConfig, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inverse of `pack_params`; a dict already in canonical form is returned as a copy."""
    out = dict(params)
    shapes = param_shapes(config)
    for k in range(config.num_layers):
        for d in config.lstm_directions:
            packed_name = f"lstm{k}_{d}_parameters"
            if packed_name not in out:
                continue
            flat = np.asarray(out.pop(packed_name)).ravel()
            pos = 0
            for n in _lstm_keys(k, d):
                size = int(np.prod(shapes[n]))
                out[n] = flat[pos : pos + size].reshape(shapes[n]).copy()
                pos += size
            if pos != flat.size:
                raise ValueError(f"{packed_name} has {flat.size} values, the config needs {pos}")
    return out


def non_finite(params: dict[str, np.ndarray]) -> str | None:
    """The name of the first parameter holding a NaN or an infinity (a run whose training diverged), or None."""
    return next((name for name, array in params.items() if not np.isfinite(array).all()), None)


def check_params(config: ModelConfig, params: dict[str, np.ndarray]) -> None:
    """Raise ValueError unless `params` holds exactly the canonical names with the right shapes, all finite."""
    shapes = param_shapes(config)
    missing = sorted(set(shapes) - set(params))
    extra = sorted(set(params) - set(shapes))
    if missing or extra:
        raise ValueError(f"parameters do not match the config: missing {missing}, unexpected {extra}")
    for name, shape in shapes.items():
        if tuple(params[name].shape) != shape:
            raise ValueError(f"parameter {name} has shape {tuple(params[name].shape)}, expected {shape}")
    bad = non_finite(params)
    if bad is not None:
        raise ValueError(f"parameter {bad} holds values that are not finite numbers (NaN or infinity): the training"
                         " that wrote it diverged")


def save_params(
    path: str | os.PathLike[str], params: dict[str, np.ndarray],
    write: Callable[[Path, Callable[[Any], None]], None] = atomic_write_bytes,
) -> None:
    """Save canonical parameters as an npz of `arg:NAME` float32 arrays through `write` (default: atomically
    on its own; a checkpoint passes its `atomic.GroupWriter.write_bytes`)."""
    arrays = {f"arg:{n}": np.asarray(a, dtype=np.float32) for n, a in params.items()}
    write(Path(path), lambda f: write_npz(f, arrays))


def load_params(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a params npz written by `save_params` -> canonical parameters by name; ValueError naming the file."""
    params: dict[str, np.ndarray] = {}
    for key, array in read_npz(path, "parameter file").items():
        kind, _, name = key.partition(":")
        if kind != "arg":
            raise ValueError(f"{path}: unexpected array {key!r} (expected arg:NAME)")
        params[name] = array
    return params


def run_files(folder: Path) -> set[str] | None:
    """The files of an earlier `ner-fast train` run in `folder` (None: it holds none)."""
    try:
        read_config(folder)
    except ValueError:
        return None
    return set(RUN_FILES)


def check_has_params(folder: Path, which: str = "best") -> None:
    """ValueError for a run folder without `which` parameters, saying why (the one rule of `load_model` and
    `--teacher`): it has not finished an epoch, or it stopped before its first epoch ended."""
    if not any((folder / params_file(kind)).exists() for kind in CHECKPOINTS):
        # A run stopped before its first epoch ended: "best.params.npz: no such file" read as a damaged run.
        how = f"resume it (ner-fast train --resume {folder})" if (folder / STATE_FILE).exists() else "start it again"
        raise ValueError(f"{folder}: a training run that has not finished an epoch yet, so it has no parameters: {how}")
    if which == "best" and not (folder / params_file("best")).exists() and (folder / params_file("last")).exists():
        # Stopped (Ctrl-C, SIGTERM) before its first epoch ended: it saved its last parameters, never a best.
        raise ValueError(f"{folder}: a training run stopped before its first epoch ended, so it has no best parameters"
                         f" yet: resume it (ner-fast train --resume {folder}), or read its last ones (evaluate --which"
                         " last, export --checkpoint last)")


def load_model(
    folder: str | os.PathLike[str], which: str = "best"
) -> tuple[ModelConfig, dict[str, np.ndarray], Vocabularies, dict[str, Any]]:
    """Read a checkpoint folder -> (model config, canonical params, vocabularies, config.json document).

    `which` is "best" (highest validation entity F1) or "last" (the latest epoch).
    """
    if which not in CHECKPOINTS:
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    folder = Path(folder)
    finish_group(folder)  # a checkpoint save cut short while being renamed into place (`atomic.atomic_group`)
    doc = read_config(folder)
    config = ModelConfig.from_dict(doc["model"])
    check_has_params(folder, which)
    path = folder / params_file(which)
    params = load_params(path)
    try:
        check_params(config, params)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    vocabs = Vocabularies.load(folder / RUN_VOCAB_FILE)
    return config, params, vocabs, doc
