"""ONNX graphs built directly from the trained parameters, and the model package writer.

Why not MXNet's own exporter: it is broken with current onnx, and it exports `SoftmaxOutput` as one softmax
over tags x positions (see `docs/ARCHITECTURE.md` and the shared notes). Building the graph ourselves from
the parameter arrays is short, gives exactly the network of `model.py`, and keeps mxnet out of this module.

Graph (one per bucket length, plus one whose sequence length is free), input `features` int32
`(batch, F, L)`, output `probs` float32 `(batch, L, T)`:

    word/casing embedding: Gather; POS: Gather from a constant identity table (one-hot);
    chars: the distinct character rows of the batch (`Unique`), per filter width Gathers from
           per-kernel-row tables (the convolution folded into the embedding) summed -> ReduceMax over
           positions -> + bias -> Tanh, then Gathered back to one row a token
    concat -> per layer one ONNX `LSTM` (bidirectional, `sequence_lens` = number of non-zero word ids;
           forward-only for a model with `directions` 1)
    -> MatMul/Add -> Softmax over the tag axis
    (with the auxiliary POS head, a second MatMul/Add -> Softmax on the same LSTM output: `pos_probs`).

With `char_graph` (the default of `export_model`, package format 2) the character path is a graph of its
own (`build_char_graph`: int32 rows `char_ids` (n, C) -> float32 `char_features` (n, F)) and the main
graphs take `char_features` (batch, seq_len, F) as a second input instead of the chars branch above:
everything else is the same graph, so a token's probabilities are the same floats, bit for bit, and the
tagger computes each word form's features once across batches (`ner_fast.char_cache.CharCache`).

`tanh(max(x)) == max(tanh(x))` because tanh is increasing, so the graph takes the max first (53 tanh a token
instead of 53 x positions). Dropout is the identity at inference and does not appear.

An ensemble (`export_model(..., ensemble=[...])`, `ensemble_graph`) is one graph that runs every member on
the shared input and outputs the same names: `probs` is the normalised geometric mean of the members' tag
probabilities, `pos_probs` their mean; a CRF ensemble decodes with the mean of the members' CRF scores.
`max_words` keeps only the most frequent words' embeddings (`truncate_words`): the rest read as unknown.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper

from ner_fast import __version__
from ner_fast.checkpoint import ModelConfig, check_params, inference_params
from ner_fast.config import LSTM_DIRECTIONS, portable_train, trained_decode
from ner_fast.option import graph_buckets
from ner_fast.option_table import row
from ner_fast.decode import CRF
from ner_fast.features import ROW_CASING, ROW_CHARS, ROW_POS, ROW_WORD
from ner_fast.labels import default_descriptions
from ner_fast.package import (
    CHAR_GRAPH_FILE, DEFAULT_BUCKETS, DEFAULT_QUANTIZE, MANIFEST_FILE, MODEL_FILE, QUANTIZATIONS, WEIGHTS_FILE,
    claim_folder, format_version, graph_file, onnxruntime_can_open, package_files, portable_path,
)
from ner_fast.errors import OptionError
from ner_fast.training.quantize import matmul_weights, quantize as quantize_graph
from ner_fast.schemes import TagScheme
from ner_fast.vocab import Vocab, Vocabularies
# Initializer names and the parameter transforms: one home, read back by `train --init` (param_map.onnx_to_params).
from ner_fast.training import param_map as names
from ner_fast.training.param_map import lstm_weights as _lstm_weights
from ner_fast.training.run_dir import logged_record
from ner_fast.training.package_writer import write_package
from ner_fast.training.run_vectors import package_vectors

OPSET = 18
INPUT_NAME = "features"
# The character graph's input (int32 rows (n, max_token_chars)) and output, which is also the main graphs'
# second input when they take the character features (float32 (batch, seq_len, F)).
CHAR_INPUT_NAME = "char_ids"
CHAR_OUTPUT_NAME = "char_features"
OUTPUT_NAME = "probs"
# Second output of a model with the auxiliary POS head: (batch, L, n_pos) softmax over the POS vocabulary.
POS_OUTPUT_NAME = "pos_probs"



class _Graph:
    """Accumulates nodes and initializers; every op gets a fresh output name."""

    def __init__(self, prefix: str = "") -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._count = 0
        # Node and output names start with it (initializers keep theirs): the character graph's nodes
        # never share a name with the main graph's, whose initializers `init_source` reads together.
        self._prefix = prefix

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.array(value, order="C"), name))  # 0-d stays 0-d
        return name

    def ints(self, name: str, values: Sequence[int]) -> str:
        return self.const(name, np.asarray(values, dtype=np.int64))

    def op(self, op_type: str, inputs: Sequence[str], **attrs: Any) -> str:
        return self.ops(op_type, inputs, [True], **attrs)[0]

    def ops(self, op_type: str, inputs: Sequence[str], wanted: Sequence[bool], **attrs: Any) -> list[str]:
        """A node of several outputs: a fresh name for each wanted one, "" (not computed) for the others."""
        self._count += 1
        outs = [f"{self._prefix}{op_type.lower()}_{self._count}" + (f"_{i}" if i else "") if want else "" for i, want in enumerate(wanted)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=f"{self._prefix}{op_type}_{self._count}", **attrs))
        return outs


def build_graph(
    params: Mapping[str, np.ndarray],
    config: ModelConfig,
    metadata: Mapping[str, str] | None = None,
    char_input: bool = False,
) -> onnx.ModelProto:
    """The network of `config` as an ONNX model with embedded weights and a free sequence length.

    `char_input`: the character features come as a second input `CHAR_OUTPUT_NAME` (float32 (batch,
    seq_len, F), what `build_char_graph` computes a row) instead of being computed from `features`.

    `params` are canonical (unpacked names of docs/ARCHITECTURE.md, as `checkpoint.load_params` returns
    them); `metadata` goes into the model's metadata_props. The steps follow the network, input to output:
    `_token_features` (word, casing, POS), `_char_features` (the character CNN), `_bilstm`, `_heads`.
    """
    params = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
    check_params(config, params)
    config, params = inference_params(config, params)
    g = _Graph()
    word, lengths, parts = _token_features(g, params, config)
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.INT32, ["batch", config.n_features, "seq_len"])]
    if char_input:
        parts.append(CHAR_OUTPUT_NAME)
        inputs.append(helper.make_tensor_value_info(CHAR_OUTPUT_NAME, TensorProto.FLOAT, ["batch", "seq_len", _char_width(config)]))
    else:
        parts.append(_char_features(g, params, config, word))
    x = _bilstm(g, params, config, parts, lengths)
    outputs = _heads(g, params, config, x)
    outs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "seq_len", width]) for name, width in outputs]
    return _model(g, "ner_fast_bilstm_cnn", inputs, outs, metadata)


def build_char_graph(
    params: Mapping[str, np.ndarray],
    config: ModelConfig,
    metadata: Mapping[str, str] | None = None,
) -> onnx.ModelProto:
    """The character CNN of `config` alone: int32 character rows `CHAR_INPUT_NAME` (n, max_token_chars)
    -> float32 `CHAR_OUTPUT_NAME` (n, F), each row's features computed as `build_graph`'s chars branch
    computes them (the same nodes), so they are the same floats."""
    params = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
    check_params(config, params)
    config, params = inference_params(config, params)
    g = _Graph("chars/")
    features = _char_cnn(g, params, config, CHAR_INPUT_NAME)
    g.nodes.append(helper.make_node("Identity", [features], [CHAR_OUTPUT_NAME], name="chars/output"))
    inputs = [helper.make_tensor_value_info(CHAR_INPUT_NAME, TensorProto.INT32, ["rows", config.max_token_chars])]
    outs = [helper.make_tensor_value_info(CHAR_OUTPUT_NAME, TensorProto.FLOAT, ["rows", _char_width(config)])]
    return _model(g, "ner_fast_chars", inputs, outs, metadata)


def _char_width(config: ModelConfig) -> int:
    """F: the character features a token (filters x filter widths)."""
    return config.filters * len(config.filter_widths)


def _model(g: _Graph, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
           metadata: Mapping[str, str] | None) -> onnx.ModelProto:
    """The checked ONNX model of `g`'s nodes and initializers, with `metadata` as its metadata_props."""
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ner-fast", producer_version=__version__)
    # Pin the IR version onnxruntime builds of the last years accept, not the newest onnx knows.
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model


