"""Defaults benchmark (issue 19, "speed that holds on any CPU"): the tagger's speed over a grid of its
settings, so that its defaults (intra-op threads, `workers`, batch size) are chosen by measurement.

    python benchmarks/defaults.py [--package NAME=DIR ...] [--sentences N] [--repeats R] [--json FILE]
                                  [--threads 1,2,all] [--workers 1,2] [--batch-sizes 16,32,64,128,256]

DIR may be a bundled package's name (`default`, `ensemble`; the default: `--package default=default`). Data: the GMB validation
split (sequential 80/20 of the bundled corpus, `prepare.run_splits({})`), its first `--sentences` sentences.

Measured in one run, for each package:
- batched: `Tagger.load(pkg, device="cpu", threads=T).tag_batch(sentences, batch_size=B, workers=W)` (a
  call's `workers` is the loaded tagger's `workers` default, so one tagger a T serves every W), tokens a
  second, median of `--repeats` passes, every setting once a pass in turn (interleaved, so load drift
  spreads over all of them); T "all" is None, onnxruntime's default (one thread a core);
- single sentence: p50/p99 milliseconds of `Tagger.tag` on 20-token validation sentences for each T (workers
  do not apply), interleaved sentence by sentence;
- raw text: `Tagger.pipe` (space-joined validation sentences, each Doc's entities read) with `n_threads` in
  --pipe-threads and batch_size in --pipe-batch-sizes, on the tagger of onnxruntime's default threads.

The current defaults are read from the code (`inspect.signature` of `Tagger.load`, `Tagger.tag_batch` and
`Tagger.pipe`), marked, and every setting is given as a ratio to them. Each setting's spread is
(slowest - fastest pass) / median; the best setting "beats the default beyond noise" when its ratio to the
default exceeds 1 + the larger of the two spreads. Nothing is changed: this measures. The machine may be
shared: `uptime`'s load average is recorded before and after.
"""
from __future__ import annotations

import argparse
import inspect
import itertools
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ner_fast.package import BUNDLED_NAMES, PackageError, package_path
from ner_fast.prepare import run_splits
from ner_fast.tagger import Tagger
from _machine import load_average, write_json  # the CPU (model, flags, cores) in every result


def current_defaults() -> dict[str, Any]:
    """The defaults as the code declares them (never copied here by hand)."""
    load = inspect.signature(Tagger.load).parameters
    pipe = inspect.signature(Tagger.pipe).parameters
    return {"threads": load["threads"].default, "workers": load["workers"].default,
            "batch_size": inspect.signature(Tagger.tag_batch).parameters["batch_size"].default,
            "pipe_batch_size": pipe["batch_size"].default, "pipe_n_threads": pipe["n_threads"].default}


def ints(text: str, allow_all: bool = False) -> list[int | None]:
    """A comma list of positive integers ("all" -> None, onnxruntime's default, where allowed)."""
    out: list[int | None] = []
    for part in text.split(","):
        if allow_all and part.strip() == "all":
            out.append(None)
        elif part.strip().isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise argparse.ArgumentTypeError(f"not a positive integer{' or all' if allow_all else ''}: {part!r}")
    return out


def package_arg(text: str) -> tuple[str, Path]:
    """`--package NAME=DIR` of the benchmarks that measure packages as they are (this one, front.py,
    cross.py): (NAME, the folder), DIR a bundled package's name (`package.BUNDLED_NAMES`: `default`, `ensemble`; `package.package_path`)
    or a folder; it must hold a package."""
    name, sep, where = text.partition("=")
    try:
        path = package_path(where)
    except PackageError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if not sep or not name or not (path / "manifest.json").exists():
        raise argparse.ArgumentTypeError(f"expected NAME=DIR with DIR a model package folder or a bundled name ({', '.join(BUNDLED_NAMES)}), got {text!r}")
    return name, path


