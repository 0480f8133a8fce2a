"""Where a package's graph spends its time: onnxruntime's profiler over the GMB validation split, kernel time
summed by part of the network and by operator type.

    python benchmarks/ops.py --package default --package ensemble [--sentences 4000] [--threads 1] [--json FILE]

For each package, the dynamic graph (`dynamic.onnx`) runs over the feature batches `Tagger.features` makes of
the first N validation sentences (batch 64, as `tag_batch`), in a session with the tagger's own options
(`sessions.make_session_options`) and profiling on; then every node's kernel time (`*_kernel_time` events) is
summed into three parts, found from the graph's structure, not from names:

- `lstm`: the recurrent operators (`LSTM`, `DynamicQuantizeLSTM`);
- `characters`: every node that depends on the character rows of the input and not yet on anything else,
  i.e. the character CNN up to (not including) the node that joins it with the word and casing features,
  and the nodes that only prepare its tables (dequantizing them);
- `rest`: everything else (word and casing look-ups, the output heads, per-row quantization, transposes).

A format-2 package's graph (character CNN in `chars.onnx`) is fed its character features by the tagger's cache
(`Tagger.feeds`, before the timed runs), so its `characters` share is about 0; `benchmarks/charcache.py` measures
the cache. The shares are of the graph's own kernel time: what caching the character features by word form, or a faster
LSTM, could save at most. Featurizing and decoding (outside the graph) are `benchmarks/overhead.py`'s. JSON
records the CPU (`_machine.write_json`); shares, not speeds, so a loaded machine moves them little.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
from _machine import load_average, write_json

from ner_fast import Tagger
from ner_fast.package import package_path
from ner_fast.prepare import run_splits
from ner_fast.sessions import make_session_options

RECURRENT = {"LSTM", "DynamicQuantizeLSTM"}


def parts(graph: onnx.GraphProto, input_name: str) -> dict[str, str]:
    """node name -> `lstm`, `characters` or `rest` (module docstring). The character rows are the input's
    slice of feature rows, which the exporter emits as `Slice(features, chars_start, chars_end)` (per member
    of an ensemble: `m0/chars_start`): found as the `Slice`s of the input whose start is such an initializer,
    else any `Slice` of the input."""
    producers = {out: node for node in graph.node for out in node.output}
    aliases = {input_name}  # an ensemble's members read the input through an Identity each (`m0/features`)
    aliases |= {n.output[0] for n in graph.node if n.op_type == "Identity" and n.input[0] == input_name}
    slices = [n for n in graph.node if n.op_type == "Slice" and n.input[0] in aliases]
    start = [n for n in slices if len(n.input) > 1 and n.input[1].endswith("chars_start")] or slices
    # Forward from the character rows: a node is on the character path while all of its non-constant
    # inputs are.
    constant = {init.name for init in graph.initializer}
    on_path = {out for n in start for out in n.output}
    kind: dict[str, str] = {n.name: "characters" for n in start}
    changed = True
    while changed:
        changed = False
        for node in graph.node:
            if node.name in kind or node.op_type in RECURRENT:
                continue
            live = [i for i in node.input if i and i not in constant and not _from_constants(i, producers, constant)]
            if live and all(i in on_path for i in live):
                kind[node.name] = "characters"
                on_path.update(node.output)
                changed = True
    # The tables' own preparation (casts and scales of char_* initializers) feeds only the character path.
    consumers: dict[str, list[onnx.NodeProto]] = collections.defaultdict(list)
    for node in graph.node:
        for i in node.input:
            consumers[i].append(node)
    for node in graph.node:
        if node.name not in kind and _from_constants(node.output[0], producers, constant):
            users = consumers[node.output[0]]
            if users and all(kind.get(u.name) == "characters" for u in users):
                kind[node.name] = "characters"
    for node in graph.node:
        kind.setdefault(node.name, "lstm" if node.op_type in RECURRENT else "rest")
    return kind


def _from_constants(name: str, producers: dict[str, onnx.NodeProto], constant: set[str], depth: int = 0) -> bool:
    """Whether tensor `name` is computed from initializers alone (a dequantized table, a cast weight)."""
    if name in constant:
        return True
    node = producers.get(name)
    if node is None or depth > 8:
        return False
    return all(not i or _from_constants(i, producers, constant, depth + 1) for i in node.input)


def profile(package: str, sentences: list[list[str]], threads: int) -> dict[str, Any]:
    """The package's kernel time by part and by operator type (module docstring)."""
    tagger = Tagger.load(package, device="cpu", threads=threads, buckets=[])
    folder = package_path(package)
    graph_file = folder / "dynamic.onnx"
    kind = parts(onnx.load(str(graph_file), load_external_data=False).graph, tagger.input_name)
    # A format-2 package's graph takes the character features too: the tagger's cache gives them here,
    # before the timed runs (its own cost is benchmarks/charcache.py's), so `characters` is then ~0.
    batches = [tagger.feeds(batch) for batch in tagger.features(sentences, batch_size=64)]
    options = make_session_options(threads)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = os.path.join(tmp, "ops")
        session = ort.InferenceSession(str(graph_file), options, providers=["CPUExecutionProvider"])
        session.run(None, batches[0])  # warm-up, counted like the rest (it is 1 batch of many)
        start = time.perf_counter()
        for batch in batches:
            session.run(None, batch)
        wall = time.perf_counter() - start
        events = json.loads(Path(session.end_profiling()).read_text())
    by_part: collections.Counter[str] = collections.Counter()
    by_op: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            node = event["name"][: -len("_kernel_time")]
            by_part[kind.get(node, "rest")] += event["dur"]
            by_op[event["args"]["op_name"]] += event["dur"]
    total = sum(by_part.values())
    if not total:
        raise SystemExit(f"{package}: the profile has no kernel events")
    return {
        "package": str(folder),
        "tokens": sum(map(len, sentences)),
        "kernel_ms": round(total / 1000, 1),
        "wall_s": round(wall, 3),
        "shares": {part: round(by_part[part] / total, 4) for part in ("lstm", "characters", "rest")},
        "by_op": {op: round(us / total, 4) for op, us in by_op.most_common()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", action="append", required=True, help="a package folder or bundled name (repeatable)")
    parser.add_argument("--sentences", type=int, default=4000, help="the first N validation sentences")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of the session")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    valid = run_splits({})[1]
    sentences = [valid.sentence(i).words for i in range(min(args.sentences, len(valid)))]
    results = {name: profile(name, sentences, args.threads) for name in args.package}
    print(f"GMB validation, {len(sentences)} sentences, {args.threads} thread(s); share of the graph's kernel time")
    print(f"{'package':12s} {'LSTM':>7s} {'chars':>7s} {'rest':>7s}   top operators")
    for name, r in results.items():
        s = r["shares"]
        top = ", ".join(f"{op} {share:.0%}" for op, share in list(r["by_op"].items())[:4])
        print(f"{name:12s} {s['lstm']:7.1%} {s['characters']:7.1%} {s['rest']:7.1%}   {top}")
    if args.json:
        write_json(args.json, {"benchmark": "ops", "args": vars(args), "load_average": load_average(), "results": results})


if __name__ == "__main__":
    main()
