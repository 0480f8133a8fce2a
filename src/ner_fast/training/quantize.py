"""int8 quantization of an exported graph: the one home of the schemes `ner-fast export --quantize` names.

`int8` (the default, `package.DEFAULT_QUANTIZE`) is batch-invariant: a sentence's output does not depend
on what it is batched with, nor on the number of threads. `int8-dynamic` is faster on some CPUs and is
not (opt-in). Both store the matrices' int8 weights as onnxruntime's `quantize_dynamic` makes them (QInt8,
symmetric, one scale per tensor, per direction for an LSTM); `int8` quantizes the lookup tables one scale
a row (`row_tables`, below) and rewrites the graph (`make_invariant`):

- `DynamicQuantizeLSTM` quantizes its input with one scale computed over the whole batch, so one
  sentence's neighbours change its rounding. It becomes the float `LSTM` op on the stored int8 weights,
  dequantized by `Cast` + `Mul` of constants, which onnxruntime folds once when the session is built
  (onnxruntime does not fold `DequantizeLinear` by default and would dequantize on every run). The ONNX
  LSTM cannot take a projected input without a 4H x 4H identity input weight (more multiply-adds than
  the projection it saves), so the recurrence stays float; float32 LSTM outputs are identical batched
  and alone, with 1 and 2 threads (measured, `benchmarks/invariance.py`, `tests/test_invariance.py`).
- `DynamicQuantizeLinear` before the output layers' `MatMulInteger` has the same per-batch scale. It
  becomes one scale per row (max |x| over the last axis / 127; uint8 with the fixed zero point 128,
  which `MatMulInteger` takes as a scalar): integer accumulation is exact, so a row's result depends on
  that row only. The product is scaled by the row scale, then by the weight scale (`_scale_rows_first`).
- `MatMulInteger`'s int8 weights become uint8 with the zero point 128 (`_unsigned_weights`: the same
  numbers, each + 128). With uint8 activations and int8 weights onnxruntime's AVX2 and AVX-512 kernels
  without VNNI use VPMADDUBSW, which adds two u8 x s8 products in a saturating int16: large activations
  against large weights clip, so an AVX2-only CPU gave other probabilities than a VNNI one (0.09 apart on
  a small test network, `benchmarks/cpuid_view.py`). With both operands uint8 every kernel widens them to
  16 bits first and sums exactly in int32: the same integers on every CPU, and the same as VNNI's before.
- The lookup tables (word, casing, POS embeddings and the character CNN's tables: a `Gather` from a
  float matrix) are quantized by `row_tables` before `quantize_dynamic` runs, with one scale per row
  instead of `quantize_dynamic`'s one for the table: with pretrained vectors (100,000 GloVe rows whose
  norms differ from the trained rows') one scale per table rounds the small rows coarsely. Small
  tables are dequantized once when the session is built; the word table's int8 rows and a float32
  column of scales are gathered with the same ids and multiplied (`Cast` + `Mul`): either way each
  looked-up value is one float32 product of two stored numbers, the same whatever the batch.

`int8-dynamic` keeps `quantize_dynamic`'s per-table scales. Apart from the tables, `make_invariant` does
not re-quantize: it reads the int8 values and scales `quantize_dynamic` stored, so rewriting an
`int8-dynamic` package (`ner_fast.training.bundle --requantize`) keeps its weights exactly (its tables
stay per table: the float rows are gone).
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ner_fast.package import BATCH_DEPENDENT_OPS, PER_BATCH_OPS

_MS_DOMAIN = "com.microsoft"
#: The fixed zero point of the per-row uint8 activations: symmetric rows in [-127, 127] + 128.
ROW_ZERO_POINT = 128
# A row of zeros gets this scale instead of 0, so x / scale is 0, not NaN.
_TINY_SCALE = np.float32(1e-30)
#: The largest lookup table (float32 bytes) `row_tables` dequantizes once when the session is built; a
#: larger one is looked up in int8 and scaled row by row.
FOLD_BYTES = 1 << 20


def quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per row: (q int8 (N, D), scale float32 (N, 1)), scale = max |row| / 127
    and q = round(row / scale) in [-127, 127], so q * scale is within scale / 2 of the row (a row of zeros:
    scale 0, q 0). A row's q and scale depend on that row only."""
    table = np.asarray(table, dtype=np.float32)
    if table.ndim != 2:
        raise ValueError(f"expected a (rows, columns) table, got shape {table.shape}")
    scale = (np.abs(table).max(axis=1, keepdims=True) / np.float32(127)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1))
    q = np.clip(np.round(table / safe), -127, 127).astype(np.int8)
    return q, scale


