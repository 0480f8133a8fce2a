"""Flush-to-zero: MXNet's Adam update of the GMB word embedding, with and without `flush_denormals`.

During training Adam multiplies the first moment of every embedding row missing from a batch by
0.9 per step, so after about one epoch (~800 steps) many rows sit in the denormal float range,
where x86 arithmetic is very slow; the full GMB run slowed from 156 s to 250 s an epoch. `ner-fast
train` switches the process to flush-to-zero first (`ner_fast.training.cpu.flush_denormals`). The mode
must be set before MXNet starts its threads, so each variant runs in its own Python process: the
update of a (28830, 150) weight (the GMB vocabulary x 150) with a zero gradient (rows absent from
the batch), `--fraction` of the first moment's rows denormal (1e-40), the rest at 1e-3.
The figure is milliseconds an update; the ratio is without / with flush-to-zero.

Usage: ``python benchmarks/denormals.py [--updates N] [--fraction F] [--json FILE]``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

from _machine import write_json  # the CPU (model, flags, cores) in every result

CHILD = r"""
import json, sys, time
import numpy as np
from ner_fast.training.cpu import flush_denormals
flushed = flush_denormals() if sys.argv[1] == "flush" else False
import mxnet as mx
updates, fraction = int(sys.argv[2]), float(sys.argv[3])
rows, dim = 28830, 150
rng = np.random.default_rng(0)
weight = mx.nd.array(rng.normal(0, 0.1, (rows, dim)))
grad = mx.nd.zeros((rows, dim))
mean = np.full((rows, dim), 1e-3, dtype=np.float32)
mean[: int(rows * fraction)] = 1e-40
mean, var = mx.nd.array(mean), mx.nd.array(np.full((rows, dim), 1e-6, dtype=np.float32))
mx.nd.adam_update(weight, grad, mean, var, out=weight, lr=0.001, clip_gradient=5.0)  # warm-up
mx.nd.waitall()
start = time.perf_counter()
for _ in range(updates):
    mx.nd.adam_update(weight, grad, mean, var, out=weight, lr=0.001, clip_gradient=5.0)
mx.nd.waitall()
print(json.dumps({"ms_per_update": 1000 * (time.perf_counter() - start) / updates, "flush_to_zero": flushed}))
"""


def run(variant: str, updates: int, fraction: float) -> dict[str, float]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, variant, str(updates), str(fraction)],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=10, help="timed updates per variant")
    parser.add_argument("--fraction", type=float, default=0.5, help="share of embedding rows whose moment is denormal")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    # The default mode would only slow the denormal updates, and that takes the same time in either
    # order: run each variant once, baseline first.
    results = {name: run(name, args.updates, args.fraction) for name in ("default", "flush")}
    ratio = results["default"]["ms_per_update"] / results["flush"]["ms_per_update"]
    print(f"Adam update of a 28830 x 150 embedding, {args.fraction:.0%} of its rows' moments denormal:")
    for name, r in results.items():
        print(f"  {name:8} {r['ms_per_update']:9.1f} ms per update (flush-to-zero: {r['flush_to_zero']})")
    print(f"default / flush-to-zero: {ratio:.1f}x")
    if args.json:
        doc = {
            "benchmark": "denormals",
            "settings": vars(args),
            "results": results,
            "ratio_default_over_flush": ratio,
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
                        "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
        }  # fmt: skip
        write_json(args.json, doc)


if __name__ == "__main__":
    main()
