"""Training speed: the fused LSTM operator vs unrolled `LSTMCell`s, same data, same run.

With `--crf`, a third variant (fused LSTM + CRF output layer, `ner-fast train --crf`) measures what
the CRF costs against the fused softmax model.

Both variants start from the same parameters and train on the same batches in the same order
(the first sentences of the bundled corpus, the tutorial's buckets, batch 50, Adam) through the
training pass of `ner_fast.training.epoch.run_epoch` (forward, backward, update, and the per-batch metric collection).
A first pass over the data binds every bucket's graph and is not timed; then `--passes` passes
are timed, alternating between the variants. The figure is real (non-padding) tokens per second; the ratio is fused / unfused.

Every variant's figures include its CPU utilisation: process CPU time (all threads) over wall time
during the timed passes (2.0 = both cores of a 2-core machine busy).

`--compare-threads A,B` measures instead the `fused` variant under two `OMP_NUM_THREADS` values, in
one run: each timed pass is a fresh process of this script (bound and warmed up untimed), the two
settings taking turns, and the ratio is B's tokens/s over A's. `1` is what MXNet 1.x chose by itself on
a 2-core machine (half the processors), `default` is `ner_fast.training.cpu.omp_threads()` (every core),
what `ner-fast train` now sets, and `split` is one CPU context per core with one OpenMP thread each
(`ner-fast train --context cpu:0,cpu:1`: each context takes half of every batch, on its own engine
thread, and the gradients are summed).

Usage: ``python benchmarks/train.py [--sentences N] [--passes N] [--crf] [--variants ...]
[--compare-threads 1,default] [--json FILE]``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any

from ner_fast.training.cpu import flush_denormals, omp_threads, set_mxnet_threads  # noqa: E402

flush_denormals()  # as `ner-fast train` does, before MXNet starts its threads
set_mxnet_threads()  # likewise (a value in the environment wins: `--compare-threads` sets it)

import mxnet as mx  # noqa: E402

from ner_fast.checkpoint import init_params  # noqa: E402
from ner_fast.training.iterators import BucketIter  # noqa: E402
from ner_fast.metrics import TagScheme  # noqa: E402
from ner_fast.prepare import prepare  # noqa: E402
from ner_fast.config import TrainConfig  # noqa: E402
from ner_fast.training.epoch import make_module, run_epoch  # noqa: E402
from ner_fast.training.run_setup import model_config_for  # noqa: E402
from _machine import load_average, write_json  # the CPU (model, flags, cores) in every result


class Variant:
    """One model variant (`arch`: ModelConfig overrides), bound and warmed up on the benchmark data."""

    def __init__(self, arch: dict[str, bool], data: Any, batch_size: int, seed: int, contexts: int = 1):
        cfg = TrainConfig(out="", batch_size=batch_size, arch=arch, seed=seed)
        config = model_config_for(cfg, data.vocabs, int(data.settings["max_token_chars"]))
        self.it = BucketIter(data.splits["train"], batch_size, shuffle=True, seed=seed)
        mx.random.seed(seed)
        devices = [mx.cpu(i) for i in range(contexts)]
        self.module = make_module(config, init_params(config, seed), devices, batch_size, self.it.default_bucket_key)
        # As `ner-fast train` does: each context's gradient is a mean over its share of the batch.
        self.module.init_optimizer(
            kvstore="local", optimizer="adam", optimizer_params={"learning_rate": 0.01, "rescale_grad": 1.0 / contexts}
        )
        self.scheme = TagScheme(data.vocabs.tags.itos)
        self.crf = config.crf
        self.tokens = self.batches = 0
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.loss = 0.0
        self.it.start_epoch(0)
        # binds every bucket
        run_epoch(self.module, self.it, self.scheme, train=True, desc="warm-up", progress=False, crf=self.crf)

    def timed_pass(self, epoch: int) -> None:
        """One more timed pass over the training sentences."""
        self.it.start_epoch(epoch)
        start, cpu_start = time.perf_counter(), time.process_time()
        scores, _ = run_epoch(self.module, self.it, self.scheme, train=True, desc="timed", progress=False, crf=self.crf)
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.process_time() - cpu_start
        self.tokens += scores.tokens
        self.batches += self.it.num_batches
        self.loss = float(scores.loss or 0.0)

    def figures(self) -> dict[str, float]:
        return {
            "tokens_per_s": self.tokens / self.seconds,
            "ms_per_batch": 1000 * self.seconds / self.batches,
            "batches": self.batches,
            "tokens": self.tokens,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "cpu_utilisation": self.cpu_seconds / self.seconds,
            "final_train_loss": self.loss,
        }


def compare_threads(args: argparse.Namespace) -> dict[str, Any]:
    """`--compare-threads`: fresh processes of this script, the two OMP_NUM_THREADS values in turn."""
    settings = args.compare_threads.split(",")
    if len(settings) != 2:
        raise SystemExit("--compare-threads takes two values, e.g. 1,default")
    cores = omp_threads()
    # name -> (OMP_NUM_THREADS, CPU contexts)
    values = {
        name: (str(cores), 1) if name == "default" else ("1", cores) if name == "split" else (name, 1)
        for name in settings
    }
    totals = {name: {"tokens": 0, "seconds": 0.0, "cpu_seconds": 0.0, "losses": []} for name in settings}
    load_before = load_average()
    with tempfile.TemporaryDirectory() as work:
        for p in range(args.passes):
            for name in settings:
                out = os.path.join(work, f"{p}-{name}.json")
                omp, contexts = values[name]
                command = [sys.executable, __file__, "--sentences", str(args.sentences), "--passes", "1",
                           "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--variants", "fused",
                           "--contexts", str(contexts), "--json", out]
                env = {**os.environ, "OMP_NUM_THREADS": omp}
                env.pop("MXNET_CPU_WORKER_NTHREADS", None)
                set_mxnet_threads(env, cpu_contexts=contexts)  # as `ner-fast train --context cpu:0,cpu:1` does
                subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
                with open(out) as f:
                    r = json.load(f)["results"]["fused"]
                t = totals[name]
                t["tokens"] += r["tokens"]
                t["seconds"] += r["seconds"]
                t["cpu_seconds"] += r["cpu_seconds"]
                t["losses"].append(r["final_train_loss"])
    results = {
        name: {"omp_num_threads": int(values[name][0]), "cpu_contexts": values[name][1], "tokens_per_s": t["tokens"] / t["seconds"],
               "cpu_utilisation": t["cpu_seconds"] / t["seconds"], **t}
        for name, t in totals.items()
    }
    a, b = settings
    ratio = results[b]["tokens_per_s"] / results[a]["tokens_per_s"]
    load_after = load_average()
    print(f"fused training, {args.sentences} sentences, {args.passes} timed passes each; load {load_before} -> {load_after}")
    for name, r in results.items():
        print(f"OMP_NUM_THREADS={r['omp_num_threads']}, {r['cpu_contexts']} CPU context(s) ({name}): {r['tokens_per_s']:,.0f} tokens/s, "
              f"CPU utilisation {r['cpu_utilisation']:.2f}, train loss after each pass {r['losses']}")
    print(f"{b} / {a}: {ratio:.2f}x")
    return {"benchmark": "train-threads", "settings": vars(args), "results": results, "ratio": ratio,
            "load_average_before": load_before, "load_average_after": load_after, "cpus": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=3000, help="first N sentences of the corpus (80%% train)")
    parser.add_argument("--passes", type=int, default=4, help="timed passes over the training sentences")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crf", action="store_true", help="also time the fused model with a CRF output layer")
    parser.add_argument("--variants", help="comma-separated subset of fused,unfused,fused+crf")
    parser.add_argument("--compare-threads", help="two settings, e.g. 1,default or default,split: an OMP_NUM_THREADS"
                        " value, 'default' (every core, one context) or 'split' (one CPU context per core, 1 thread each)")
    parser.add_argument("--contexts", type=int, default=1, help="CPU contexts (data parallel over a batch's halves)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    if args.compare_threads:
        doc = compare_threads(args)
        if args.json:
            write_json(args.json, doc)
        return

    data = prepare(max_sentences=args.sentences, batch_size=args.batch_size)
    # The softmax output layer for `fused` and `unfused`: the default recipe has the CRF, which only
    # `fused+crf` measures (otherwise all three would carry it and --crf would compare a model with itself).
    archs = {"fused": {"fused": True, "crf": False}, "unfused": {"fused": False, "crf": False}}
    if args.crf:
        archs["fused+crf"] = {"fused": True, "crf": True}
    if args.variants:
        every = {**archs, "fused+crf": {"fused": True, "crf": True}}
        archs = {name: every[name] for name in args.variants.split(",")}
    variants = {name: Variant(arch, data, args.batch_size, args.seed, args.contexts) for name, arch in archs.items()}
    # Alternate the timed passes so a change in machine load hits both variants alike.
    for p in range(args.passes):
        for variant in variants.values():
            variant.timed_pass(p + 1)
    results = {name: v.figures() for name, v in variants.items()}
    ratio = results["fused"]["tokens_per_s"] / results["unfused"]["tokens_per_s"] if {"fused", "unfused"} <= set(results) else None
    print(f"training speed, {args.sentences} sentences (80% train), {args.passes} timed passes, batch {args.batch_size}")
    print(f"{'variant':10}{'tokens/s':>12}{'ms/batch':>10}{'batches':>9}{'CPU util':>9}{'last loss':>11}")
    for name, r in results.items():
        print(f"{name:10}{r['tokens_per_s']:12,.0f}{r['ms_per_batch']:10.1f}{r['batches']:9d}{r['cpu_utilisation']:9.2f}{r['final_train_loss']:11.4f}")
    if ratio is not None:
        print(f"fused / unfused: {ratio:.2f}x")
    crf_cost = results["fused"]["tokens_per_s"] / results["fused+crf"]["tokens_per_s"] if {"fused", "fused+crf"} <= set(results) else None
    if crf_cost is not None:
        print(f"fused / fused+crf: {crf_cost:.2f}x (time the CRF layer adds)")
    if args.json:
        doc = {
            "benchmark": "train",
            "settings": vars(args),
            "results": results,
            "ratio_fused_over_unfused": ratio,
            "ratio_fused_over_fused_crf": crf_cost,
            "machine": {
                "python": platform.python_version(),
                "mxnet": mx.__version__,
                "cpus": os.cpu_count(),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "load_average": load_average(),
            },
        }
        write_json(args.json, doc)


if __name__ == "__main__":
    main()
