"""The character cache (package format 2, `ner_fast.char_cache`) against the single graph, in one run.

    python benchmarks/charcache.py --run RUN_DIR [--work DIR] [--quantize int8] [--repeats 3]
        [--capacity 50000] [--json FILE]

RUN_DIR (a `ner-fast train` folder) is exported twice into `--work` (`export_model`, the dynamic graph,
`--quantize`): `split` with the character graph (`char_graph=True`, what the tagger caches) and `single`
without (format 1: every batch's graph runs the CNN on its distinct character rows). Measured on the GMB
validation split (sequential 80/20 of the bundled corpus, `overhead.validation_sentences`), the two
packages taking turns, each tagger loaded once with 1 intra-op thread:

- `tag_batch` tokens/s at batch 64, workers 1 and 2: the median of `--repeats` passes. The split tagger's
  first pass is also recorded alone (`cold`: its cache empty, as a fresh process starts);
- p50 of one 20-token `tag()` (validation sentences of at least 20 tokens, cut to 20) after a warm-up
  pass, in rounds of 100 calls;
- the cache's own cost: seconds inside `CharCache.features` per token looked up (keys, dict lookups,
  the character graph on the misses, the `take`), over a warm pass, and the share of tokens it found.

Ratios split / single (throughput: > 1 is faster; p50: < 1 is faster). The tags of both packages must
agree on every token (the probabilities are the same floats: tests/training/test_char_graph.py).
Writes the JSON (`--json`) with the CPU model, flags and cores (`_machine.write_json`).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from ner_fast.char_cache import DEFAULT_CHAR_CACHE
from ner_fast.tagger import Tagger
from ner_fast.training.export import export_model
from _machine import load_average, write_json  # the CPU (model, flags, cores) in every result
from overhead import validation_sentences  # benchmarks/overhead.py: the GMB validation split, written once

BATCH = 64
ROUND = 100


def timed_pass(tagger: Tagger, sentences: list[list[str]], pos: Any, workers: int) -> tuple[float, list[list[str]]]:
    start = time.perf_counter()
    tags = tagger.tag_batch(sentences, pos, batch_size=BATCH, workers=workers)
    return time.perf_counter() - start, tags


def cache_cost(tagger: Tagger, sentences: list[list[str]], pos: Any) -> dict[str, float]:
    """Seconds in `CharCache.features` per token looked up over one (warm) pass, and the share found."""
    cache = tagger._chars
    assert cache is not None
    inner = cache.features
    spent = [0.0, 0]
    held = len(cache)

    def features(rows: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        try:
            return inner(rows)
        finally:
            spent[0] += time.perf_counter() - start
            spent[1] += len(rows)

    cache.features = features  # type: ignore[method-assign]
    try:
        tagger.tag_batch(sentences, pos, batch_size=BATCH, workers=1)
    finally:
        del cache.features
    return {"us_per_token": spent[0] / max(spent[1], 1) * 1e6, "positions": spent[1], "rows_held": len(cache),
            "new_rows_this_pass": len(cache) - held}


def p50_one_sentence(taggers: dict[str, Tagger], sentences: list[list[str]], pos: Any) -> dict[str, float]:
    """p50 (ms) of `tag()` on 20-token sentences, the taggers taking turns in rounds of `ROUND` calls."""
    seconds: dict[str, list[float]] = {name: [] for name in taggers}
    for name, tagger in taggers.items():  # warm-up: every sentence once
        for i, s in enumerate(sentences):
            tagger.tag(s, pos[i] if pos else None)
    for start in range(0, len(sentences), ROUND):
        for name, tagger in taggers.items():
            for i in range(start, min(start + ROUND, len(sentences))):
                t = time.perf_counter()
                tagger.tag(sentences[i], pos[i] if pos else None)
                seconds[name].append(time.perf_counter() - t)
    return {name: statistics.median(s) * 1e3 for name, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a ner-fast train folder")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/out/charcache"))
    parser.add_argument("--quantize", default="int8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--capacity", type=int, default=DEFAULT_CHAR_CACHE)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    packages = {
        "split": export_model(args.run, args.work / "split", quantize=args.quantize, char_graph=True, force=True),
        "single": export_model(args.run, args.work / "single", quantize=args.quantize, char_graph=False, force=True),
    }
    load_before = load_average()
    first = Tagger.load(packages["single"], threads=1)
    sentences, pos = validation_sentences(first.uses_pos)
    tokens = sum(map(len, sentences))
    result: dict[str, Any] = {"args": vars(args), "sentences": len(sentences), "tokens": tokens, "load_before": load_before}
    for workers in (1, 2):
        taggers = {name: Tagger.load(p, threads=1, workers=workers, char_cache=args.capacity) for name, p in packages.items()}
        cold, tags = timed_pass(taggers["split"], sentences, pos, workers)
        _, reference = timed_pass(taggers["single"], sentences, pos, workers)
        assert tags == reference, "the two packages disagree on some tag"
        times: dict[str, list[float]] = {name: [] for name in taggers}
        for _ in range(args.repeats):
            for name, tagger in taggers.items():
                times[name].append(timed_pass(tagger, sentences, pos, workers)[0])
        speed = {name: tokens / statistics.median(t) for name, t in times.items()}
        result[f"workers_{workers}"] = {
            "tokens_per_s": speed, "split_cold_tokens_per_s": tokens / cold,
            "ratio_split_over_single": speed["split"] / speed["single"],
            "cache": cache_cost(taggers["split"], sentences, pos) if workers == 1 else None,
        }
    long = [(s[:20], p[:20] if pos else None) for s, p in zip(sentences, pos or [None] * len(sentences)) if len(s) >= 20][:500]
    taggers = {name: Tagger.load(p, threads=1) for name, p in packages.items()}
    p50 = p50_one_sentence(taggers, [s for s, _ in long], [p for _, p in long] if pos else None)
    result["tag_20_tokens_p50_ms"] = {**p50, "ratio_split_over_single": p50["split"] / p50["single"], "sentences": len(long)}
    result["load_after"] = load_average()
    for key in ("workers_1", "workers_2"):
        r = result[key]
        print(f"{key}: split {r['tokens_per_s']['split']:.0f} tok/s (cold {r['split_cold_tokens_per_s']:.0f}),"
              f" single {r['tokens_per_s']['single']:.0f} tok/s, ratio {r['ratio_split_over_single']:.2f}")
    cost = result["workers_1"]["cache"]
    print(f"cache: {cost['us_per_token']:.2f} us a position (warm), {cost['rows_held']} rows held")
    print(f"tag() 20 tokens p50: split {p50['split']:.3f} ms, single {p50['single']:.3f} ms,"
          f" ratio {result['tag_20_tokens_p50_ms']['ratio_split_over_single']:.2f}")
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