def _token_features(g: _Graph, params: Mapping[str, np.ndarray], config: ModelConfig) -> tuple[str, str, list[str]]:
    """The word ids (B, L), the true sentence lengths (B,) and the per-token embeddings looked up by
    Gather: word, casing (when used) and POS (a one-hot table, when used), each (B, L, width)."""
    word = g.op("Gather", [INPUT_NAME, g.ints("row_word", ROW_WORD)], axis=1)  # (B, L)
    # True length = number of non-zero word ids; the backward LSTM starts at the last real token.
    is_real = g.op("Cast", [g.op("Greater", [word, g.const("zero_i32", np.array(0, np.int32))])], to=TensorProto.INT32)
    lengths = g.op("ReduceSum", [is_real, g.ints("axis_1", [1])], keepdims=0)  # (B,) int32

    parts = [g.op("Gather", [g.const(names.WORD_EMBED, params[names.WORD_EMBED]), word])]
    if config.use_casing:
        casing = g.op("Gather", [INPUT_NAME, g.ints("row_casing", ROW_CASING)], axis=1)
        parts.append(g.op("Gather", [g.const(names.CASING_EMBED, params[names.CASING_EMBED]), casing]))
    if config.pos_enabled:
        pos = g.op("Gather", [INPUT_NAME, g.ints("row_pos", ROW_POS)], axis=1)
        one_hot = np.eye(config.n_pos, dtype=np.float32)
        parts.append(g.op("Gather", [g.const("pos_one_hot", one_hot), pos]))
    return word, lengths, parts