def row_tables(model: onnx.ModelProto, fold_bytes: int | None = None) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of a float graph in which each float (rows, columns) initializer read by `Gather` on axis 0
    (an embedding or character table) is stored as `quantize_rows` of it: q as `<table>_quantized`, the
    scales as `<table>_scale` (the names `quantize_dynamic` gives, which `init_source` reads back).

    A table whose float32 copy is at most `fold_bytes` (default `FOLD_BYTES`: the casing and character
    tables) is dequantized whole, `Mul(Cast(q), scale)` of constants under the table's name, which
    onnxruntime folds once when the session is built: its lookups are float lookups, as cheap as before.
    A larger one (the word embedding: 100,000 x 50 floats are 20 MB) stays int8 in memory: each `Gather`
    becomes `Mul(Cast(Gather(q, ids)), Gather(scale, ids))` under the node's output name. (On 2 cores,
    scaling the character tables' 60 lookups a token that way too made tagging 8 to 11 % slower; one
    word lookup a token costs nothing measurable: `benchmarks/row_scales.py`, docs/TRAINING.md.) Either way a looked-up
    value is the float32 product of its two stored numbers. Returns the graph and the names of the
    scale `Gather` nodes, which `quantize_dynamic` must leave float."""
    fold_bytes = FOLD_BYTES if fold_bytes is None else fold_bytes
    out = onnx.ModelProto()
    out.CopyFrom(model)
    rw = _Rewriter(out)
    folded: set[str] = set()
    stored: set[str] = set()
    scale_gathers = []
    head, nodes = [], []  # the folded tables' Cast + Mul go first: every Gather comes after them
    for node in out.graph.node:
        table = node.input[0] if node.op_type == "Gather" and node.input else None
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
        if table in folded or table not in rw.init or axis != 0 or rw.init[table].data_type != TensorProto.FLOAT \
                or len(rw.init[table].dims) != 2:
            nodes.append(node)
            continue
        q_name, scale_name = table + "_quantized", table + "_scale"
        if table not in stored:
            if q_name in rw.init or scale_name in rw.init:
                raise ValueError(f"{table}: the graph already holds {q_name} or {scale_name}")
            q, scale = quantize_rows(rw.array(table))
            for name, value in ((q_name, q), (scale_name, scale)):
                rw.init[name] = numpy_helper.from_array(value, name)
                out.graph.initializer.append(rw.init[name])
            stored.add(table)
            if q.size * 4 <= fold_bytes:
                out.graph.initializer.remove(rw.init.pop(table))  # its name now names the folded value
                rw.new_nodes = []
                rw.node("Mul", [rw.node("Cast", [q_name], table, to=TensorProto.FLOAT), scale_name], table, outputs=[table])
                head.extend(rw.new_nodes)
                folded.add(table)
                nodes.append(node)
                continue
        base = node.name or table
        ids = node.input[1]
        rw.new_nodes = []
        as_float = rw.node("Cast", [rw.node("Gather", [q_name, ids], base)], base, to=TensorProto.FLOAT)
        scales = rw.node("Gather", [scale_name, ids], base)
        scale_gathers.append(rw.new_nodes[-1].name)
        rw.node("Mul", [as_float, scales], base, outputs=list(node.output))
        nodes.extend(rw.new_nodes)
    del out.graph.node[:]
    out.graph.node.extend(head + nodes)
    prune(out)  # the float tables
    return out, scale_gathers


def quantize_dynamic_int8(model: onnx.ModelProto, exclude: list[str] | None = None) -> onnx.ModelProto:
    """onnxruntime dynamic int8 quantization of the weights (MatMul, LSTM, Gather; not the nodes named in
    `exclude`): the `int8-dynamic` scheme as written, and the weights `make_invariant` starts from."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer logs warnings on the root logger about tensors it rightly leaves alone (the int32
    # id inputs) and suggests a pre-processing step meant for CNNs: keep them out of the user's way.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "int8.onnx"
            quantize_dynamic(model, out, weight_type=QuantType.QInt8, nodes_to_exclude=exclude or [])
            return onnx.load(out)
    finally:
        root.setLevel(level)


