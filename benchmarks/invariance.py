"""Batch invariance against speed, F1 and size: the quantization candidates on the bundled ensemble's weights.

    python benchmarks/invariance.py [--json benchmarks/results/invariance.json] [--repeats 2]
                                    [--dynamic-package PKG | --dynamic-rev REV]

Every candidate is built from the same int8 weights: those of the bundled ensemble (`ensemble`, the default
package until the one distilled network replaced it) as it was shipped with the per-batch scheme (`--dynamic-package`, else its files read from git at `--dynamic-rev`, checked against
the manifest sha256 that the converted package's provenance records), so no retraining is involved:

- `int8-dynamic`: that package as it was (onnxruntime `quantize_dynamic`: `DynamicQuantizeLSTM`, and
  `DynamicQuantizeLinear` + `MatMulInteger` for the output layers; one activation scale per batch);
- `int8` (the default now): `training.quantize.make_invariant` of it, i.e. the bundled ensemble: float
  LSTM on the int8 weights (folded to float32 when the session is built), one activation scale per row
  before the output layers' `MatMulInteger`;
- `int8-weights-float-act`: the same with float `MatMul` output layers (int8 weights, float activations);
- `float32`: every weight stored as float32 (the same values: the int8 ones dequantized), no int8 op.

In one run, each through `ner_fast.Tagger` as an application uses it: the entity F1 of `tag_batch` on the
whole GMB validation split (`ner_fast.metrics.score`, as the bundled ensemble's recorded F1); `tag_batch`
tokens/s on its first `--speed-sentences` sentences (threads=2, and threads=1 with workers=2; candidates
taking turns, best of `--repeats`); p50 of `tag()` on 20-token validation sentences (1 thread, candidates
taking turns, each on all the sentences: with turns on each sentence, at load 12, every float-LSTM candidate
took 10.8 ms against 1.9 ms measured alone, probably their float32 LSTM weights, 8.6 MB each, evicting
one another from the cache); package size; and invariance: the
first `--sentences` validation sentences tagged alone (`tag`, 1 thread) against `tag_batch` at batch 64 on
2 threads and on 1 thread with 2 workers: sentences whose tags differ and the largest probability
difference. What is not measured is said with numbers in the JSON (`not_measured`): static calibration
scales and the LSTM's input projection moved out of the recurrent op.

The machine's CPU model, flags (avx2, avx512f, avx512_vnni, amx) and core count are recorded. onnxruntime's
CPU kernels (MLAS) choose their instruction set from CPUID at run time and have no setting to cap it
(`DNNL_MAX_CPU_ISA` is MXNet's oneDNN, irrelevant here), so an AVX2-only CPU cannot be emulated: run the
benchmark there. On a shared machine compare figures within one run only.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ner_fast import Tagger
from ner_fast.metrics import TagScheme, score
from ner_fast.package import ENSEMBLE_PACKAGE, load_package, package_checksum, sha256_file
from ner_fast.training.bundle import validation_corpus
from ner_fast.training.package_writer import write_package
from ner_fast.training.quantize import ensemble_from_logits, is_batch_invariant, make_invariant, prune

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import load_average, write_json  # noqa: E402  (the CPU in every result)

ROOT = Path(__file__).resolve().parent.parent
# Where the ensemble lay at DYNAMIC_REV (the default package then; src/ner_fast/models/ensemble now).
PACKAGE_IN_GIT = "src/ner_fast/models/default"
# The last commit whose bundled package was the int8-dynamic one (converted without retraining after it).
DYNAMIC_REV = "9e72aeab4544d41dbf0711ab1c28b0b116c1377a"



def dynamic_package(given: Path | None, rev: str, work: Path) -> Path:
    """The int8-dynamic bundled ensemble: `given`, or its files from git at `rev`; its manifest must be the
    one the bundled ensemble's provenance names as the source of its conversion."""
    if given is None:
        given = work / "int8-dynamic-source"
        given.mkdir()
        for name in ("manifest.json", "model.json", "dynamic.onnx", "weights.onnx.data"):
            blob = subprocess.run(["git", "show", f"{rev}:{PACKAGE_IN_GIT}/{name}"], cwd=ROOT, capture_output=True, check=True).stdout
            (given / name).write_bytes(blob)
    wanted = load_package(ENSEMBLE_PACKAGE).model.get("provenance", {}).get("requantized", {}).get("source_manifest_sha256")
    if wanted and package_checksum(given) != wanted:
        raise SystemExit(f"{given}: not the package the bundled ensemble was converted from (manifest sha256 differs)")
    return given


