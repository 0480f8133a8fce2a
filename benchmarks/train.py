"""Training speed: the fused LSTM operator vs unrolled `LSTMCell`s, same data, same run.

With `--crf`, a third variant (fused LSTM + CRF output layer, `ner-fast train --crf`) measures what
the CRF costs against the fused softmax model.

Both variants start from the same parameters and train on the same batches in the same order
(the first sentences of the bundled corpus, the tutorial's buckets, batch 50, Adam) through the
training loop of `ner_fast.train` (forward, backward, update, and the per-batch metric collection).
A first pass over the data binds every bucket's graph and is not timed; then `--passes` passes
are timed, alternating between the variants. The figure is real (non-padding) tokens per second; the ratio is fused / unfused.

Usage: ``python benchmarks/train.py [--sentences N] [--passes N] [--crf] [--json FILE]``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")

from ner_fast.train import flush_denormals  # noqa: E402

flush_denormals()  # as `ner-fast train` does, before MXNet starts its threads

import mxnet as mx  # noqa: E402

from ner_fast.checkpoint import init_params  # noqa: E402
from ner_fast.iterators import BucketIter  # noqa: E402
from ner_fast.metrics import TagScheme  # noqa: E402
from ner_fast.prepare import prepare  # noqa: E402
from ner_fast.config import TrainConfig  # noqa: E402
from ner_fast.train import make_module, model_config_for, run_epoch  # noqa: E402


class Variant:
    """One model variant (`arch`: ModelConfig overrides), bound and warmed up on the benchmark data."""

    def __init__(self, arch: dict[str, bool], data: Any, batch_size: int, seed: int):
        cfg = TrainConfig(out="", batch_size=batch_size, arch=arch, seed=seed)
        config = model_config_for(cfg, data.vocabs, int(data.settings["max_token_chars"]))
        self.it = BucketIter(data.splits["train"], batch_size, shuffle=True, seed=seed)
        mx.random.seed(seed)
        self.module = make_module(config, init_params(config, seed), [mx.cpu()], batch_size, self.it.default_bucket_key)
        self.module.init_optimizer(optimizer="adam", optimizer_params={"learning_rate": 0.01, "rescale_grad": 1.0})
        self.scheme = TagScheme(data.vocabs.tags.itos)
        self.crf = config.crf
        self.tokens = self.batches = 0
        self.seconds = 0.0
        self.loss = 0.0
        self.it.start_epoch(0)
        # binds every bucket
        run_epoch(self.module, self.it, self.scheme, train=True, desc="warm-up", progress=False, crf=self.crf)

    def timed_pass(self, epoch: int) -> None:
        """One more timed pass over the training sentences."""
        self.it.start_epoch(epoch)
        start = time.perf_counter()
        scores, _ = run_epoch(self.module, self.it, self.scheme, train=True, desc="timed", progress=False, crf=self.crf)
        self.seconds += time.perf_counter() - start
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
            "final_train_loss": self.loss,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=3000, help="first N sentences of the corpus (80%% train)")
    parser.add_argument("--passes", type=int, default=4, help="timed passes over the training sentences")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crf", action="store_true", help="also time the fused model with a CRF output layer")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    data = prepare(max_sentences=args.sentences, batch_size=args.batch_size)
    archs = {"fused": {"fused": True}, "unfused": {"fused": False}}
    if args.crf:
        archs["fused+crf"] = {"fused": True, "crf": True}
    variants = {name: Variant(arch, data, args.batch_size, args.seed) for name, arch in archs.items()}
    # Alternate the timed passes so a change in machine load hits both variants alike.
    for p in range(args.passes):
        for variant in variants.values():
            variant.timed_pass(p + 1)
    results = {name: v.figures() for name, v in variants.items()}
    ratio = results["fused"]["tokens_per_s"] / results["unfused"]["tokens_per_s"]
    print(f"training speed, {args.sentences} sentences (80% train), {args.passes} timed passes, batch {args.batch_size}")
    print(f"{'variant':10}{'tokens/s':>12}{'ms/batch':>10}{'batches':>9}{'last loss':>11}")
    for name, r in results.items():
        print(f"{name:10}{r['tokens_per_s']:12,.0f}{r['ms_per_batch']:10.1f}{r['batches']:9d}{r['final_train_loss']:11.4f}")
    print(f"fused / unfused: {ratio:.2f}x")
    crf_cost = results["fused"]["tokens_per_s"] / results["fused+crf"]["tokens_per_s"] if args.crf else None
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
            },
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