class _Rewriter:
    """Initializers by name, fresh node and initializer names, and the nodes replacing the one rewritten."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.init = {t.name: t for t in model.graph.initializer}
        self.count = 0
        self.new_nodes: list[onnx.NodeProto] = []  # the nodes replacing the one being rewritten

    def array(self, name: str) -> np.ndarray:
        if name not in self.init:
            raise ValueError(f"{name}: expected a constant (initializer) in a quantize_dynamic graph")
        return numpy_helper.to_array(self.init[name])

    def name(self, base: str, what: str) -> str:
        self.count += 1
        return f"{base}/inv{self.count}_{what}"

    def const(self, base: str, what: str, value: np.ndarray) -> str:
        name = self.name(base, what)
        tensor = numpy_helper.from_array(np.array(value, order="C"), name)
        self.model.graph.initializer.append(tensor)
        self.init[name] = tensor
        return name

    def node(self, op: str, inputs: list[str], base: str, outputs: list[str] | None = None, **attrs: object) -> str:
        out = outputs or [self.name(base, op.lower())]
        self.new_nodes.append(helper.make_node(op, inputs, out, name=self.name(base, op), **attrs))
        return out[0]


def _dequantized(rw: _Rewriter, base: str, q_name: str, scale_name: str, zp_name: str) -> str:
    """A float tensor from an LSTM weight `quantize_dynamic` stored as int8 (num_directions, in, 4H) with
    one scale and zero point per direction: transposed back to ONNX's (num_directions, 4H, in) in the
    stored int8 (exact), then Cast + Mul by constants, which onnxruntime folds when the session is built."""
    q = rw.array(q_name)
    scale = rw.array(scale_name).astype(np.float32)
    zero = rw.array(zp_name)
    if q.dtype != np.int8 or q.ndim != 3 or scale.shape != (q.shape[0],) or np.any(zero != 0):
        raise ValueError(f"{q_name}: expected int8 (directions, input, 4H) weights, symmetric, one scale a direction"
                         f" (got {q.dtype} {q.shape}, scale {scale.shape}); re-export with per-tensor int8")
    stored = rw.const(base, "q", np.ascontiguousarray(q.transpose(0, 2, 1)))
    as_float = rw.node("Cast", [stored], base, to=TensorProto.FLOAT)
    return rw.node("Mul", [as_float, rw.const(base, "scale", scale.reshape(-1, 1, 1))], base)


def _lstm(rw: _Rewriter, node: onnx.NodeProto) -> None:
    """`DynamicQuantizeLSTM` -> float `LSTM` on its dequantized weights, same inputs, outputs, attributes."""
    inputs = list(node.input) + [""] * (12 - len(node.input))
    x, w_q, r_q, bias, lens, h0, c0, peep, w_s, w_zp, r_s, r_zp = inputs[:12]
    w = _dequantized(rw, node.name or w_q, w_q, w_s, w_zp)
    r = _dequantized(rw, node.name or r_q, r_q, r_s, r_zp)
    args = [x, w, r, bias, lens, h0, c0, peep]
    while args and not args[-1]:
        args.pop()
    rw.new_nodes.append(helper.make_node("LSTM", args, list(node.output), name=node.name, domain="",
                                         **{a.name: helper.get_attribute_value(a) for a in node.attribute}))


def _rows(rw: _Rewriter, node: onnx.NodeProto) -> None:
    """`DynamicQuantizeLinear` (one scale for the tensor) -> one symmetric scale per row (last axis), uint8
    with the fixed zero point `ROW_ZERO_POINT`, under the node's own output names: the `MatMulInteger`
    reads them as before; the scale, now one a row, is applied by `_scale_rows_first`."""
    (x,) = node.input
    q_out, scale_out, zp_out = node.output
    base = node.name or x
    top = rw.node("ReduceMax", [rw.node("Abs", [x], base), rw.const(base, "last_axis", np.array([-1], np.int64))], base, keepdims=1)
    scale = rw.node("Div", [rw.node("Max", [top, rw.const(base, "tiny", _TINY_SCALE)], base),
                            rw.const(base, "q_max", np.float32(127))], base, outputs=[scale_out])
    steps = rw.node("Round", [rw.node("Div", [x, scale], base)], base)
    shifted = rw.node("Add", [steps, rw.const(base, "zp_float", np.float32(ROW_ZERO_POINT))], base)
    clipped = rw.node("Clip", [shifted, rw.const(base, "lo", np.float32(0)), rw.const(base, "hi", np.float32(255))], base)
    rw.node("Cast", [clipped], base, outputs=[q_out], to=TensorProto.UINT8)
    rw.new_nodes.append(helper.make_node("Identity", [rw.const(base, "zp", np.uint8(ROW_ZERO_POINT))], [zp_out],
                                         name=rw.name(base, "Identity")))


def _unsigned_weights(rw: _Rewriter, node: onnx.NodeProto) -> None:
    """A `MatMulInteger`'s symmetric int8 weights, stored as uint8 + 128 with the zero point 128 under the
    same names (`init_source` reads them back through their zero point), so that no CPU's kernel can
    saturate on them (see the module docstring). Weights already uint8 (converted for another node reading
    them, or before) are left as they are."""
    weights = node.input[1]
    zero_point = node.input[3] if len(node.input) > 3 else ""
    if rw.init.get(weights) is None or rw.init[weights].data_type != TensorProto.INT8:
        return
    if not zero_point or np.any(rw.array(zero_point) != 0):
        raise ValueError(f"{weights}: expected symmetric int8 weights (zero point 0) in a quantize_dynamic graph")
    for name, value in ((weights, (rw.array(weights).astype(np.int16) + ROW_ZERO_POINT).astype(np.uint8)),
                        (zero_point, np.full(rw.array(zero_point).shape, ROW_ZERO_POINT, np.uint8))):
        tensor = numpy_helper.from_array(value, name)
        rw.model.graph.initializer.remove(rw.init[name])
        rw.model.graph.initializer.append(tensor)
        rw.init[name] = tensor


def _scale_rows_first(rw: _Rewriter, nodes: list[onnx.NodeProto], row_scales: set[str]) -> list[onnx.NodeProto]:
    """`quantize_dynamic` scales a `MatMulInteger` result by `Mul(Cast(result), Mul(x_scale, w_scale))`.
    onnxruntime fuses that pattern into `MatMulIntegerToFloat`, whose kernel reads `x_scale` as one
    number (measured: a per-row scale gave wrong outputs), so with row scales the result is multiplied
    by the row scale first and the weight scale second: `Mul(Mul(Cast(result), row_scale), w_scale)`."""
    combined = {}  # Mul(row scale, weight scale) output -> (row scale, weight scale)
    for node in nodes:
        if node.op_type == "Mul" and set(node.input) & row_scales:
            row = next(i for i in node.input if i in row_scales)
            combined[node.output[0]] = (row, next((i for i in node.input if i != row), row))
    out = []
    for node in nodes:
        if node.op_type == "Mul" and node.output[0] in combined:
            continue
        factor = next((i for i in node.input if i in combined), None) if node.op_type == "Mul" else None
        if factor is None:
            if any(i in combined for i in node.input):
                raise ValueError(f"{node.name}: unexpected use of a combined activation and weight scale")
            out.append(node)
            continue
        row, weight = combined[factor]
        other = next(i for i in node.input if i != factor)
        by_row = rw.name(node.name, "by_row")
        out.append(helper.make_node("Mul", [other, row], [by_row], name=by_row))
        out.append(helper.make_node("Mul", [by_row, weight], list(node.output), name=node.name))
    return out


def make_invariant(model: onnx.ModelProto) -> onnx.ModelProto:
    """The `int8` scheme: a copy of a `quantize_dynamic_int8` graph in which no value depends on another
    row of the batch, nor on the CPU's integer kernels (see the module docstring). Raises ValueError for a
    graph quantized another way (per channel, asymmetric weights)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    rw = _Rewriter(out)
    nodes = list(out.graph.node)
    rewritten = []
    row_scales: set[str] = set()
    for node in nodes:
        rw.new_nodes = []
        if node.op_type == "DynamicQuantizeLSTM" and node.domain == _MS_DOMAIN:
            _lstm(rw, node)
        elif node.op_type == "DynamicQuantizeLinear":
            _rows(rw, node)
            row_scales.add(node.output[1])
        else:
            if node.op_type == "MatMulInteger":
                _unsigned_weights(rw, node)
            rw.new_nodes = [node]
        rewritten.extend(rw.new_nodes)
    del out.graph.node[:]
    out.graph.node.extend(_scale_rows_first(rw, rewritten, row_scales))
    prune(out)
    if not any(n.domain == _MS_DOMAIN for n in out.graph.node):
        ms = [o for o in out.opset_import if o.domain == _MS_DOMAIN]
        for o in ms:
            out.opset_import.remove(o)
    onnx.checker.check_model(out)
    return out


