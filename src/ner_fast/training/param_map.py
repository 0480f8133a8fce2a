"""The one mapping between canonical (MXNet) parameters and the ONNX initializers of a package.

`export.build_graph` names its initializers with the functions here and builds them with the forward
transforms (`lstm_weights`, `char_tables`, `head_weight_t`); `onnx_to_params` is their inverse, used by
`ner-fast train --init PACKAGE` (`training/init.py`). A new parameter or a renamed initializer changes
this module and nothing else; `tests/training/test_init.py` exports a package and reads it back to
hold the two directions together.

| canonical (docs/ARCHITECTURE.md)                          | ONNX initializer            | transform                                   |
|-----------------------------------------------------------|-----------------------------|---------------------------------------------|
| `word_embed_weight`, `casing_embed_weight`                | the same name               | none                                        |
| `char_embed_weight` + `char_conv{w}_weight`               | `char_conv{w}_table{k}`     | T_k = E . W[:, 0, k, :]^T (folded); inverse: SVD |
| `char_conv{w}_bias`                                       | the same name               | none                                        |
| `lstm{k}_{d}_{i2h,h2h}_{weight,bias}`                     | `lstm{k}_W`, `_R`, `_B`     | gates i,f,c,o -> i,o,f,c; B = [i2h; h2h]; directions stacked |
| `fc_weight`, `pos_fc_weight`                              | `fc_weight_t`, `pos_fc_weight_t` | transposed                             |
| `fc_bias`, `pos_fc_bias`                                  | the same name               | none                                        |

An ensemble prefixes member i's names with `member_prefix(i)` (`m0/`, `m1/`, ...). The CRF scores are not
in the graph: they travel in `model.json` `crf`.

The character CNN is stored folded: for width w and kernel row k, `T_{w,k} = E @ W_{w,k}^T` with E the
character embedding (n_chars x char_dim) and W_{w,k} (filters x char_dim). Side by side every table of
every width is E @ K^T, of rank at most char_dim; a truncated SVD to char_dim factors it back
(`unfold_char_tables`): exact up to the folding's own freedom (any invertible char_dim x char_dim matrix
between E and K gives the same tables, hence the same network) for float32 packages, the least-squares
best for int8 ones.

This module imports NumPy only; reading an ONNX file is `training/init.py`'s.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ner_fast.config import ModelConfig

WORD_EMBED = "word_embed_weight"
CASING_EMBED = "casing_embed_weight"
CHAR_EMBED = "char_embed_weight"
# MXNet stores LSTM gates as i, f, c, o; ONNX expects i, o, f, c: ONNX block j is MXNet block MXNET_TO_ONNX_GATES[j].
MXNET_TO_ONNX_GATES = (0, 3, 1, 2)
ONNX_TO_MXNET_GATES = tuple(MXNET_TO_ONNX_GATES.index(j) for j in range(4))
# The output heads a graph holds: the tag layer and the auxiliary POS head.
HEADS = ("fc", "pos_fc")


def member_prefix(i: int) -> str:
    """The prefix of ensemble member i's names (`m0/`)."""
    return f"m{i}/"


def char_table(width: int, row: int) -> str:
    """The initializer of kernel row `row` of the width-`width` convolution, folded into the embedding."""
    return f"char_conv{width}_table{row}"


def char_bias(width: int) -> str:
    """The bias of the width-`width` convolution (canonical and ONNX name alike)."""
    return f"char_conv{width}_bias"


def char_kernel(width: int) -> str:
    """The canonical convolution kernel of width `width`, (filters, 1, width, char_dim)."""
    return f"char_conv{width}_weight"


def lstm(layer: int, which: str) -> str:
    """ONNX `W`, `R` or `B` of LSTM layer `layer`."""
    return f"lstm{layer}_{which}"


def head_weight_t(head: str) -> str:
    """The transposed weight of an output head (`fc_weight_t`)."""
    return f"{head}_weight_t"


def head_bias(head: str) -> str:
    """The bias of an output head (canonical and ONNX name alike)."""
    return f"{head}_bias"


def _gates(a: np.ndarray, hidden: int, order: Sequence[int]) -> np.ndarray:
    blocks = a.reshape(4, hidden, *a.shape[1:])
    return blocks[list(order)].reshape(a.shape)


