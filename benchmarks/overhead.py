"""The tagger's own overhead: where a single-sentence `Tagger.tag` call spends its time.

    python benchmarks/overhead.py --package PKG [--calls 3000] [--json FILE]

On up to 500 different 20-token GMB validation sentences (`validation_sentences`, as `benchmarks/tagger.py`),
for each onnxruntime session setup below, in one run:

- `tag`: p50/p99 of `Tagger.tag(tokens)` end to end (tokens in, tag names out);
- `run`: p50 of the dynamic graph's `InferenceSession.run` alone on the same sentences' feature tensors;
- `rest` = tag - run (featurize + batch planning + decode + glue) and its share of `tag`, the figure
  issue 12 bounds at 15%;
- `in_call`: the same split measured inside each call: a second tagger on the same session, whose
  `run` is timed where the tagger calls it (`TimedSession`): per call, the time outside `run`; p50 of
  that and of the call, and the share (the tight loop of `run` above keeps caches warmer than a call
  does, so this split is the fairer one);
- `tag_batch` at batch 64 over 2,000 sentences (tokens/s), each setup's median of 3 passes taking turns;
- `iobinding_p50_ms`: the dynamic graph run through an onnxruntime IOBinding (input bound from NumPy,
  output left to onnxruntime, copied out) instead of `run`, same sentences, same turns: whether binding
  pays at batch 1.

Setups (`SETUPS`): the tagger's default options (`sessions.make_session_options`), and the same with one
option changed (threads, spinning, graph optimisation level), so each option's effect is a ratio
measured in the same run. Setups take turns in rounds of `--chunk` calls (paired turns), so a change in
the shared machine's load hits all of them alike; `uptime`'s load average is recorded before and after.
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ner_fast import _kernels
from ner_fast.features import featurize
from ner_fast.package import load_package
from ner_fast.prepare import run_splits
from ner_fast.sessions import make_session_options
from ner_fast.tagger import Tagger
from _machine import load_average, write_json  # the CPU (model, flags, cores) in every result


def _options(threads: int | None, spinning: bool | None = None, level: str | None = None) -> Callable[[], ort.SessionOptions]:
    def make() -> ort.SessionOptions:
        options = make_session_options(threads)
        if spinning is not None:
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        if level is not None:
            options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        return options

    return make


# name -> (session options, Tagger workers); "default" is what `Tagger.load(pkg)` uses.
SETUPS: dict[str, tuple[Callable[[], ort.SessionOptions], int]] = {
    "default": (_options(None), 1),
    "threads=1": (_options(1), 1),
    "threads=2": (_options(2), 1),
    "threads=1,workers=2": (_options(1), 2),
    "threads=2,no-spin": (_options(2, spinning=False), 1),
    "threads=1,extended-opt": (_options(1, level="ORT_ENABLE_EXTENDED"), 1),
}


class TimedSession:
    """An onnxruntime session whose `run` adds its seconds to `self.seconds` (everything else delegated)."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session
        self.seconds = 0.0

    def run(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._session.run(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def validation_sentences(uses_pos: bool) -> tuple[list[list[str]], list[list[str]] | None]:
    """The GMB validation sentences (sequential 80/20 split) and their POS when the package uses them."""
    valid = run_splits({})[1]
    sentences = [valid.sentence(i) for i in range(len(valid))]
    return [s.words for s in sentences], ([s.pos for s in sentences] if uses_pos else None)  # type: ignore[misc]


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", required=True, help="model package folder (int8 or fp32)")
    parser.add_argument("--calls", type=int, default=3000, help="timed single-sentence calls per setup")
    parser.add_argument("--chunk", type=int, default=100, help="calls per turn")
    parser.add_argument("--batch-sentences", type=int, default=2000, help="sentences of the batched pass")
    parser.add_argument("--setups", nargs="*", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    load_before = load_average()
    pkg = load_package(args.package)
    taggers = {name: Tagger.load(pkg, session_options=SETUPS[name][0](), workers=SETUPS[name][1]) for name in args.setups}
    first = next(iter(taggers.values()))
    words, pos = validation_sentences(first.uses_pos)
    twenty = [i for i, w in enumerate(words) if len(w) == 20][:500]
    if not twenty:
        raise SystemExit("no 20-token validation sentence")
    cases = [(words[i], pos[i] if pos else None) for i in twenty]
    # The network's input for each case, built as the tagger builds it, outside the timed region.
    feats = []
    for w, p in cases:
        matrix = featurize(w, p if first.uses_pos else None, first.vocabs, first.max_token_chars).matrix
        x, _, _ = _kernels.fill_bucket(matrix, None, np.array([0, len(w)], dtype=np.int64), np.zeros(1, dtype=np.int64), len(w))
        feats.append(x)
    # Each package's graph inputs (a format-2 package's character features too: `Tagger.feeds`, warm cache).
    inputs = {n: [t.feeds(x) for x in feats] for n, t in taggers.items()}

    tag_times: dict[str, list[float]] = {n: [] for n in taggers}
    run_times: dict[str, list[float]] = {n: [] for n in taggers}
    bound_times: dict[str, list[float]] = {n: [] for n in taggers}
    timed = {n: TimedSession(t.sessions[None]) for n, t in taggers.items()}
    probes = {n: Tagger(pkg, {None: timed[n]}, workers=t.workers) for n, t in taggers.items()}
    call_times: dict[str, list[float]] = {n: [] for n in taggers}
    outside_times: dict[str, list[float]] = {n: [] for n in taggers}
    for tagger in taggers.values():  # warm-up: onnxruntime sizes its arenas on the first runs
        for w, p in cases[:50]:
            tagger.tag(w, p)
    turns = max(1, args.calls // args.chunk)
    k = 0
    for _ in range(turns):
        for name, tagger in taggers.items():
            session = tagger.sessions[None]
            for j in range(args.chunk):
                w, p = cases[(k + j) % len(cases)]
                start = time.perf_counter()
                tagger.tag(w, p)
                tag_times[name].append(time.perf_counter() - start)
            for j in range(args.chunk):
                x = inputs[name][(k + j) % len(cases)]
                start = time.perf_counter()
                session.run(None, x)
                run_times[name].append(time.perf_counter() - start)
            probe, clock = probes[name], timed[name]
            for j in range(args.chunk):
                w, p = cases[(k + j) % len(cases)]
                clock.seconds = 0.0
                start = time.perf_counter()
                probe.tag(w, p)
                total = time.perf_counter() - start
                call_times[name].append(total)
                outside_times[name].append(total - clock.seconds)
            binding = session.io_binding()
            for j in range(args.chunk):
                x = inputs[name][(k + j) % len(cases)]
                start = time.perf_counter()
                for name_in, value in x.items():
                    binding.bind_cpu_input(name_in, value)
                binding.bind_output(session.get_outputs()[0].name)
                session.run_with_iobinding(binding)
                binding.copy_outputs_to_cpu()
                bound_times[name].append(time.perf_counter() - start)
        k += args.chunk

    batch_words = words[: args.batch_sentences]
    batch_pos = pos[: args.batch_sentences] if pos else None
    n_tokens = sum(len(w) for w in batch_words)
    batch_times: dict[str, list[float]] = {n: [] for n in taggers}
    for _ in range(3):
        for name, tagger in taggers.items():
            start = time.perf_counter()
            tagger.tag_batch(batch_words, batch_pos, batch_size=64)
            batch_times[name].append(time.perf_counter() - start)
    load_after = load_average()

    results: dict[str, Any] = {}
    for name in taggers:
        tag = percentiles(tag_times[name])
        run = percentiles(run_times[name])
        rest = tag["p50_ms"] - run["p50_ms"]
        results[name] = {
            "tag": tag,
            "run": run,
            "rest_p50_ms": round(rest, 4),
            "rest_share": round(rest / tag["p50_ms"], 4),
            "iobinding_p50_ms": percentiles(bound_times[name])["p50_ms"],
            "in_call": {
                "tag_p50_ms": percentiles(call_times[name])["p50_ms"],
                "outside_run_p50_ms": percentiles(outside_times[name])["p50_ms"],
                "share": round(float(np.median(outside_times[name])) / float(np.median(call_times[name])), 4),
            },
            "batched_tokens_per_s": round(n_tokens / float(np.median(batch_times[name]))),
        }
    base = results["default"]["tag"]["p50_ms"] if "default" in results else None
    if base:
        for r in results.values():
            r["p50_over_default"] = round(r["tag"]["p50_ms"] / base, 4)
    doc = {
        "benchmark": "overhead",
        "package": str(args.package),
        "quantization": pkg.model.get("quantization"),
        "settings": vars(args),
        "sentences_20_tokens": len(cases),
        "batched_tokens": n_tokens,
        "results": results,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpus": os.cpu_count(),
        "onnxruntime": ort.__version__,
    }
    print(f"one 20-token sentence, {len(cases)} different ones, {turns} turns of {args.chunk} calls; load {load_before} -> {load_after}")
    print(f"{'setup':26}{'tag p50':>9}{'p99':>8}{'run p50':>9}{'rest':>8}{'share':>7}{'in-call rest':>13}{'share':>7}{'iobind':>8}{'batch tok/s':>13}")
    for name, r in results.items():
        print(
            f"{name:26}{r['tag']['p50_ms']:9.3f}{r['tag']['p99_ms']:8.3f}{r['run']['p50_ms']:9.3f}"
            f"{r['rest_p50_ms']:8.3f}{r['rest_share']:7.1%}{r['in_call']['outside_run_p50_ms']:13.3f}{r['in_call']['share']:7.1%}"
            f"{r['iobinding_p50_ms']:8.3f}{r['batched_tokens_per_s']:13,}"
        )
    if args.json:
        write_json(args.json, doc)


if __name__ == "__main__":
    main()