def _char_features(g: _Graph, params: Mapping[str, np.ndarray], config: ModelConfig, word: str) -> str:
    """The character CNN: per filter width, convolution, max over positions, bias and tanh, all widths
    concatenated: (B, L, filters x widths). `word` (the word ids) gives the batch's (B, L) shape."""
    chars = config.max_token_chars
    # Characters: (B, C, L) -> (B*L, C) ids. The convolution is linear in the embeddings, so each kernel
    # row k folds into a table: T_k[c] = E[c] . W[:, 0, k, :], and position p's output is
    # sum_k T_k[id at p + k] + bias: w Gathers and a Sum instead of a Conv and two Transposes (the whole
    # graph ran 10% faster at batch 64, measured on the GMB model).
    char_ids = g.op(
        "Slice", [INPUT_NAME, g.ints("chars_start", [ROW_CHARS]), g.ints("chars_end", [ROW_CHARS + chars]), g.ints("axis_1b", [1])]
    )
    char_ids = g.op("Reshape", [g.op("Transpose", [char_ids], perm=[0, 2, 1]), g.ints("shape_tokens", [-1, chars])])
    # Each distinct word form once: a batch repeats words (and every padding position is the same row of
    # zeros), and a row's features depend on that row alone, so computing them for the distinct rows and
    # gathering them back gives the same floats, bit for bit, in less time (docs/TRAINING.md, "Character
    # features once per word form"). onnxruntime's CPU `Unique` takes int64 rows, not int32.
    distinct, _, inverse, _ = g.ops("Unique", [g.op("Cast", [char_ids], to=TensorProto.INT64)], [True, False, True, False],
                                    axis=0, sorted=0)
    char_feat = _char_cnn(g, params, config, g.op("Cast", [distinct], to=TensorProto.INT32))  # (distinct rows, F)
    char_feat = g.op("Gather", [char_feat, inverse], axis=0)  # back to one row a token: (B*L, filters)
    token_shape = g.op("Concat", [g.op("Shape", [word]), g.ints("n_filters", [_char_width(config)])], axis=0)
    return g.op("Reshape", [char_feat, token_shape])  # (B, L, filters)


def _char_cnn(g: _Graph, params: Mapping[str, np.ndarray], config: ModelConfig, char_ids: str) -> str:
    """The character CNN on int32 rows `char_ids` (n, C): (n, F) float32, each row's from that row alone."""
    chars = config.max_token_chars
    pooled = []
    for w in config.filter_widths:
        tables = names.char_tables(params[names.CHAR_EMBED], params[names.char_kernel(w)])  # T_k: (n_chars, filters)
        positions = chars - w + 1
        terms = []
        for k in range(w):
            ids = g.op("Slice", [char_ids, g.ints(f"start_w{w}_{k}", [k]), g.ints(f"end_w{w}_{k}", [k + positions]), g.ints(f"axis_w{w}_{k}", [1])])
            terms.append(g.op("Gather", [g.const(names.char_table(w, k), tables[k]), ids]))  # (B*L, positions, filters)
        conv = g.op("Sum", terms)  # one pass over the w terms
        # max and tanh commute (tanh increases), and so do max and adding the bias.
        top = g.op("ReduceMax", [conv, g.ints(f"axis_pos_w{w}", [1])], keepdims=0)
        pooled.append(g.op("Tanh", [g.op("Add", [top, g.const(names.char_bias(w), params[names.char_bias(w)])])]))
    return pooled[0] if len(pooled) == 1 else g.op("Concat", pooled, axis=1)