def float_heads(model: onnx.ModelProto) -> onnx.ModelProto:
    """`DynamicQuantizeLinear` + `MatMulInteger` + `Cast` + `Mul` -> float `MatMul` on the weights dequantized by
    `Cast` + `Mul` of constants (folded when the session is built)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    drop, add = set(), {}
    for mm in [n for n in g.node if n.op_type == "MatMulInteger"]:
        quantizer = producer[mm.input[0]]
        x, scale = quantizer.input[0], quantizer.output[1]
        cast = consumers[mm.output[0]][0]
        mul = consumers[cast.output[0]][0]
        combined = producer[next(i for i in mul.input if i != cast.output[0])]
        w_scale = next(i for i in combined.input if i != scale)
        base = mm.name
        weights = [helper.make_node("Cast", [mm.input[1]], [f"{base}/wf"], to=TensorProto.FLOAT, name=f"{base}/wcast"),
                   helper.make_node("Mul", [f"{base}/wf", w_scale], [f"{base}/w"], name=f"{base}/wmul"),
                   helper.make_node("MatMul", [x, f"{base}/w"], list(mul.output), name=f"{base}/matmul")]
        drop.update(id(n) for n in (mm, cast, mul, combined, quantizer))
        add[id(mul)] = weights
    nodes = []
    for n in g.node:
        nodes.extend(add.get(id(n), []))
        if id(n) not in drop:
            nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    return _pruned(out)


def all_float(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every int8 constant dequantized into a float32 initializer: `Cast`+`Mul` of constants folded,
    `Gather` of an int8 table then `DequantizeLinear` -> `Gather` of the dequantized table."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    folded: dict[str, np.ndarray] = {}
    nodes = []
    for n in g.node:
        if n.op_type == "Cast" and n.input[0] in init and init[n.input[0]].dtype == np.int8:
            folded[n.output[0]] = init[n.input[0]].astype(np.float32)
            continue
        if n.op_type == "Mul" and n.input[0] in folded and n.input[1] in init:
            g.initializer.append(numpy_helper.from_array((folded[n.input[0]] * init[n.input[1]]).astype(np.float32), n.output[0]))
            continue
        if n.op_type == "DequantizeLinear" and n.input[0] in producer and producer[n.input[0]].op_type == "Gather":
            gather = producer[n.input[0]]
            q, s, z = (init[i] for i in (gather.input[0], n.input[1], n.input[2]))
            name = gather.input[0] + "/float"
            g.initializer.append(numpy_helper.from_array(((q.astype(np.float32) - z.astype(np.float32)) * s).astype(np.float32), name))
            nodes.append(helper.make_node("Gather", [name, gather.input[1]], list(n.output), name=n.name,
                                          **{a.name: helper.get_attribute_value(a) for a in gather.attribute}))
            continue
        nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    return _pruned(out)


def _pruned(model: onnx.ModelProto) -> onnx.ModelProto:
    prune(model)  # the exporter's rule (unread nodes and initializers), then checked
    onnx.checker.check_model(model)
    return model


def write_candidate(graph: onnx.ModelProto, source: Path, out: Path, scheme: str) -> Path:
    pkg = load_package(source)
    info = {k: v for k, v in pkg.model.items() if k not in ("format_version", "buckets", "versions")}
    info["quantization"] = scheme
    return write_package(out, graph, [], info, pkg.manifest.get("versions", {}))


def lstm_macs(model: dict[str, Any]) -> dict[str, int]:
    """Multiply-adds a token of the members' LSTMs and output layers, from the package's architecture."""
    members = model["architecture"].get("members") or [model["architecture"]]
    lstm = heads = projection = identity = 0
    for m in members:
        h, d = m["hidden"], m["directions"]
        inputs = m["word_dim"] + (m.get("casing_dim") or 0) * bool(m.get("use_casing")) + m["filters"] * len(m["filter_widths"])
        for layer in range(m.get("num_layers", 1)):
            width = inputs if layer == 0 else d * h
            projection += d * 4 * h * width
            identity += d * 4 * h * 4 * h
            lstm += d * 4 * h * (width + h)
        heads += d * h * (m["n_tags"] + (m["n_pos"] if m.get("pos_aux_weight") else 0))
    return {"lstm": lstm, "input_projection": projection, "identity_input_weight": identity, "output_layers": heads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sentences", type=int, default=1500, help="validation sentences of the invariance check")
    parser.add_argument("--p50-calls", type=int, default=400)
    parser.add_argument("--speed-sentences", type=int, default=3000, help="validation sentences of each timed pass")
    parser.add_argument("--dynamic-package", type=Path, default=None)
    parser.add_argument("--dynamic-rev", default=DYNAMIC_REV)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ner-fast-invariance-"))
    source = dynamic_package(args.dynamic_package, args.dynamic_rev, work)
    dynamic = onnx.load(str(source / "dynamic.onnx"))
    invariant = make_invariant(ensemble_from_logits(dynamic))
    graphs = {
        "int8-dynamic": dynamic,
        "int8": invariant,
        "int8-weights-float-act": make_invariant(float_heads(ensemble_from_logits(dynamic))),
    }
    graphs["float32"] = all_float(graphs["int8-weights-float-act"])
    packages = {name: write_candidate(g, source, work / name, name) for name, g in graphs.items()}
    bundled_same = sha256_file(packages["int8"] / "weights.onnx.data") == sha256_file(ENSEMBLE_PACKAGE / "weights.onnx.data")

    model = load_package(ENSEMBLE_PACKAGE).model
    corpus = validation_corpus(model["provenance"]["training"])
    offsets = corpus.offsets.tolist()
    sentences = [corpus.words[a:b] for a, b in zip(offsets, offsets[1:])]
    twenty = [s for s in sentences if len(s) == 20][: args.p50_calls]

    settings = {"threads2": dict(threads=2), "threads1_workers2": dict(threads=1, workers=2)}
    taggers = {(name, s): Tagger.load(path, device="cpu", **kw) for name, path in packages.items() for s, kw in settings.items()}
    alone = {name: Tagger.load(path, device="cpu", threads=1) for name, path in packages.items()}
    results: dict[str, Any] = {name: {"package_bytes": sum(alone[name].package.file_sizes.values()), "batch_invariant_graph": is_batch_invariant(graphs[name]),
                                      "tokens_per_s": {}} for name, path in packages.items()}
    load_before = load_average()
    for (name, s), tagger in taggers.items():  # warm up every session
        tagger.tag_batch(sentences[:256])
    for name in packages:  # F1 of the whole validation split, as the bundled package's is recorded
        tagger = taggers[name, "threads2"]
        tags = tagger.tag_batch(sentences, batch_size=64)
        index = {t: i for i, t in enumerate(tagger.tags)}
        gold = np.fromiter((index[t] for t in corpus.tags), np.int64)
        pred = np.fromiter((index[t] for x in tags for t in x), np.int64)
        results[name]["f1"] = score(gold, pred, corpus.lengths, TagScheme(tagger.tags)).f1
    timed = sentences[: args.speed_sentences]
    timed_tokens = sum(map(len, timed))
    for _ in range(args.repeats):  # candidates take turns, the best pass kept (the machine is shared)
        for (name, s), tagger in taggers.items():
            start = time.perf_counter()
            tagger.tag_batch(timed, batch_size=64)
            rate = timed_tokens / (time.perf_counter() - start)
            results[name]["tokens_per_s"][s] = max(rate, results[name]["tokens_per_s"].get(s, 0))
    times: dict[str, list[float]] = {name: [] for name in packages}
    for _ in range(args.repeats):  # candidates take turns, each on every sentence: its weights stay in cache,
        for name, tagger in alone.items():  # as in an application that uses one model
            for s in twenty:
                start = time.perf_counter()
                tagger.tag(s)
                times[name].append(time.perf_counter() - start)
    for name in packages:
        results[name]["p50_ms_20_tokens"] = float(np.median(times[name]) * 1e3)
    check = sentences[: args.sentences]
    for name in packages:
        ref = [alone[name].tag(s, proba=True) for s in check]
        inv: dict[str, Any] = {}
        for s in settings:
            tags, probs = taggers[name, s].tag_batch(check, batch_size=64, proba=True)
            inv[s] = {"sentences_whose_tags_differ": sum(r[0] != t for r, t in zip(ref, tags)),
                      "sentences_whose_scores_differ": sum(not np.array_equal(r[1], p) for r, p in zip(ref, probs)),
                      "max_probability_difference": max(float(np.abs(r[1] - p).max()) for r, p in zip(ref, probs))}
        results[name]["invariance_vs_alone_1_thread"] = inv
    base = results["int8-dynamic"]
    for name, r in results.items():
        r["tokens_per_s_ratio_to_int8_dynamic"] = {s: r["tokens_per_s"][s] / base["tokens_per_s"][s] for s in settings}
        r["p50_ratio_to_int8_dynamic"] = r["p50_ms_20_tokens"] / base["p50_ms_20_tokens"]
    macs = lstm_macs(model)
    report = {
        "benchmark": "invariance",
        "machine_note": "shared with other jobs: compare within this run only",
        "load_average_before_after": [load_before, load_average()],
        "onnxruntime": __import__("onnxruntime").__version__,
        "source_package_manifest_sha256": package_checksum(source),
        "int8_candidate_is_the_bundled_package_weights": bundled_same,
        "validation": {"sentences": len(sentences), "tokens": corpus.n_tokens, "invariance_sentences": len(check),
                       "p50_sentences": len(twenty), "timed_sentences": len(timed), "timed_tokens": timed_tokens,
                       "repeats": args.repeats},
        "candidates": results,
        "macs_per_token": macs,
        "not_measured": {
            "static_calibration_scales": "onnxruntime has no LSTM with static activation scales (static QDQ/QOperator"
            " quantization leaves the LSTM float: docs/TRAINING.md, benchmarks/results/front_quantization.json);"
            f" only the output layers could take them: {macs['output_layers']:,} of"
            f" {macs['lstm'] + macs['output_layers']:,} multiply-adds a token"
            f" ({macs['output_layers'] / (macs['lstm'] + macs['output_layers']):.1%}), which already run int8 with row scales",
            "input_projection_out_of_the_lstm": "the ONNX LSTM takes no precomputed projection: its input would be"
            f" the 4H projected values with a 4H x 4H identity W, {macs['identity_input_weight']:,} multiply-adds a"
            f" token in the recurrent op instead of the {macs['input_projection']:,} it saves",
            "avx2_only_cpu": "MLAS picks kernels from CPUID; no setting caps onnxruntime's instruction set"
            " (DNNL_MAX_CPU_ISA is MXNet's oneDNN): run this benchmark on such a CPU",
        },
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, report)


if __name__ == "__main__":
    main()
