"""`ner-fast train --init SOURCE`: start a network from an earlier one.

SOURCE is a training run folder (its `best.params.npz`), a model package folder (its `dynamic.onnx`,
read back through `param_map.onnx_to_params`, int8 weights dequantized), or the name of a bundled
package (`BUNDLED_NAMES`: `default`, its alias `bundled`, `ensemble`; `package.BUNDLED`). A package that is an ensemble gives its member 0 (`ENSEMBLE_MEMBER`); its
CRF scores are the package's (the members' mean: a package stores no other).

What starts from SOURCE (`initial_params`), every other parameter keeping its fresh draw:
- word embedding rows by word (`rows.rows_by_word`, the rule `--vectors` shares): a word of the new
  vocabulary that SOURCE knows takes SOURCE's row, looked up the way SOURCE's vocabulary was built
  (lower-cased when it was); `<pad>` and `<unk>` take SOURCE's (so a word unknown to both reads as it
  did); a word SOURCE never saw keeps a fresh row and learns it;
- character embedding rows by character, the same way; the convolutions, casing embedding and every
  LSTM layer whole;
- output layer rows (`fc`), CRF scores (`crf_*`) and POS head rows by tag (POS tag) name: tags in both
  keep theirs, a new tag gets a fresh row (a new tag set: a fresh output layer); the LM head is fresh.
  Where one tag set is IOBES and the other is not, the CRF's scores start fresh: they encode the scheme's
  grammar (IOBES forbids `B-X` then `O`, which BIO's one-token entities are); from an IOB2 SOURCE, DATA's
  S-X and E-X rows start from its B-X and I-X (`schemes.iob2_of`).
Architecture sizes that cannot match (`MUST_MATCH`) are refused with one line naming the option.

This module reads packages with onnx (training side); the runtime never imports it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ner_fast.config import BY_NAME, ModelConfig, OptionError, vectors_word_dim
from ner_fast.checkpoint import params_file
from ner_fast.decode import CRF_PARAMS
from ner_fast.engine import reads_pos_message
# `--init NAME` / `--teacher NAME`: the bundled packages, by the names `Tagger.load(NAME)` takes (one table).
from ner_fast.package import BUNDLED_NAMES, MANIFEST_FILE
from ner_fast.schemes import TagScheme, iob2_of
from ner_fast.training import param_map
from ner_fast.training.rows import rows_by_word
from ner_fast.vocab import Vocab, Vocabularies, word_keys

# The member of an ensemble package that --init starts from.
ENSEMBLE_MEMBER = 0
# Architecture options whose sizes parameters depend on: SOURCE's, or refused when given otherwise.
MUST_MATCH = ("char_dim", "filter_widths", "filters", "word_dim", "use_casing", "casing_dim", "use_pos", "hidden",
              "num_layers", "directions")
# Parameters taken whole from SOURCE (not row by row): frozen for `--freeze-epochs`, then on `--init-lr-scale`.
ENCODER_PREFIXES = ("char_embed", "char_conv", "casing_embed", "lstm")


@dataclass
class Source:
    """A network to start from: its kind ("run" or "package"), folder, architecture, canonical parameters
    (the CRF scores among them when it has some; no LM head), vocabularies and checksum."""

    spec: str
    kind: str
    path: Path
    config: ModelConfig
    params: dict[str, np.ndarray]
    vocabs: Vocabularies
    sha256: str
    member: int | None = None
    #: The pretrained vectors SOURCE's word rows started from (its model.json `vectors`, a run's
    #: `data.vectors_source`): a network started from it carries those rows, so its package names them.
    vectors: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """What config.json and the exported package record (`init`): SOURCE and its folder (`recorded_source`), its kind,
        checksum (a package's manifest.json sha256, a run's best.params.npz sha256), ensemble member and
        the vectors its rows started from (None without)."""
        return {**recorded_source(self.spec, self.path), "kind": self.kind, "sha256": self.sha256,
                "checksum_of": CHECKSUM_OF[self.kind], "member": self.member, "vectors": self.vectors}


#: The file of a SOURCE (`--init`, `--teacher`) whose sha256 identifies it, by kind: a package's manifest.json
#: (which holds every other file's sha256), a run's best parameters.
CHECKSUM_OF = {"package": MANIFEST_FILE, "run": params_file("best")}


def source_checksum(kind: str, path: Path) -> str:
    """The sha256 that config.json and a package record of a SOURCE of `kind` in folder `path` (`CHECKSUM_OF`):
    a package's is `package.package_checksum`, what a cluster worker checks too."""
    from ner_fast.package import package_checksum, sha256_file

    return package_checksum(path) if kind == "package" else sha256_file(path / CHECKSUM_OF[kind])