def _bilstm(g: _Graph, params: Mapping[str, np.ndarray], config: ModelConfig, parts: Sequence[str], lengths: str) -> str:
    """The token features concatenated and run through the LSTM layers (one ONNX `LSTM` each,
    bidirectional or forward, stopping at each sentence's length): (L, B, state_dim), time-major."""
    x = g.op("Concat", parts, axis=2) if len(parts) > 1 else parts[0]
    x = g.op("Transpose", [x], perm=[1, 0, 2])  # (L, B, D): onnxruntime's LSTM takes time-major input
    for k in range(config.num_layers):
        w, r, b = _lstm_weights(params, k, config)
        y = g.op(
            "LSTM",
            [x, g.const(names.lstm(k, "W"), w), g.const(names.lstm(k, "R"), r), g.const(names.lstm(k, "B"), b), lengths],
            hidden_size=config.hidden,
            direction="bidirectional" if config.directions == 2 else "forward",
        )  # (L, directions, B, H)
        if config.directions == 1:
            x = g.op("Squeeze", [y, g.ints(f"axis_dir_{k}", [1])])  # (L, B, H)
            continue
        y = g.op("Transpose", [y], perm=[0, 2, 1, 3])
        x = g.op("Reshape", [y, g.ints(f"shape_concat_{k}", [0, 0, config.state_dim])])  # (L, B, fwd|bwd)
    return x


def _heads(g: _Graph, params: Mapping[str, np.ndarray], config: ModelConfig, x: str) -> list[tuple[str, int]]:
    """The output layers on the LSTM output `x`: a softmax over the tags (`probs`) and, with the POS
    head, one over the POS tags (`pos_probs`), each (B, L, width). Returns (output name, width) pairs."""
    outputs = [(OUTPUT_NAME, names.HEADS[0], config.n_tags)]
    if config.pos_head:
        outputs.append((POS_OUTPUT_NAME, names.HEADS[1], config.n_pos))
    for name, layer, width in outputs:
        logits = g.op("Add", [g.op("MatMul", [x, g.const(names.head_weight_t(layer), params[f"{layer}_weight"].T)]), g.const(names.head_bias(layer), params[names.head_bias(layer)])])
        logits = g.op("Transpose", [logits], perm=[1, 0, 2])  # (L, B, width) -> (B, L, width)
        g.nodes.append(helper.make_node("Softmax", [logits], [name], name=f"Softmax_{name}", axis=-1))
    return [(name, width) for name, _, width in outputs]


def truncate_words(
    config: ModelConfig, params: Mapping[str, np.ndarray], vocabs: Vocabularies, max_words: int
) -> tuple[ModelConfig, dict[str, np.ndarray], Vocabularies]:
    """Keep the embeddings of the `max_words` first word ids (the reserved ones included): the vocabulary
    lists words most frequent first (`Vocab.from_counts`), so these are the most frequent words, and
    every other word is then looked up as unknown, as words unseen in training are. Shrinks the package
    by the dropped rows (most of a GMB package is word embeddings). Raises ValueError for fewer than
    the reserved entries; a `max_words` of the vocabulary's size or more changes nothing."""
    if max_words < vocabs.words.first_id + 1:
        raise ValueError(f"max_words must keep at least one word besides <pad> and <unk>, got {max_words}")
    if max_words >= len(vocabs.words):
        return config, dict(params), vocabs
    cut = dataclasses.replace(config, n_words=max_words)
    kept = dict(params)
    kept["word_embed_weight"] = np.asarray(params["word_embed_weight"])[:max_words]
    if config.lm_head:
        # The training-only LM head predicts the first `lm_classes` word ids: keep its rows of the kept words.
        for d in LSTM_DIRECTIONS:
            for name in (f"lm_{d}_out_weight", f"lm_{d}_out_bias"):
                kept[name] = np.asarray(params[name])[: cut.lm_classes]
    words = Vocab(vocabs.words.itos[:max_words], reserved=True)
    return cut, kept, dataclasses.replace(vocabs, words=words)