def ensemble_from_logits(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of an ensemble graph written before `export.ensemble_graph` combined its members' logits:
    each `Log(Max(member probs, floor))` becomes the member's logits (the input of the member's Softmax).
    They differ by one constant a position, which the ensemble's final Softmax cancels; onnxruntime's
    `Log` is not the same function in a vector's body and its tail, so a value depended on its place in
    the batch. Only a probability under the floor (1e-30) is combined differently. A graph without that
    pattern is returned unchanged."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    producer = {o: n for n in out.graph.node for o in n.output}
    nodes = []
    for node in out.graph.node:
        floor = producer.get(node.input[0]) if node.op_type == "Log" else None
        member = producer.get(floor.input[0]) if floor is not None and floor.op_type == "Max" else None
        if member is not None and member.op_type == "Softmax":
            node = helper.make_node("Identity", [member.input[0]], list(node.output), name=node.name)
        nodes.append(node)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    prune(out)
    return out


def prune(model: onnx.ModelProto) -> None:
    """Drop the nodes nothing reads (not graph outputs) and the initializers no node reads, in place."""
    graph = model.graph
    while True:
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        live = [n for n in graph.node if any(o in used for o in n.output)]
        if len(live) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(live)
    used = {i for n in graph.node for i in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def quantize(model: onnx.ModelProto, scheme: str | None) -> onnx.ModelProto:
    """`model` (float32, as `export.build_graph` / `ensemble_graph` write it) under the `--quantize`
    scheme: "int8" (`make_invariant` of `quantize_dynamic_int8` of `row_tables`), "int8-dynamic"
    (`quantize_dynamic_int8`) or "none" / None (unchanged)."""
    if scheme in (None, "none"):
        return model
    if scheme == "int8-dynamic":
        return quantize_dynamic_int8(model)
    if scheme == "int8":
        rows, scale_gathers = row_tables(model)
        return make_invariant(quantize_dynamic_int8(rows, exclude=scale_gathers))
    raise ValueError(f"unknown quantization {scheme!r}")


def matmul_weights(model: onnx.ModelProto) -> str | None:
    """What the graph's `MatMulInteger` weights are, as model.json `int8_matmul_weights` records it for
    `ner-fast info` (which reads no graph): "uint8" (with the zero point 128: the same integer sums on every
    CPU), "int8" if any is signed (CPUs without VNNI may saturate on them), None without `MatMulInteger`."""
    dtypes = {t.name: t.data_type for t in model.graph.initializer}
    found = {dtypes.get(n.input[1]) for n in model.graph.node if n.op_type == "MatMulInteger"}
    return "int8" if TensorProto.INT8 in found else "uint8" if found else None


def old_int8_scheme(model: onnx.ModelProto) -> str | None:
    """Which earlier int8 scheme wrote `model`, if one did: "int8-dynamic" (activations quantized per batch),
    "signed-weights" (today's `int8` but for `MatMulInteger` weights still int8, which AVX2 kernels may
    saturate on), or None (today's `int8`, or not int8 at all). `bundle --requantize` converts either."""
    if any(n.op_type in PER_BATCH_OPS for n in model.graph.node):
        return "int8-dynamic"
    return "signed-weights" if matmul_weights(model) == "int8" else None


def is_batch_invariant(model: onnx.ModelProto) -> bool:
    """Whether a graph holds none of the ops known to make a row's output depend on the other rows:
    activation scales computed over the whole batch, and `Log` (`package.BATCH_DEPENDENT_OPS`)."""
    return not any(n.op_type in BATCH_DEPENDENT_OPS for n in model.graph.node)