def recorded_source(spec: str, path: Path) -> dict[str, str]:
    """How a record (config.json, then the package made from the run) names a SOURCE (`--init`, `--teacher`)
    that `resolve` read from `path`: `source`, the bundled name as given or the folder as `package.portable_path`
    records it (no absolute path of this machine), and `path`, its folder so recorded; a folder always written
    as a path (`package.written_as_path`: `./default`), so that no record reads as the bundled package of
    that name (`package.names_bundled`)."""
    from ner_fast.package import names_bundled, portable_path, written_as_path

    folder = written_as_path(portable_path(path))
    return {"source": spec if names_bundled(spec) else folder, "path": folder}


def resolve(spec: str) -> tuple[str, Path]:
    """("run" | "package", folder) of SOURCE; OptionError (`--init`) when it is neither."""
    from ner_fast.package import KIND_NAMES, PackageError, bundled_package_path, folder_kind, names_bundled

    # The bare name wins over a folder of that name, as everywhere (`package.names_bundled`, the one rule);
    # a path written as a path (`./default`) is the folder.
    if names_bundled(spec):
        try:
            return "package", bundled_package_path(spec)
        except PackageError as err:
            raise OptionError("--init", str(err)) from None
    path = Path(spec)
    kind = folder_kind(path)
    if kind in ("run", "package"):
        return kind, path
    if kind in ("prepared", "tagged"):
        raise OptionError("--init", f"{spec}: {KIND_NAMES[kind]}; give a training run, a model package or a bundled"
                          " name")
    names = " / ".join(BUNDLED_NAMES)
    if not path.exists():
        raise OptionError("--init", f"{spec}: no such file or folder; give a training run folder, a model package folder"
                          f" or {names}")
    raise OptionError("--init", f"{spec}: neither a training run folder (vocab.json and a config.json with a model"
                      f" section) nor a model package folder (manifest.json), nor {names}")


def source_architecture(spec: str) -> ModelConfig:
    """SOURCE's architecture (member `ENSEMBLE_MEMBER` of an ensemble), read without its weights."""
    from ner_fast.config import read_config
    from ner_fast.package import load_package

    kind, path = resolve(spec)
    if kind == "run":
        return ModelConfig.from_dict(read_config(path)["model"])
    arch = load_package(path, verify=False).model.get("architecture")
    if isinstance(arch, dict) and "members" in arch:
        arch = arch["members"][ENSEMBLE_MEMBER]
    if not isinstance(arch, dict):
        raise ValueError(f"{path}: model.json has no architecture")
    return ModelConfig.from_dict(arch)