def ensemble_graph(members: Sequence[onnx.ModelProto], metadata: Mapping[str, str] | None = None) -> onnx.ModelProto:
    """One graph running every member graph (`build_graph`'s, float32) on the shared `features` input.

    Outputs, under the members' names: `probs` = softmax of the mean of the members' log tag
    probabilities (their normalised geometric mean: what a product of experts agrees on; computed as the
    softmax of the mean of their logits, the same thing), and, when
    every member has the POS head, `pos_probs` = the mean of theirs. Each member's names get a prefix
    `m<i>/`, so members may share nothing else. Raises ValueError for fewer than two members or
    members whose inputs or outputs differ."""
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
    first = members[0].graph
    signature = [(v.name, v.type.SerializeToString()) for v in first.input]
    outputs = [o.name for o in first.output]
    for model in members[1:]:
        if [(v.name, v.type.SerializeToString()) for v in model.graph.input] != signature:
            raise ValueError("ensemble members must read the same input (the same features and characters a token)")
        if [o.name for o in model.graph.output][:1] != outputs[:1]:
            raise ValueError("ensemble members must output the same tag probabilities")
    pos = all(POS_OUTPUT_NAME in [o.name for o in m.graph.output] for m in members)
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    logits = []
    for i, model in enumerate(members):
        renamed = compose.add_prefix(model, names.member_prefix(i))
        # Every member reads the one input (onnxruntime removes the Identity).
        nodes.append(helper.make_node("Identity", [INPUT_NAME], [f"m{i}/{INPUT_NAME}"], name=f"m{i}/input"))
        for node in renamed.graph.node:
            if list(node.output) == [f"m{i}/{OUTPUT_NAME}"] and node.op_type == "Softmax":
                logits.append(node.input[0])  # the member's tag softmax is not computed: its logits are combined
            else:
                nodes.append(node)
        initializers.extend(renamed.graph.initializer)
    if len(logits) != len(members):
        raise ValueError("ensemble members must end in a softmax over the tags (build_graph's)")
    g = _Graph()
    g.nodes, g.initializers = nodes, initializers
    n = float(len(members))
    # A member's log-probabilities are its logits less one constant a position, which the final softmax
    # cancels: the mean of the logits gives the geometric mean without a Log, whose onnxruntime kernel is
    # not the same function in a vector's body and its tail (a value would depend on its place in the batch).
    mean = g.op("Mul", [g.op("Sum", logits), g.const("ensemble_weight", np.array(1 / n, np.float32))])
    g.nodes.append(helper.make_node("Softmax", [mean], [OUTPUT_NAME], name="Softmax_ensemble", axis=-1))
    out_values = [o for o in first.output if o.name == OUTPUT_NAME]
    if pos:
        mean_pos = g.op("Sum", [f"m{i}/{POS_OUTPUT_NAME}" for i in range(len(members))])
        g.nodes.append(helper.make_node("Mul", [mean_pos, g.const("ensemble_weight_pos", np.array(1 / n, np.float32))],
                                        [POS_OUTPUT_NAME], name="Mean_pos_ensemble"))
        out_values += [o for o in first.output if o.name == POS_OUTPUT_NAME]
    graph = helper.make_graph(g.nodes, "ner_fast_ensemble", list(first.input), out_values, g.initializers)
    model = helper.make_model(graph, opset_imports=list(members[0].opset_import), producer_name="ner-fast",
                              producer_version=__version__)
    model.ir_version = members[0].ir_version
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model