def timed_passes(runs: dict[Any, Callable[[], Any]], repeats: int) -> dict[Any, list[float]]:
    """Seconds of each callable, `repeats` passes, the callables taking turns within each pass."""
    seconds: dict[Any, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[key].append(time.perf_counter() - start)
    return seconds


def rates(tokens: int, seconds: dict[Any, list[float]], default: Any) -> dict[Any, dict[str, float]]:
    """Tokens/s (median pass), the spread of the passes, and the ratio to the `default` setting's rate."""
    out = {}
    for key, s in seconds.items():
        median = statistics.median(s)
        out[key] = {"tokens_per_s": round(tokens / median), "spread": round((max(s) - min(s)) / median, 3)}
    base = out[default]["tokens_per_s"]
    for row in out.values():
        row["ratio_to_default"] = round(row["tokens_per_s"] / base, 3)
    return out


def verdict(table: dict[Any, dict[str, float]], default: Any, repeats: int) -> dict[str, Any]:
    """The fastest setting, and whether it beats the default by more than the spread of either's passes
    (None with one pass: no spread to judge by)."""
    best = max(table, key=lambda k: table[k]["tokens_per_s"])
    noise = max(table[best]["spread"], table[default]["spread"])
    ratio = table[best]["ratio_to_default"]
    return {"best": list(best), "ratio_to_default": ratio, "noise": noise,
            "beats_default_beyond_noise": ratio > 1 + noise if repeats > 1 else None}


def label(threads: int | None) -> str:
    return "all" if threads is None else str(threads)


def measure(pkg: Path, sentences: list[list[str]], args: argparse.Namespace, d: dict[str, Any]) -> dict[str, Any]:
    tokens = sum(map(len, sentences))
    # The default's thread count is measured too, even when --threads leaves it out (its cell is the baseline).
    taggers = {t: Tagger.load(pkg, device="cpu", threads=t) for t in dict.fromkeys([*args.threads, d["threads"]])}
    for tagger in taggers.values():  # warm every bucket's session and arena once, outside the timing
        tagger.tag_batch(sentences[:512], batch_size=max(args.batch_sizes))

    # Batched: every (T, W, B) once a pass, in turn.
    grid = list(itertools.product(args.threads, args.workers, args.batch_sizes))
    default = (d["threads"], d["workers"], d["batch_size"])
    if default not in grid:
        grid.append(default)
    runs = {key: (lambda t=key[0], w=key[1], b=key[2]: taggers[t].tag_batch(sentences, batch_size=b, workers=w)) for key in grid}
    batched = rates(tokens, timed_passes(runs, args.repeats), default)
    result: dict[str, Any] = {
        "batched": [{"threads": label(t), "workers": w, "batch_size": b, **row, "default": (t, w, b) == default}
                    for (t, w, b), row in batched.items()],
        "batched_verdict": {**verdict(batched, default, args.repeats), "default": list(default)},
    }
    best = result["batched_verdict"]["best"]
    result["batched_verdict"]["best"] = {"threads": label(best[0]), "workers": best[1], "batch_size": best[2]}

    # One 20-token sentence at a time, for each T.
    twenty = [s for s in sentences if len(s) == 20][:300]
    samples: dict[int | None, list[float]] = {t: [] for t in taggers}
    for _ in range(args.repeats):
        for s in twenty:
            for t, tagger in taggers.items():
                start = time.perf_counter()
                tagger.tag(s)
                samples[t].append(time.perf_counter() - start)
    result["single_sentence"] = {
        "sentences": len(twenty),
        "rows": [{"threads": label(t), "default": t == d["threads"],
                  "p50_ms": round(float(np.percentile(v, 50)) * 1e3, 3), "p99_ms": round(float(np.percentile(v, 99)) * 1e3, 3)}
                 for t, v in samples.items() if v],
    }

    # Raw text through pipe, on the tagger of onnxruntime's default threads (or the first loaded).
    if args.pipe:
        chosen = d["threads"] if d["threads"] in taggers else next(iter(taggers))
        tagger = taggers[chosen]
        texts = [" ".join(s) for s in sentences]
        pipe_default = (d["pipe_n_threads"] or d["workers"], d["pipe_batch_size"])
        cells = sorted(set(itertools.product(args.pipe_threads, args.pipe_batch_sizes)) | {pipe_default})

        def pipe_run(n: int, b: int) -> None:
            for doc in tagger.pipe(texts, batch_size=b, n_threads=n):
                doc.entities  # Docs build their parts on first access

        piped = rates(tokens, timed_passes({c: (lambda c=c: pipe_run(*c)) for c in cells}, args.repeats), pipe_default)
        result["pipe"] = {"tagger_threads": label(chosen),
                          "rows": [{"n_threads": n, "batch_size": b, **row, "default": (n, b) == pipe_default} for (n, b), row in piped.items()],
                          "verdict": {**verdict(piped, pipe_default, args.repeats), "default": list(pipe_default)}}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=package_arg, action="append", help="NAME=DIR, repeatable (DIR a folder or a bundled name: default, ensemble)")
    parser.add_argument("--sentences", type=int, default=None, help="only the first N validation sentences (quick runs)")
    parser.add_argument("--repeats", type=int, default=3, help="passes over each setting (median reported)")
    parser.add_argument("--threads", type=lambda s: ints(s, allow_all=True), default=[1, 2, None], help="intra-op threads (all: onnxruntime's default)")
    parser.add_argument("--workers", type=ints, default=[1, 2], help="tag_batch workers")
    parser.add_argument("--batch-sizes", type=ints, default=[16, 32, 64, 128, 256], help="tag_batch batch sizes")
    parser.add_argument("--pipe", action=argparse.BooleanOptionalAction, default=True, help="also time pipe on raw text")
    parser.add_argument("--pipe-threads", type=ints, default=[1, 2], help="pipe n_threads")
    parser.add_argument("--pipe-batch-sizes", type=ints, default=None, help="pipe batch sizes (default: its default, /4 and /16)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    d = current_defaults()
    args.pipe_batch_sizes = args.pipe_batch_sizes or [d["pipe_batch_size"], d["pipe_batch_size"] // 4, d["pipe_batch_size"] // 16]
    packages = args.package or [package_arg("default=default")]

    _, valid = run_splits({})
    if args.sentences is not None:
        valid = valid[: args.sentences]
    sentences = [valid.sentence(i).words for i in range(len(valid))]
    print(f"validation: {len(sentences)} sentences, {valid.n_tokens} tokens; defaults from the code: {d}")
    doc: dict[str, Any] = {"defaults": d, "sentences": len(sentences), "tokens": valid.n_tokens, "repeats": args.repeats,
                           "load_average_before": load_average(), "packages": {}}
    for name, pkg in packages:
        result = doc["packages"][name] = {"path": str(pkg), **measure(pkg, sentences, args, d)}
        print(f"\n== {name} ({pkg})\n{'T':>4} {'W':>2} {'B':>4} {'tokens/s':>9} {'ratio':>6} {'spread':>6}")
        for row in result["batched"]:
            print(f"{row['threads']:>4} {row['workers']:>2} {row['batch_size']:>4} {row['tokens_per_s']:>9} "
                  f"{row['ratio_to_default']:>6} {row['spread']:>6}{'  <- default' if row['default'] else ''}")
        print("batched best:", result["batched_verdict"])
        for row in result["single_sentence"]["rows"]:
            print(f"tag() 20 tokens, T={row['threads']}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms{'  <- default' if row['default'] else ''}")
        for row in result.get("pipe", {}).get("rows", []):
            print(f"pipe n_threads={row['n_threads']} batch_size={row['batch_size']}: {row['tokens_per_s']} tokens/s, "
                  f"ratio {row['ratio_to_default']}, spread {row['spread']}{'  <- default' if row['default'] else ''}")
        if "pipe" in result:
            print("pipe best:", result["pipe"]["verdict"])
    doc["load_average_after"] = load_average()
    if args.json:
        write_json(args.json, doc)


if __name__ == "__main__":
    main()