def inherit_architecture(spec: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Command-line options (by name, as `config.given_options` keeps them) with SOURCE's value for every
    `MUST_MATCH` option left out; OptionError naming the first one given with another value."""
    arch = source_architecture(spec)
    out = dict(given)
    for name in MUST_MATCH:
        theirs = getattr(arch, name)
        if name == "word_dim" and name not in given and given.get("vectors") is not None:
            # SOURCE's word dimension, the vectors inside it (`training.rows`); checked here, where the
            # refusal can name --vectors: left to config, it would blame a --word-dim nobody gave.
            vectors_word_dim(given["vectors"], theirs, init=spec)
        if name in given:
            if BY_NAME[name].check(given[name]) != theirs:
                raise OptionError(BY_NAME[name].cli_flag, _mismatch(spec, name, theirs))
        else:
            out[name] = theirs
    if arch.use_pos and "pos_aux_weight" not in given:
        # A network that reads POS tags has no POS head (`config.check_combinations`): the head left out
        # follows SOURCE, not the recipe, else the refusal would name options the user never gave.
        out["pos_aux_weight"] = 0.0
    return out


def _mismatch(spec: str, name: str, theirs: Any) -> str:
    show = ",".join(map(str, theirs)) if isinstance(theirs, list) else str(theirs).lower() if isinstance(theirs, bool) else theirs
    return (f"--init {spec} has {name} {show}; a network started from it must have the same (leave"
            f" {BY_NAME[name].cli_flag} out to take it)")


def check_architecture(source: Source, config: ModelConfig) -> None:
    """OptionError naming the option whose size differs between SOURCE and the new network. The command line
    has taken SOURCE's sizes left out already (`inherit_architecture`); a config built in Python has not."""
    for name in MUST_MATCH:
        if getattr(source.config, name) != getattr(config, name):
            raise OptionError(BY_NAME[name].cli_flag, _mismatch(source.spec, name, getattr(source.config, name))
                              + "; from Python, TrainConfig.from_options(..., **inherit_architecture(SOURCE, options))"
                              " takes them (ner_fast.training.init_source)")
    # use_pos matches SOURCE's (MUST_MATCH), so --no-pos is no way out: say what corpus SOURCE needs.
    other = "; or start from a model trained without POS input (default, ensemble)"
    if source.config.pos_enabled and not config.pos_enabled:
        raise OptionError("--pos", f"--init {source.spec}: " + reads_pos_message("this corpus does not have",
                                                                                 f"give one with a POS column{other}"))
    if config.pos_enabled and source.config.n_pos != config.n_pos:
        raise OptionError("--pos", f"--init {source.spec} reads {source.config.n_pos} POS ids, this corpus gives"
                          f" {config.n_pos}: give a corpus with SOURCE's POS tag set{other}")
    if config.n_casing != source.config.n_casing:
        raise ValueError(f"--init {source.spec}: {source.config.n_casing} casing classes, this ner-fast has {config.n_casing}")


def load_source(spec: str) -> Source:
    """Read SOURCE (`resolve`) into canonical parameters; ValueError naming the file when it cannot be used."""
    from ner_fast.checkpoint import load_model

    kind, path = resolve(spec)
    if kind == "run":
        config, params, vocabs, doc = load_model(path, "best")
        from ner_fast.checkpoint import inference_params

        config, params = inference_params(config, params)
        # Its own --vectors, and those of the SOURCE it started from in turn (the rule of a package's record).
        from ner_fast.training.run_vectors import package_vectors

        vectors = package_vectors(doc.get("data") or {}, doc.get("init"))
        return Source(spec, kind, path, config, params, vocabs, source_checksum(kind, path), vectors=vectors)
    return read_package(spec, path)


# --------------------------------------------------------------------------- packages


def read_package(spec: str, path: Path) -> Source:
    """A package's network (member `ENSEMBLE_MEMBER` of an ensemble) as a `Source`: its dynamic graph's
    initializers (and its character graph's, format 2) resolved to float values (`initializer_values`), mapped back by `param_map.onnx_to_params`;
    its CRF scores from model.json."""
    import onnx

    from ner_fast.package import graph_file, load_package

    pkg = load_package(path)  # checksums verified
    arch = pkg.model.get("architecture")
    member = None
    if isinstance(arch, dict) and "members" in arch:
        member, arch = ENSEMBLE_MEMBER, arch["members"][ENSEMBLE_MEMBER]
    config = ModelConfig.from_dict(arch)
    model = onnx.load(str(pkg.graph_path(None)), load_external_data=True)
    if pkg.char_graph_path is not None:  # format 2: the character tables live in the character graph
        chars = onnx.load(str(pkg.char_graph_path), load_external_data=True)
        model.graph.node.extend(chars.graph.node)
        model.graph.initializer.extend(chars.graph.initializer)
    prefix = param_map.member_prefix(member) if member is not None else ""
    try:
        values, steps = initializer_values(model.graph, [prefix + n for n in param_map.initializer_names(config)])
        arrays = {n[len(prefix):]: v for n, v in values.items()}
        tables = [steps[prefix + param_map.char_table(w, k)] for w in config.filter_widths for k in range(w)]
        params = param_map.onnx_to_params(arrays, config, check_fold=max(tables))
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path / graph_file(None)}: {err}") from None
    crf = pkg.model.get("crf")
    if config.crf and crf:
        params.update(zip(CRF_PARAMS, (np.asarray(crf[f], np.float32) for f in ("transitions", "start", "end"))))
    vocabs = Vocabularies.from_json(pkg.model["vocab"])
    return Source(spec, "package", path, config, params, vocabs, source_checksum("package", path), member,
                  pkg.model.get("vectors"))