def _versions(opset: int) -> dict[str, str]:
    """Versions of what makes a package; read from package metadata, so mxnet is never imported."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"ner_fast": __version__, "onnx": onnx.__version__, "opset": str(opset), "numpy": np.__version__}
    for dist in ("onnxruntime", "mxnet"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return found


def _check_target(target: Path) -> None:
    """OptionError for an --out no package can go to, even with --force, because onnxruntime cannot open
    that name (a folder of another kind is `package.claim_folder`'s refusal)."""
    if not onnxruntime_can_open(target.absolute()):
        raise OptionError("--out", f"{target.absolute()} is not valid UTF-8, and onnxruntime could not open a package"
                          " there: choose another name")


def export_model(
    model_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    buckets: str = DEFAULT_BUCKETS,
    quantize: str | None = DEFAULT_QUANTIZE,
    which: str = "best",
    force: bool = False,
    ensemble: Sequence[str | os.PathLike[str]] = (),
    max_words: int | None = None,
    char_graph: bool = True,
) -> Path:
    """Export a training checkpoint folder as a model package (default `export/<model dir name>/`).

    `buckets` as in `option.graph_buckets`; the dynamic graph is always written, so sentences longer than
    every bucket are tagged whole. `quantize`: one of `package.QUANTIZATIONS` (`training.quantize`):
    "int8" (the default, `package.DEFAULT_QUANTIZE`: int8 weights, batch-invariant), "int8-dynamic"
    (int8 weights and activations scaled per batch: faster on some CPUs, not batch-invariant), "none"
    or None float32 weights. `ensemble`: more
    checkpoint folders trained on the same vocabularies, exported with `model_dir` as one graph
    (`ensemble_graph`). `max_words`: keep only the embeddings of that many most frequent words
    (`truncate_words`). `char_graph`: the character CNN as its own graph, the others taking its output
    as an input (package format 2, which the tagger caches per word form); an ensemble is always one graph
    (its members' character CNNs differ). `out` must be new, empty or an earlier package (else `force`, see
    `write_package`). Returns the package folder. Raises ValueError for members that do not fit together.

    The steps: claim the output folder, `_load_members`, `truncate_words`, the graph (`build_graph` or
    `ensemble_graph`, with `_graph_facts` as its metadata) quantized, `_package_info`, `write_package`.
    """
    model_dir = Path(model_dir)
    if not isinstance(buckets, str):  # a list of lengths failed inside the parser ("'list' has no attribute 'strip'")
        raise TypeError(f"buckets must be a str, as --buckets takes it ('5,10,20', 'auto'), got {type(buckets).__name__}")
    if isinstance(ensemble, (str, os.PathLike)):  # read as its characters: "/: named twice"
        raise TypeError("ensemble must be a list of run folders, not one path")
    buckets = row("export", "buckets").check(buckets)  # the command line's check (OptionError), before any work
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZATIONS)} or None, got {quantize!r}")
    quantize = None if quantize == "none" else quantize
    target = Path(out) if out is not None else Path("export") / model_dir.resolve().name
    _check_target(target)
    # Before any work; the names every package holds (`load_package` requires them).
    claim = claim_folder(target, "package", package_files, force=force, writes=(MANIFEST_FILE, MODEL_FILE, WEIGHTS_FILE,
                                                                                 graph_file(None)))
    dirs = [model_dir, *map(Path, ensemble)]
    members = _load_members(dirs, which)
    # Recorded where it cut the vocabulary: the F1 the run logged was measured with every word.
    words_cut = max_words if max_words is not None and max_words < len(members[0][2].words) else None
    if max_words is not None:
        members = [(*truncate_words(c, p, v, max_words), d) for c, p, v, d in members]
    config, params, vocabs, doc = members[0]
    pos_heads = [c.pos_head for c, _, _, _ in members]
    pos_tags = vocabs.pos.itos if all(pos_heads) and vocabs.pos is not None else None
    crfs = [CRF.from_params(p) for c, p, _, _ in members if c.crf]
    # An ensemble decodes with the mean of its members' CRF scores (beside the mean of their log-probabilities).
    crf = CRF(*(np.mean([getattr(c, f) for c in crfs], axis=0) for f in ("transitions", "start", "end"))).to_json() if crfs else None
    data = doc.get("data", {})
    lengths = graph_buckets(buckets, data.get("buckets") or [])
    versions = _versions(OPSET)
    versions["trained_with_mxnet"] = str(doc.get("versions", {}).get("mxnet", "unknown"))
    split = char_graph and len(members) == 1
    facts = _graph_facts(config, vocabs, quantize, crf, pos_tags, split)
    char_model = None
    if len(members) > 1:
        facts["ner_fast.ensemble"] = f"{len(members)} members: probs = softmax(mean(log(member probs)))"
        graph = ensemble_graph([build_graph(p, c) for c, p, _, _ in members], facts)
    else:
        graph = build_graph(params, config, facts, char_input=split)
        # Quantized as the single graph's character path is (`quantize_graph` rewrites each graph alike).
        char_facts = {**{k: facts[k] for k in ("ner_fast.format_version", "ner_fast.max_token_chars", "ner_fast.quantization")},
                      "ner_fast.input": f"{CHAR_INPUT_NAME}: int32 (rows, {config.max_token_chars}), a token's character ids each",
                      "ner_fast.output": f"{CHAR_OUTPUT_NAME}: float32 (rows, {_char_width(config)}), the character CNN's features"}
        char_model = quantize_graph(build_char_graph(params, config, char_facts), quantize) if split else None
    graph = quantize_graph(graph, quantize)
    info = _package_info(members, dirs, which, quantize, crf, pos_tags, matmul_weights(graph), words_cut)
    return write_package(claim, graph, lengths, info, versions, char_model=char_model)


