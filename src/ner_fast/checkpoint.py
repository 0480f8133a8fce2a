"""Model configuration, canonical parameters and checkpoint files: everything but the graph.

This module never imports mxnet, so the ONNX exporter and `ner-fast evaluate` can read a
checkpoint without it. The graph itself lives in `model.py`.

Parameters travel in one *canonical* form everywhere outside a running module: a dict of float32
NumPy arrays under the unpacked names of docs/ARCHITECTURE.md (`lstm{k}_{fwd|bwd}_{i2h|h2h}_{weight|bias}`,
MXNet gate order i, f, c, o). The fused LSTM (`mx.rnn.FusedRNNCell`, the `RNN` operator) wants one
packed vector per direction instead (`lstm{k}_{d}_parameters`); `pack_params` / `unpack_params` convert.

A checkpoint folder (`ner-fast train --out DIR`) holds `config.json`, `vocab.json`,
`best.params.npz`, `last.params.npz`, `last.states.npz` (optimizer state), `state.json` and
`metrics.jsonl`; every file is written to a temporary name in the same folder and renamed into place.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ner_fast.atomic import atomic_write_bytes
from ner_fast.decode import CRF_PARAMS
from ner_fast.features import ROW_CHARS
from ner_fast.vocab import Vocabularies

CONFIG_VERSION = 1

DIRECTIONS = ("fwd", "bwd")


@dataclass
class ModelConfig:
    """Every architectural hyper-parameter, plus the vocabulary sizes the network is built for.

    Sizes count the padding/unknown ids (`n_words = len(vocabs.words)`); `n_pos = 0` means the
    corpus has no POS column, and then POS is not used whatever `use_pos` says. `crf` replaces the
    per-token softmax loss by a linear-chain CRF over the same scores (Lample et al. 2016).
    """

    n_words: int
    n_chars: int
    n_tags: int
    max_token_chars: int
    n_pos: int = 0
    n_casing: int = 0
    char_dim: int = 25
    filter_widths: list[int] = field(default_factory=lambda: [3])
    filters: int = 53
    word_dim: int = 150
    use_casing: bool = False
    casing_dim: int = 10
    use_pos: bool = True
    hidden: int = 275
    num_layers: int = 1
    dropout: float = 0.1
    fused: bool = True
    crf: bool = False

    def __post_init__(self) -> None:
        self.filter_widths = [int(w) for w in self.filter_widths]
        if any(w < 1 or w > self.max_token_chars for w in self.filter_widths):
            raise ValueError(
                f"filter widths {self.filter_widths} must lie in 1..max_token_chars ({self.max_token_chars})"
            )
        if self.use_casing and self.n_casing < 2:
            raise ValueError("use_casing needs n_casing (the number of casing ids, padding included)")
        if self.num_layers < 1 or self.hidden < 1:
            raise ValueError("num_layers and hidden must be positive")

    @property
    def pos_enabled(self) -> bool:
        """Whether the one-hot POS feature is part of the input (asked for and available)."""
        return self.use_pos and self.n_pos > 0

    @property
    def input_dim(self) -> int:
        """Width of the per-token vector that enters the first BiLSTM layer."""
        dim = self.word_dim + self.filters * len(self.filter_widths)
        if self.use_casing:
            dim += self.casing_dim
        if self.pos_enabled:
            dim += self.n_pos
        return dim

    @property
    def n_features(self) -> int:
        """Rows of the input tensor: word, casing, POS, then one per character."""
        return ROW_CHARS + self.max_token_chars

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the `model` section of config.json)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """The inverse of `to_dict`; unknown keys are an error (a newer or foreign config)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


# --------------------------------------------------------------------------- parameters


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
        d_in = c.input_dim if k == 0 else 2 * h
        for d in DIRECTIONS:
            shapes[f"lstm{k}_{d}_i2h_weight"] = (4 * h, d_in)
            shapes[f"lstm{k}_{d}_h2h_weight"] = (4 * h, h)
            shapes[f"lstm{k}_{d}_i2h_bias"] = (4 * h,)
            shapes[f"lstm{k}_{d}_h2h_bias"] = (4 * h,)
    shapes["fc_weight"] = (c.n_tags, 2 * h)
    shapes["fc_bias"] = (c.n_tags,)
    if c.crf:
        shapes.update(zip(CRF_PARAMS, [(c.n_tags, c.n_tags), (c.n_tags,), (c.n_tags,)]))
    return shapes


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
        for d in DIRECTIONS:
            keys = _lstm_keys(k, d)
            out[f"lstm{k}_{d}_parameters"] = np.concatenate([np.asarray(out.pop(n)).ravel() for n in keys])
    return out


def unpack_params(config: ModelConfig, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inverse of `pack_params`; a dict already in canonical form is returned as a copy."""
    out = dict(params)
    shapes = param_shapes(config)
    for k in range(config.num_layers):
        for d in DIRECTIONS:
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


def check_params(config: ModelConfig, params: dict[str, np.ndarray]) -> None:
    """Raise ValueError unless `params` holds exactly the canonical names with the right shapes."""
    shapes = param_shapes(config)
    missing = sorted(set(shapes) - set(params))
    extra = sorted(set(params) - set(shapes))
    if missing or extra:
        raise ValueError(f"parameters do not match the config: missing {missing}, unexpected {extra}")
    for name, shape in shapes.items():
        if tuple(params[name].shape) != shape:
            raise ValueError(f"parameter {name} has shape {tuple(params[name].shape)}, expected {shape}")


def save_params(path: str | os.PathLike[str], params: dict[str, np.ndarray]) -> None:
    """Save canonical parameters as an npz of `arg:NAME` float32 arrays, atomically."""
    arrays = {f"arg:{n}": np.asarray(a, dtype=np.float32) for n, a in params.items()}
    atomic_write_bytes(path, lambda f: np.savez(f, **arrays))


def load_params(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a params npz written by `save_params` -> canonical parameters by name."""
    params: dict[str, np.ndarray] = {}
    if not Path(path).exists():
        raise ValueError(f"{path}: no such parameter file")
    with np.load(path, allow_pickle=False) as npz:
        for key in npz.files:
            kind, _, name = key.partition(":")
            if kind != "arg":
                raise ValueError(f"{path}: unexpected array {key!r} (expected arg:NAME)")
            params[name] = npz[key]
    return params


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The `config.json` document of a checkpoint folder."""
    path = Path(folder) / "config.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from err
    if not isinstance(doc, dict) or "model" not in doc:
        raise ValueError(f"{path}: not a ner-fast training config (no 'model' section)")
    if doc.get("format_version", 0) > CONFIG_VERSION:
        raise ValueError(f"{path}: format_version {doc['format_version']} is newer than this ner-fast reads")
    return doc


def load_model(
    folder: str | os.PathLike[str], which: str = "best"
) -> tuple[ModelConfig, dict[str, np.ndarray], Vocabularies, dict[str, Any]]:
    """Read a checkpoint folder -> (model config, canonical params, vocabularies, config.json document).

    `which` is "best" (highest validation entity F1) or "last" (the latest epoch).
    """
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    folder = Path(folder)
    doc = read_config(folder)
    config = ModelConfig.from_dict(doc["model"])
    params = load_params(folder / f"{which}.params.npz")
    check_params(config, params)
    vocabs = Vocabularies.load(folder / "vocab.json")
    return config, params, vocabs, doc