def lstm_weights(params: Mapping[str, np.ndarray], layer: int, config: ModelConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX `W`, `R`, `B` of one layer (bidirectional, or forward-only with 1 direction) from the
    MXNet fwd[/bwd] parameters."""
    w, r, b = [], [], []
    for d in config.lstm_directions:
        p = f"lstm{layer}_{d}_"
        w.append(_gates(params[p + "i2h_weight"], config.hidden, MXNET_TO_ONNX_GATES))
        r.append(_gates(params[p + "h2h_weight"], config.hidden, MXNET_TO_ONNX_GATES))
        b.append(np.concatenate([_gates(params[p + "i2h_bias"], config.hidden, MXNET_TO_ONNX_GATES),
                                 _gates(params[p + "h2h_bias"], config.hidden, MXNET_TO_ONNX_GATES)]))
    return tuple(np.stack(x).astype(np.float32) for x in (w, r, b))  # type: ignore[return-value]


def lstm_params(w: np.ndarray, r: np.ndarray, b: np.ndarray, layer: int, config: ModelConfig) -> dict[str, np.ndarray]:
    """The inverse of `lstm_weights`: canonical `lstm{layer}_{d}_*` from ONNX W (dirs, 4H, D), R, B (dirs, 8H)."""
    h = config.hidden
    out: dict[str, np.ndarray] = {}
    for i, d in enumerate(config.lstm_directions):
        p = f"lstm{layer}_{d}_"
        out[p + "i2h_weight"] = _gates(np.asarray(w[i]), h, ONNX_TO_MXNET_GATES)
        out[p + "h2h_weight"] = _gates(np.asarray(r[i]), h, ONNX_TO_MXNET_GATES)
        out[p + "i2h_bias"] = _gates(np.asarray(b[i][: 4 * h]), h, ONNX_TO_MXNET_GATES)
        out[p + "h2h_bias"] = _gates(np.asarray(b[i][4 * h :]), h, ONNX_TO_MXNET_GATES)
    return {k: v.astype(np.float32) for k, v in out.items()}


def char_tables(embed: np.ndarray, kernel: np.ndarray) -> list[np.ndarray]:
    """The folded tables of one width: T_k = E . kernel[:, 0, k, :]^T for each kernel row k, float32
    (computed in float64)."""
    e = np.asarray(embed, dtype=np.float64)
    kern = np.asarray(kernel, dtype=np.float64)[:, 0]  # (filters, w, char_dim)
    return [(e @ kern[:, k, :].T).astype(np.float32) for k in range(kern.shape[1])]


def fold_tolerance(embed: np.ndarray, kernels: Sequence[np.ndarray]) -> np.ndarray:
    """Elementwise bound on |refolded - stored| for float32 tables made by `char_tables` from the recovered
    E and K: each entry is a sum of char_dim products whose factors were each rounded once to float32 (a
    relative error of eps per product) and whose sum is rounded once more, plus the SVD's own float64
    error: (char_dim + 2) float32 epsilons of the sum of absolute products. Columns in the order of
    `unfold_char_tables`; the stored tables' own rounding (eps of each entry) is the caller's to add."""
    eps = float(np.finfo(np.float32).eps)
    e = np.abs(np.asarray(embed, dtype=np.float64))
    stacked = np.concatenate([np.abs(np.asarray(k, dtype=np.float64))[:, 0].transpose(1, 0, 2).reshape(-1, e.shape[1]) for k in kernels])
    return (e.shape[1] + 2) * eps * (e @ stacked.T)


def unfold_char_tables(tables: Mapping[int, Sequence[np.ndarray]], char_dim: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Character embedding E (n_chars, char_dim) and kernels {width: (filters, 1, width, char_dim)} whose
    folded tables (`char_tables`) are the best rank-char_dim fit of `tables` ({width: [T_0, ..., T_{w-1}]},
    each (n_chars, filters)): a truncated SVD of every table side by side, E = U S^(1/2), K = V S^(1/2)
    (the balanced split of the folding's freedom). Fewer characters than char_dim leave the extra
    embedding columns and kernel columns zero."""
    widths = list(tables)
    blocks = [np.asarray(t, dtype=np.float64) for w in widths for t in tables[w]]
    m = np.concatenate(blocks, axis=1)  # (n_chars, sum over widths of w * filters)
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    r = min(char_dim, s.size)
    root = np.sqrt(s[:r])
    embed = np.zeros((m.shape[0], char_dim))
    embed[:, :r] = u[:, :r] * root
    k_all = np.zeros((m.shape[1], char_dim))
    k_all[:, :r] = vt[:r].T * root
    kernels: dict[int, np.ndarray] = {}
    col = 0
    for w in widths:
        filters = np.asarray(tables[w][0]).shape[1]
        rows = [k_all[col + k * filters : col + (k + 1) * filters] for k in range(w)]  # each (filters, char_dim)
        col += w * filters
        kernels[w] = np.stack(rows, axis=1)[:, None].astype(np.float32)  # (filters, 1, w, char_dim)
    return embed.astype(np.float32), kernels


def onnx_to_params(arrays: Mapping[str, np.ndarray], config: ModelConfig, check_fold: float | None = 0.0) -> dict[str, np.ndarray]:
    """Canonical parameters (but the CRF scores and the training-only LM head) from the float values of
    one network's initializers by their unprefixed names (`arrays`, as `init.read_package` resolves them).

    `check_fold`: None skips the check of the character tables; 0.0 requires the refolded tables to
    match within `fold_tolerance` (float32 packages); a positive value is the largest quantization
    step of the stored tables (int8 packages), and the refolded tables must lie as close to the stored
    ones as a rank-char_dim matrix must (Frobenius norm at most half a step per entry). Raises ValueError
    naming what does not fit."""
    params: dict[str, np.ndarray] = {WORD_EMBED: np.asarray(arrays[WORD_EMBED], np.float32)}
    if config.use_casing:
        params[CASING_EMBED] = np.asarray(arrays[CASING_EMBED], np.float32)
    tables = {w: [np.asarray(arrays[char_table(w, k)]) for k in range(w)] for w in config.filter_widths}
    embed, kernels = unfold_char_tables(tables, config.char_dim)
    if check_fold is not None:
        stored = np.concatenate([t for w in config.filter_widths for t in tables[w]], axis=1).astype(np.float64)
        refolded = np.concatenate([t for w in config.filter_widths for t in char_tables(embed, kernels[w])], axis=1).astype(np.float64)
        if check_fold == 0.0:
            # Exact folding: the stored tables are float32 roundings of a rank-char_dim matrix.
            tol = fold_tolerance(embed, [kernels[w] for w in config.filter_widths]) + np.finfo(np.float32).eps * np.abs(stored)
            bad = np.abs(refolded - stored) > tol
            if bad.any():
                raise ValueError(f"the character tables are not a folded convolution of char_dim {config.char_dim}"
                                 f" (largest difference {np.abs(refolded - stored).max():.3g})")
        else:
            limit = 0.5 * check_fold * np.sqrt(stored.size) * (1 + 1e-3) + float(np.sqrt(np.sum(fold_tolerance(embed, [kernels[w] for w in config.filter_widths]) ** 2)))
            if np.linalg.norm(refolded - stored) > limit:
                raise ValueError(f"the int8 character tables are farther from rank {config.char_dim} than their quantization allows")
    params[CHAR_EMBED] = embed
    for w in config.filter_widths:
        params[char_kernel(w)] = kernels[w]
        params[char_bias(w)] = np.asarray(arrays[char_bias(w)], np.float32)
    for k in range(config.num_layers):
        params.update(lstm_params(arrays[lstm(k, "W")], arrays[lstm(k, "R")], arrays[lstm(k, "B")], k, config))
    for head in HEADS:
        if head == "pos_fc" and not config.pos_head:
            continue
        params[f"{head}_weight"] = np.ascontiguousarray(np.asarray(arrays[head_weight_t(head)], np.float32).T)
        params[head_bias(head)] = np.asarray(arrays[head_bias(head)], np.float32)
    return params


def initializer_names(config: ModelConfig) -> list[str]:
    """The initializers `onnx_to_params` reads for a network of `config` (unprefixed)."""
    names = [WORD_EMBED] + ([CASING_EMBED] if config.use_casing else [])
    for w in config.filter_widths:
        names += [char_table(w, k) for k in range(w)] + [char_bias(w)]
    for k in range(config.num_layers):
        names += [lstm(k, x) for x in ("W", "R", "B")]
    for head in HEADS:
        if head == "fc" or config.pos_head:
            names += [head_weight_t(head), head_bias(head)]
    return names