def _portable_recipe(train: dict[str, Any]) -> dict[str, Any] | None:
    """A run's training options as a package records them: without its folder and corpus (`source` has
    them), the other files it read as `config.portable_train` records them."""
    recipe = {k: v for k, v in portable_train(train).items() if k not in ("out", "data")}
    return recipe or None


#: What `checkpoint.load_model` gives for a member: (its ModelConfig, parameters, vocabularies, config.json).
_Member = tuple[ModelConfig, dict[str, np.ndarray], Vocabularies, dict[str, Any]]


def _load_members(dirs: Sequence[Path], which: str) -> list[_Member]:
    """The checkpoints (`which`: "best" or "last") of `dirs`, the first the model and the others its
    ensemble members; ValueError for a folder named twice or a member that does not fit with the first
    (its vocabularies, input features, CRF layer or decoding)."""
    from ner_fast.checkpoint import load_model

    model_dir = dirs[0]
    seen: set[Path] = set()
    for d in dirs:
        if d.resolve() in seen:  # the same network twice is a bigger, slower copy of it
            raise ValueError(f"{d}: named twice; the members of an ensemble are different runs")
        seen.add(d.resolve())
    members = [load_model(d, which) for d in dirs]
    config, params, vocabs, doc = members[0]
    for d, (other_config, _, other_vocabs, other_doc) in zip(dirs[1:], members[1:]):
        if other_vocabs != vocabs:
            raise ValueError(f"{d}: an ensemble member must have the same vocabularies as {model_dir} (train it on the same data)")
        for field in ("max_token_chars", "use_pos", "n_features"):
            if getattr(other_config, field) != getattr(config, field):
                raise ValueError(f"{d}: an ensemble member must have the same {field} as {model_dir}")
        if other_config.crf != config.crf:
            raise ValueError(f"{d}: ensemble members must all have a CRF output layer or none")
        # The package decodes with one method; a member trained (and selected) with another would be misread.
        if trained_decode(other_doc) != trained_decode(doc):
            raise ValueError(f"ensemble members must decode alike: {model_dir} was trained with decode"
                             f" {trained_decode(doc)!r}, {d} with {trained_decode(other_doc)!r} (train them with the same --decode)")
    return members


def _graph_facts(config: ModelConfig, vocabs: Vocabularies, quantize: str | None, crf: dict[str, Any] | None,
                 pos_tags: list[str] | None, char_graph: bool = False) -> dict[str, str]:
    """The graph's metadata_props: what a reader of the ONNX file alone needs to use it (tags, input and
    output layout, quantization, CRF scores)."""
    return {
        "ner_fast.format_version": str(format_version(char_graph)),
        "ner_fast.tags": json.dumps(vocabs.tags.itos),
        "ner_fast.max_token_chars": str(config.max_token_chars),
        "ner_fast.lowercase": str(vocabs.lowercase).lower(),
        "ner_fast.use_pos": str(config.pos_enabled).lower(),
        "ner_fast.use_casing": str(config.use_casing).lower(),
        "ner_fast.input": f"{INPUT_NAME}: int32 (batch, {config.n_features}, seq_len), rows word, casing, POS, chars"
        + (f"; {CHAR_OUTPUT_NAME}: float32 (batch, seq_len, {_char_width(config)}), what {CHAR_GRAPH_FILE} computes"
           " from each token's character row" if char_graph else ""),
        "ner_fast.output": f"{OUTPUT_NAME}: float32 (batch, seq_len, {config.n_tags}), softmax over tags"
        + (f"; {POS_OUTPUT_NAME}: float32 (batch, seq_len, {config.n_pos}), softmax over POS tags" if pos_tags else ""),
        "ner_fast.quantization": quantize or "none",
        # A CRF model's tags are the Viterbi path of log(output) plus these scores (ner_fast.decode).
        "ner_fast.crf": json.dumps(crf) if crf else "none",
    }