def initializer_values(graph: Any, names: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The float value of each named weight of `graph`, and its quantization step (0.0 for float ones).

    A weight is found as a float initializer of its name, as the output of a node of that name computed
    from initializers (a DequantizeLinear, evaluated by onnx's reference runtime: any axis or block size),
    or as an integer initializer `<name>_quantized` dequantized with `<name>_scale` and `<name>_zero_point`
    (or the scale and zero point its DequantizeLinear consumer names): per tensor, or per slice along the
    axis the consumer quantized (DequantizeLinear's `axis`, a DynamicQuantizeLSTM's direction axis 0, a
    MatMulInteger's output columns, a table's rows: a (rows, 1) scale; a DynamicQuantizeLSTM's weights are stored transposed and are
    transposed back). KeyError for a weight found in none of these forms."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    producers: dict[str, Any] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))
        for name in node.output:
            producers[name] = node

    def array(name: str) -> np.ndarray:
        return numpy_helper.to_array(inits[name])

    values: dict[str, np.ndarray] = {}
    steps: dict[str, float] = {}
    for name in names:
        if name in inits and array(name).dtype.kind == "f":
            values[name], steps[name] = array(name).astype(np.float32), 0.0
            continue
        if name in producers and all(i in inits for i in producers[name].input if i):
            values[name], steps[name] = _evaluate(producers[name], {i: array(i) for i in producers[name].input if i})
            continue
        folded = _lstm_weight_input(graph, name) if name not in inits else None
        if folded is not None and folded not in inits:
            # The default int8 scheme (`quantize.make_invariant`): a float LSTM whose W/R are computed from
            # stored int8 constants (Cast + Mul), found by the LSTM's place, its bias `<stem>_B`.
            values[name], steps[name] = _fold(folded, inits, producers)
            continue
        if folded is not None:
            values[name], steps[name] = array(folded).astype(np.float32), 0.0
            continue
        q_name = name + "_quantized"
        if q_name not in inits:
            raise KeyError(f"no weight {name!r} (float, dequantized or {q_name!r})")
        q = array(q_name)
        scale_name, zp_name, axis, transposed = name + "_scale", name + "_zero_point", None, False
        for node, slot in consumers.get(q_name, []):
            if node.op_type == "DequantizeLinear" and slot == 0:
                values[name], steps[name] = _evaluate(node, {i: array(i) for i in node.input if i})
                break
            if node.op_type == "DynamicQuantizeLSTM":
                # One scale per direction; W and R stored (directions, inputs, 4H), the LSTM op's transpose.
                axis, transposed = 0, True
            elif node.op_type == "MatMulInteger":
                axis = q.ndim - 1  # one scale per output column
        else:
            scale = array(scale_name).astype(np.float64)
            zero = array(zp_name).astype(np.float64) if zp_name in inits else np.zeros_like(scale)
            value = _dequantize(q, scale, zero, axis).astype(np.float32)
            values[name] = np.ascontiguousarray(value.transpose(0, 2, 1)) if transposed else value
            steps[name] = float(np.max(scale))
    return values, steps


def _dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int | None) -> np.ndarray:
    x = q.astype(np.float64)
    if q.ndim == 2 and scale.shape == (q.shape[0], 1):  # a lookup table, one scale a row (`quantize.row_tables`)
        return (x - zero.reshape(-1, 1)) * scale
    if scale.ndim == 0 or scale.size == 1:
        return (x - zero.reshape(())) * scale.reshape(())
    if scale.ndim == 1 and axis is not None and q.shape[axis] == scale.size:
        shape = [1] * q.ndim
        shape[axis] = scale.size
        return (x - zero.reshape(shape)) * scale.reshape(shape)
    if scale.ndim == 2 and axis == 0 and q.ndim == 3 and scale.shape == (q.shape[0], q.shape[2]):
        return (x - zero[:, None, :]) * scale[:, None, :]
    raise ValueError(f"cannot tell how a scale of shape {scale.shape} applies to weights of shape {q.shape}")


def _lstm_weight_input(graph: Any, name: str) -> str | None:
    """The name an LSTM node reads the canonical weight `name` (`...lstm<k>_W` or `_R`) from, that LSTM found
    by its bias input `...lstm<k>_B` (the exporter's name, which no quantization renames); None otherwise."""
    stem, _, role = name.rpartition("_")
    if role not in ("W", "R"):
        return None
    slot = 1 if role == "W" else 2
    for node in graph.node:
        if node.op_type == "LSTM" and len(node.input) > 3 and node.input[3] == f"{stem}_B":
            return node.input[slot]
    return None


def _fold(name: str, inits: Mapping[str, Any], producers: Mapping[str, Any]) -> tuple[np.ndarray, float]:
    """The value of `name`, computed by the nodes between it and the initializers they read (onnx's
    reference runtime), and the largest small float constant among those (the quantization scale; 0.0 if
    none). KeyError when `name` depends on something that is not a constant."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    nodes: list[Any] = []
    used: set[str] = set()
    todo, seen = [name], set()
    while todo:
        value = todo.pop()
        if value in inits or value in seen:
            used.add(value) if value in inits else None
            continue
        if value not in producers:
            raise KeyError(f"weight {name!r} depends on {value!r}, which is not a constant")
        seen.add(value)
        node = producers[value]
        nodes.append(node)
        todo.extend(i for i in node.input if i)
    order = [n for n in reversed(nodes)]  # producers before consumers: each was found after its consumer
    graph = helper.make_graph(order, "weight", [], [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)],
                              [inits[u] for u in used])
    out = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])).run(None, {})[0]
    from onnx import numpy_helper

    small = [numpy_helper.to_array(inits[u]) for u in used]
    scales = [float(np.max(np.abs(a))) for a in small if a.dtype.kind == "f" and a.size <= 64]
    return np.asarray(out, np.float32), max(scales, default=0.0)


def _evaluate(node: Any, inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, float]:
    """Run one node on constant inputs with onnx's reference runtime -> (float32 output, largest scale)."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    out = node.output[0]
    graph = helper.make_graph([node], "weight", [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inputs.items()])
    value = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])).run(None, {})[0]
    scales = [v for k, v in inputs.items() if k == node.input[1]] if len(node.input) > 1 else []
    step = float(np.max(np.abs(scales[0]))) if scales and np.asarray(scales[0]).dtype.kind == "f" else 0.0
    return np.asarray(value, np.float32), step


