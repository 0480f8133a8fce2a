"""Scale-out benchmark: `ner-fast tag --output-dir` on Dask against the same partitions tagged in-line.

    python benchmarks/scale.py [--package PKG] [--tokens 200000] [--json FILE]

Input: the first GMB sentences of the bundled corpus (about `--tokens` tokens), each sentence's tokens
joined by single spaces, one document a line, in a text file. Model: `--package`, else the bundled default
package, else random weights at the tuned recipe's dimensions without POS, exported as `ner-fast export`
does by default (`benchmarks/tagger.py` `random_package`: a graph's cost depends on its dimensions, not
on its weights).

In one run, all with one onnxruntime thread per process:

- `inline`: `ner_fast.partition.tag_partition` on every partition in this process (read, tag with
  `Tagger.pipe`, write the part), no Dask: the baseline;
- `dask_1`, `dask_2`: `ner_fast.dask.tag_files` on a `LocalCluster` of 1 and 2 worker processes on
  127.0.0.1, both started first, each worker's tagger loaded and run once on 300 documents, as the
  in-line tagger is (the start-up is reported apart: `cluster_start_s`, `tagger_load_s`);
- the three interleaved, `--repeats` rounds; tokens/s of the best round (the machine is shared: the
  best round is the one least disturbed; every round's seconds are kept);
- overhead of a partition: `--overhead-partitions` partitions of one two-token document each, in-line
  and on the 1-worker cluster (best of the rounds): seconds per partition, and Dask's extra per partition
  (task scheduling, transfer, result, manifest update) = the difference.

Figures: tokens/s, `scaling` = dask_2 / dask_1 tokens/s, `dask_1_vs_inline` = dask_1 / inline tokens/s,
and the per-partition overheads. `os.getloadavg()` before and after is recorded.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ner_fast.corpus import read_corpus
from ner_fast.partition import plan_partitions, tag_partition, tag_texts
from _machine import load_average, write_json  # the CPU (model, flags, cores) in every result

sys.path.insert(0, str(Path(__file__).resolve().parent))
#: Documents each process tags before the timed runs.
WARM_DOCUMENTS = 300


def make_input(folder: Path, tokens: int) -> tuple[Path, int, int]:
    """The first GMB sentences holding about `tokens` tokens, one a line; returns (file, documents, tokens)."""
    corpus = read_corpus()
    lengths = corpus.lengths.tolist()
    lines, total = [], 0
    for i, n in enumerate(lengths):
        if total >= tokens:
            break
        lines.append(" ".join(corpus.sentence(i).words))
        total += n
    path = folder / "gmb_sentences.txt"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path, len(lines), total


def the_package(given: str | None, folder: Path) -> tuple[Path, str]:
    """(package, where it came from)."""
    if given:
        return Path(given), "given"
    from ner_fast.package import DEFAULT_BUCKETS, PackageError, default_package_path

    try:
        return default_package_path(), "bundled default package"
    except PackageError:
        from tagger import random_package

        return random_package(folder, pos=False, buckets=DEFAULT_BUCKETS), "random weights, tuned dimensions, no POS"


def warm(package: str, checksum: str, sample: list[str]) -> None:
    """Load this process's tagger and run it once on `sample` (onnxruntime's first run of each graph sets
    it up), so that the timed runs compare steady states. Returns nothing: a tagger does not travel."""
    tag_texts(sample, package, checksum, 1)


def run_inline(path: Path, package: Path, size: int, out: Path) -> float:
    """Seconds to plan, tag and write every partition in this process."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    started = time.perf_counter()
    for part in plan_partitions([path], "text", size=size):
        tag_partition(part, out, package)
    return time.perf_counter() - started


def run_dask(client: Any, path: Path, package: Path, size: int, out: Path) -> float:
    """Seconds of `tag_files` on the cluster of `client` (plan, tasks, parts, manifest)."""
    from ner_fast.dask import tag_files

    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    tag_files([path], out, package, client=client, input_format="text", partition_size=size, progress=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--package", default=None, help="model package (default: bundled, else random weights)")
    parser.add_argument("--tokens", type=int, default=200_000, help="input size in tokens (whole sentences)")
    parser.add_argument("--partition-size", type=int, default=500, help="documents per partition")
    parser.add_argument("--overhead-partitions", type=int, default=300, help="one-document partitions for the overhead")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the interleaved runs")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    from distributed import Client

    from ner_fast.dask import local_cluster

    from ner_fast.package import package_checksum

    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="ner_fast_scale_") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        path, documents, tokens = make_input(work, args.tokens)
        tiny = work / "tiny.txt"
        tiny.write_text("Paris .\n" * args.overhead_partitions, encoding="utf-8")
        package, origin = the_package(args.package, work)
        checksum = package_checksum(package)
        sample = path.read_text(encoding="utf-8").splitlines()[:WARM_DOCUMENTS]
        started = time.perf_counter()
        warm(str(package.resolve()), checksum, sample)  # in-line: loaded once, not timed, as on the warmed workers
        setup: dict[str, Any] = {"inline_tagger_load_and_warm_s": round(time.perf_counter() - started, 2)}
        clients = {}
        for n in (1, 2):
            started = time.perf_counter()
            cluster = stack.enter_context(local_cluster(n))
            clients[n] = stack.enter_context(Client(cluster))
            setup[f"dask_{n}_cluster_start_s"] = round(time.perf_counter() - started, 2)
            started = time.perf_counter()
            clients[n].run(warm, str(package.resolve()), checksum, sample)
            setup[f"dask_{n}_tagger_load_and_warm_s"] = round(time.perf_counter() - started, 2)
        rounds: dict[str, list[float]] = {name: [] for name in ("inline", "dask_1", "dask_2", "inline_tiny", "dask_1_tiny")}
        for _ in range(args.repeats):
            rounds["inline"].append(run_inline(path, package, args.partition_size, work / "out"))
            rounds["dask_1"].append(run_dask(clients[1], path, package, args.partition_size, work / "out"))
            rounds["dask_2"].append(run_dask(clients[2], path, package, args.partition_size, work / "out"))
            rounds["inline_tiny"].append(run_inline(tiny, package, 1, work / "out"))
            rounds["dask_1_tiny"].append(run_dask(clients[1], tiny, package, 1, work / "out"))
    best = {name: min(times) for name, times in rounds.items()}
    speed = {name: round(tokens / best[name]) for name in ("inline", "dask_1", "dask_2")}
    per_partition = {name: round(1000 * best[name] / args.overhead_partitions, 2) for name in ("inline_tiny", "dask_1_tiny")}
    result = {
        "input": {"documents": documents, "tokens": tokens, "source": "bundled GMB sentences, one a line",
                  "partition_size": args.partition_size, "partitions": -(-documents // args.partition_size)},
        "package": origin,
        "setup": setup,
        "tokens_per_s": speed,
        "scaling_2_over_1_workers": round(speed["dask_2"] / speed["dask_1"], 3),
        "dask_1_vs_inline": round(speed["dask_1"] / speed["inline"], 3),
        "ms_per_one_document_partition": per_partition,
        "dask_overhead_ms_per_partition": round(per_partition["dask_1_tiny"] - per_partition["inline_tiny"], 2),
        "rounds_seconds": {name: [round(t, 3) for t in times] for name, times in rounds.items()},
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