def _package_info(members: Sequence[_Member], dirs: Sequence[Path], which: str, quantize: str | None,
                  crf: dict[str, Any] | None, pos_tags: list[str] | None, int8_weights: str | None,
                  words_cut: int | None = None) -> dict[str, Any]:
    """The package's info (`write_package`, read by `package.py`): vocabularies, tags and their
    descriptions, input and output layout, decoding, architecture and where each member came from.
    The first member's configuration, vocabularies and data settings speak for the package; `words_cut`
    is `max_words` where it cut the vocabulary."""
    config, _, vocabs, doc = members[0]
    data = doc.get("data", {})
    sources = [
        # "init": what the run started from (`train --init`: SOURCE, its kind and checksum), None from scratch;
        # "data": the corpus it trained on (`ner-fast info` shows it), recorded as every path here.
        # "validation": the dev entity F1 the run logged in training at this checkpoint's epoch (None where
        # it logged none, e.g. stopped before its first epoch ended).
        {"model_dir": portable_path(d), "checkpoint": which, "trained_with": m[3].get("versions", {}), "init": m[3].get("init"),
         "data": portable_path(m[3]["data"]["source"]) if m[3].get("data", {}).get("source") else None,
         "validation": logged_record(d, which),
         # "recipe": the run's training options (config.json's train section; its files as `portable_path`).
         "recipe": _portable_recipe(m[3].get("train") or {}),
         "max_words": words_cut}
        for d, m in zip(dirs, members)
    ]
    return {
        "vocab": vocabs.to_json(),
        "tags": vocabs.tags.itos,
        # What each entity label means (`ner_fast.labels`: the GMB descriptions of the labels that are GMB's),
        # shown by `ner-fast info`, `ner-fast serve` and the pretty output of `ner-fast tag`.
        "label_descriptions": default_descriptions(TagScheme(vocabs.tags.itos).types),
        "max_token_chars": config.max_token_chars,
        "n_features": config.n_features,
        "lowercase": vocabs.lowercase,
        "has_pos": vocabs.pos is not None,
        "use_pos": config.pos_enabled,
        "use_casing": config.use_casing,
        "training_buckets": list(data.get("buckets") or []),
        "quantization": quantize,
        # What the graph's MatMulInteger weights are (`quantize.matmul_weights`; None: float32).
        "int8_matmul_weights": int8_weights,
        # How the tagger turns probabilities into tags by default: what training selected the model with.
        "decode": trained_decode(doc),
        # The learned tag-transition scores of a CRF output layer (None without one; an ensemble's mean).
        "crf": crf,
        # One model: its ModelConfig; an ensemble: each member's, and how their outputs combine.
        "architecture": config.to_dict() if len(members) == 1 else {
            "members": [c.to_dict() for c, _, _, _ in members],
            "combine": "probs: softmax of the mean log-probability; pos_probs: mean; CRF scores: mean",
        },
        "input": {"name": INPUT_NAME, "dtype": "int32", "shape": ["batch", config.n_features, "seq_len"]},
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": ["batch", "seq_len", config.n_tags]},
        # The auxiliary POS head's output and its POS tag list, id -> tag (ids 0, 1: <pad>, <unk>; None without a head).
        "pos_output": (
            {"name": POS_OUTPUT_NAME, "dtype": "float32", "shape": ["batch", "seq_len", config.n_pos]} if pos_tags else None
        ),
        "pos_tags": pos_tags,
        "source": sources[0] if len(members) == 1 else {"members": sources},
        # The pretrained word vectors training started from (`--vectors`, else through `--init SOURCE`, whose
        # rows it carries): name, digest, licence and attribution; None without. Ensemble members share
        # the vocabulary, so the first one's.
        "vectors": package_vectors(data, doc.get("init")),
    }