# --------------------------------------------------------------------------- the new network


def _known(vocab: Vocab) -> dict[str, int]:
    """String -> id of a vocabulary, first id winning (a real entry spelled `<pad>` never takes id 0's place)."""
    known: dict[str, int] = {}
    for i, s in enumerate(vocab.itos):
        known.setdefault(s, i)
    return known


def _word_keys(words: Sequence[str], lowercase: bool, reserved: int) -> list[str]:
    """How each word of the new vocabulary is looked up in SOURCE's: lower-cased where SOURCE's is."""
    return [*words[:reserved], *word_keys(words[reserved:], lowercase)]


def initial_params(source: Source, config: ModelConfig, vocabs: Vocabularies, fresh: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The new network's parameters: `fresh` (its own initialisation) with every parameter whose role
    exists in SOURCE taken from it (module docstring). Returns them and a report (rows carried over per
    table, names taken whole, names left fresh). OptionError when sizes cannot match (`check_architecture`)."""
    check_architecture(source, config)
    src = source.params
    out = {k: np.array(v, dtype=np.float32, copy=True) for k, v in fresh.items()}
    report: dict[str, Any] = {"whole": [], "rows": {}, "fresh": []}

    def by_name(target: str, keys: Sequence[str], known: Mapping[str, int], source_name: str) -> None:
        # Rows of a matrix, or entries of a vector, carried over by the name of their id.
        shape = out[target].shape
        matrix, n = rows_by_word(keys, known, src[source_name].reshape(len(src[source_name]), -1), out[target].reshape(shape[0], -1))
        out[target] = matrix.reshape(shape)
        report["rows"][target] = n

    words = _word_keys(vocabs.words.itos, source.vocabs.lowercase, vocabs.words.first_id)
    by_name(param_map.WORD_EMBED, words, _known(source.vocabs.words), param_map.WORD_EMBED)
    by_name(param_map.CHAR_EMBED, vocabs.chars.itos, _known(source.vocabs.chars), param_map.CHAR_EMBED)
    tags = _known(source.vocabs.tags)
    # The CRF's scores are the tag scheme's grammar: carried over only between tag sets of one scheme.
    source_iobes, data_iobes = TagScheme(list(source.vocabs.tags.itos)).iobes, TagScheme(list(vocabs.tags.itos)).iobes
    same_scheme = source_iobes == data_iobes
    if data_iobes and not source_iobes:
        # An IOB2 SOURCE's B-X row scores every entity's first token, I-X every other: S-X and E-X start there.
        tags = {**{t: tags[iob2_of(t)] for t in vocabs.tags.itos if iob2_of(t) in tags}, **tags}
    if not same_scheme and "crf_transitions" in src:
        report["note"] = ("SOURCE's tags and DATA's are not of one scheme (IOBES and not), so the CRF's scores,"
                          " the scheme's grammar, start fresh")
    for name in ("fc_weight", "fc_bias", "crf_start", "crf_end"):
        if name in out and name in src and (same_scheme or not name.startswith("crf_")):
            by_name(name, vocabs.tags.itos, tags, name)
    if "crf_transitions" in out and "crf_transitions" in src and same_scheme:
        rows = [(i, tags[t]) for i, t in enumerate(vocabs.tags.itos) if t in tags]
        for i, si in rows:
            for j, sj in rows:
                out["crf_transitions"][i, j] = src["crf_transitions"][si, sj]
        report["rows"]["crf_transitions"] = len(rows)
    if config.pos_head and "pos_fc_weight" in src and source.vocabs.pos is not None and vocabs.pos is not None:
        for name in ("pos_fc_weight", "pos_fc_bias"):
            by_name(name, vocabs.pos.itos, _known(source.vocabs.pos), name)
    for name in out:
        if name.startswith(ENCODER_PREFIXES) and name != param_map.CHAR_EMBED:
            if src[name].shape != out[name].shape:  # sizes were checked: only the LSTM's POS input width is left
                raise OptionError("--pos", f"--init {source.spec}: {name} has shape {src[name].shape}, this network {out[name].shape}")
            out[name] = np.array(src[name], dtype=np.float32, copy=True)
            report["whole"].append(name)
    report["fresh"] = sorted(n for n in out if n not in report["rows"] and n not in report["whole"])
    return out, report


def encoder_names(params: Sequence[str]) -> list[str]:
    """The canonical names taken whole from SOURCE (what `--freeze-epochs` and `--init-lr-scale` act on)."""
    return [n for n in params if n.startswith(ENCODER_PREFIXES) and n != param_map.CHAR_EMBED]

