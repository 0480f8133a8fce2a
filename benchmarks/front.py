"""The speed/accuracy front (issue 12, part 1): model variants against a linear-chain CRF, in one run.

    pip install -e ".[bench]"     # sklearn-crfsuite, matplotlib
    python benchmarks/front.py --out DIR [--model NAME=CHECKPOINT ...] [--package NAME=PACKAGE ...]
        [--train h64,h100,... --epochs 3]
        [--quantize fp32,int8] [--valid-sentences N] [--crf-iterations 50] [--json FILE] [--plot FILE.png]

Variants are model packages measured as they are (`--package NAME=DIR`, DIR `default` or `ensemble` for the
bundled ones: the one distilled network and the ensemble it was distilled from, e.g. `--package default=default
--package ensemble=ensemble`), trained checkpoints given with `--model NAME=DIR`, or trained here (`--train`, names from
`VARIANTS`, or `all`) on a short schedule (`--epochs`, the same for every variant) into `DIR/models/NAME`
(a finished one there is reused, not retrained; `--prepare-only` trains and exports and measures
nothing, so that training may share the machine and a later run measures on a quiet one). Each is
exported (`export.export_model`, the dynamic graph) into `DIR/packages/NAME-fp32` and `NAME-int8`
(what `ner-fast export --quantize int8` writes: the batch-invariant int8 of `training.quantize`), reused
when present. `--quantize` may also ask for quantizations the exporter does not offer, made here from
the fp32 graph (`quantized_graph`): `int8-channel` (dynamic, per channel), `qdq` and `qoperator`
(static, per channel, calibrated on 640 training sentences). The CRF peer (sklearn-crfsuite, L-BFGS, `benchmarks/text.py`'s word features plus POS
features for the POS peer: `crf_features`) is trained here on
the same training split, once without POS features and once with them when a variant uses POS: each
variant is compared with the CRF given the same inputs.

Measured for every package and CRF, on the GMB validation split (sequential 80/20 of the bundled corpus,
as training splits it), in one run:

- entity F1 (conlleval rules, `ner_fast.metrics.score`);
- batched tokens/s end to end, tokens in -> tag names out, 2 threads: `Tagger(threads=1, workers=2)
  .tag_batch` at batch 64 (two batches at once, the faster use of 2 cores, see `Tagger`); the CRF:
  features + `predict` (crfsuite is single-threaded); the median of `--repeats` passes, the systems
  taking turns;
- p50/p99 of one 20-token sentence (`Tagger.tag`; the CRF: features + `predict_single`), the systems
  taking turns in rounds of 100 calls.

Ratios against the CRF with the same inputs: F1 difference in points, throughput ratio, p50 ratio, and
issue 12's target (F1 >= CRF + 0.5 points, throughput >= 3x, p50 <= 2x). The JSON holds every figure
and `uptime`'s load average before and after; the PNG plots F1 against tokens/s (log scale), one point
per package, the CRFs marked.
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ner_fast.atomic import atomic_write_bytes
from ner_fast.checkpoint import params_file
from ner_fast.corpus import Corpus
from ner_fast.metrics import score
from ner_fast.prepare import run_splits
from ner_fast.schemes import TagScheme
from ner_fast.package import load_package
from ner_fast.sessions import make_session_options
from ner_fast.tagger import Tagger
from text import Features  # benchmarks/text.py (this folder): the CRF peer's word features, written once
from _machine import load_average, write_json  # the CPU (model, flags, cores) in every result
from defaults import package_arg  # benchmarks/defaults.py: `--package NAME=DIR|default`, written once

# Variants `--train` knows: name -> ModelConfig overrides (TrainConfig.arch) of the tuned recipe.
VARIANTS: dict[str, dict[str, Any]] = {
    "h64": {"hidden": 64, "use_pos": False},
    "h100": {"hidden": 100, "use_pos": False},
    "h150": {"hidden": 150, "use_pos": False},
    "h200": {"hidden": 200, "use_pos": False},
    "h275": {"use_pos": False},  # the POS-free default of the raw-text issue
    "h100-w50": {"hidden": 100, "word_dim": 50, "use_pos": False},
    "h100-f25": {"hidden": 100, "filters": 25, "use_pos": False},
    # A forward-only LSTM: one direction's cost (each token sees only its left context).
    "h100-uni": {"hidden": 100, "directions": 1, "use_pos": False},
    "h200-uni": {"hidden": 200, "directions": 1, "use_pos": False},
    # POS input instead of the POS head (a model cannot have both), against the CRF with POS features.
    "h64-pos": {"hidden": 64, "use_pos": True, "pos_aux_weight": 0.0},
    "h275-pos": {"use_pos": True, "pos_aux_weight": 0.0},
}
BATCH = 64
CHUNK = 100


# ------------------------------------------------------------------------------------------ the CRF peer


def crf_features(features: Features, words: Sequence[str], pos: Sequence[str] | None = None) -> list[list[str]]:
    """crfsuite features of each token: `benchmarks/text.py`'s (`Features`: the word, its shape,
    affixes and character classes, and its neighbours'), plus, when `pos` is given, the POS tags of
    the token and of its neighbours (-1, +1)."""
    out = features.sentence(words)
    if pos is not None:
        n = len(words)
        for i, f in enumerate(out):
            f.append("pos=" + pos[i])
            f.extend(f"{d}:pos=" + (pos[i + d] if 0 <= i + d < n else "edge") for d in (-1, 1))
    return out


class CRFPeer:
    """A linear-chain CRF (sklearn-crfsuite, L-BFGS, elastic net) trained on the training split."""

    def __init__(self, train: Corpus, uses_pos: bool, iterations: int, max_sentences: int | None) -> None:
        import sklearn_crfsuite

        self.uses_pos = uses_pos
        self.features = Features()
        n = len(train) if max_sentences is None else min(len(train), max_sentences)
        # The settings of `text.train_crf` (which takes no POS features).
        self.crf = sklearn_crfsuite.CRF(
            algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=iterations, all_possible_transitions=True
        )
        start = time.perf_counter()
        sentences = [train.sentence(i) for i in range(n)]
        # A generator: crfsuite reads each sentence's features once (a list of all would take gigabytes).
        self.crf.fit(
            (crf_features(self.features, s.words, s.pos if uses_pos else None) for s in sentences),
            [s.tags for s in sentences],
        )
        self.train_seconds = time.perf_counter() - start
        self.train_sentences = n

    def tag_batch(self, sentences: Sequence[Sequence[str]], pos: Sequence[Sequence[str]] | None) -> list[list[str]]:
        return self.crf.predict(
            [crf_features(self.features, s, pos[i] if self.uses_pos and pos else None) for i, s in enumerate(sentences)]
        )

    def tag(self, words: Sequence[str], pos: Sequence[str] | None) -> list[str]:
        return self.crf.predict_single(crf_features(self.features, words, pos if self.uses_pos else None))


# ------------------------------------------------------------------------------------------ the variants


def train_variant(name: str, out: Path, epochs: int, max_sentences: int | None, seed: int) -> Path:
    """Train variant `name` of `VARIANTS` into `out` (reused if it holds a finished run)."""
    if (out / params_file("best")).exists():
        print(f"{name}: reusing {out}")
        return out
    from ner_fast.config import TrainConfig
    from ner_fast.training.train import train

    cfg = TrainConfig(
        out=str(out), epochs=epochs, patience=epochs, max_sentences=max_sentences, arch=VARIANTS[name], seed=seed
    )
    start = time.perf_counter()
    train(cfg, progress=False, echo=lambda _: None)
    print(f"{name}: trained {epochs} epochs in {time.perf_counter() - start:.0f} s")
    return out


def export_variant(model: Path, out: Path, quantize: str | None) -> Path:
    """The package of `model` at `out` (exported unless there already)."""
    if (out / "manifest.json").exists():
        return out
    from ner_fast.training.export import export_model

    return export_model(model, out, quantize=quantize)


# Quantizations measured beside the exporter's own two (fp32, and "int8": `ner-fast export`'s batch-invariant int8).
# These are made here from the fp32 package's graph: the exporter does not offer them (see the docstring).
EXTRA_KINDS = ("int8-channel", "qdq", "qoperator")
KINDS = ("fp32", "int8", *EXTRA_KINDS)


def quantized_graph(fp32: Path, kind: str, out: Path, calibration: list[list[str]]) -> Path:
    """`fp32`'s dynamic graph quantized as `kind` (one of `EXTRA_KINDS`) at `out/graph.onnx` (reused).

    int8-channel: dynamic (weights int8 per output channel, activations quantized at run time);
    qdq / qoperator: static, per channel, activation ranges calibrated (MinMax) on `calibration`
    sentences, in the QDQ format (QuantizeLinear/DequantizeLinear pairs) or as quantized operators.
    """
    graph = out / "graph.onnx"
    if graph.exists():
        return graph
    import logging

    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's advice on CNN pre-processing
    out.mkdir(parents=True, exist_ok=True)
    single = out / "fp32.onnx"  # the graph with its weights inline, as the quantizers read it
    onnx.save(onnx.load(str(fp32 / "dynamic.onnx")), str(single))
    if kind == "int8-channel":
        quantize_dynamic(str(single), str(graph), weight_type=QuantType.QInt8, per_channel=True)
    else:
        tagger = Tagger.load(fp32, device="cpu", threads=1)

        class Batches(CalibrationDataReader):
            def __init__(self) -> None:
                self.batches = iter(tagger.features(calibration, batch_size=BATCH))

            def get_next(self) -> dict[str, np.ndarray] | None:
                features = next(self.batches, None)
                return None if features is None else tagger.feeds(features)  # every input the graph takes

        fmt = QuantFormat.QDQ if kind == "qdq" else QuantFormat.QOperator
        quantize_static(str(single), str(graph), Batches(), quant_format=fmt, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    single.unlink()
    return graph


# ------------------------------------------------------------------------------------------ measuring


class System:
    """One thing on the front: its batch and single-sentence calls, and what it is."""

    def __init__(self, name: str, kind: str, uses_pos: bool, batch: Callable[..., Any], one: Callable[..., Any], info: dict[str, Any]):
        self.name, self.kind, self.uses_pos, self.batch, self.one, self.info = name, kind, uses_pos, batch, one, info


def entity_f1(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """conlleval entity P/R/F1 (`metrics.score`) of predicted tag names against gold ones."""
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("predictions do not match the gold sentences")
    names = sorted({t for s in gold for t in s} | {t for s in pred for t in s})
    index = {t: i for i, t in enumerate(names)}
    flat = lambda seqs: np.fromiter((index[t] for s in seqs for t in s), dtype=np.int64)  # noqa: E731
    scores = score(flat(gold), flat(pred), np.array([len(s) for s in gold]), TagScheme(names))
    return {"f1": round(scores.f1, 4), "precision": round(scores.precision, 4), "recall": round(scores.recall, 4)}


def measure(
    systems: list[System], words: list[list[str]], pos: list[list[str]] | None, gold: list[list[str]],
    repeats: int, calls: int,
) -> dict[str, dict[str, Any]]:
    """F1, batched tokens/s and 20-token p50/p99 of every system, the systems taking turns."""
    n_tokens = sum(len(w) for w in words)
    out: dict[str, dict[str, Any]] = {}
    for s in systems:  # untimed first pass: F1, and every shape warmed up
        pred = s.batch(words, pos if s.uses_pos else None)
        out[s.name] = {"kind": s.kind, "uses_pos": s.uses_pos, **s.info, **entity_f1(gold, pred)}
    seconds: dict[str, list[float]] = {s.name: [] for s in systems}
    for _ in range(repeats):
        for s in systems:
            start = time.perf_counter()
            s.batch(words, pos if s.uses_pos else None)
            seconds[s.name].append(time.perf_counter() - start)
    twenty = [i for i, w in enumerate(words) if len(w) == 20][:500]
    if not twenty:
        raise SystemExit("no 20-token sentence among the validation sentences measured")
    latencies: dict[str, list[float]] = {s.name: [] for s in systems}
    for s in systems:  # warm-up
        for i in twenty[:20]:
            s.one(words[i], pos[i] if pos and s.uses_pos else None)
    for r in range(max(1, calls // CHUNK)):
        for s in systems:
            for k in range(CHUNK):
                i = twenty[(r * CHUNK + k) % len(twenty)]
                p = pos[i] if pos and s.uses_pos else None
                start = time.perf_counter()
                s.one(words[i], p)
                latencies[s.name].append(time.perf_counter() - start)
    for s in systems:
        ms = np.asarray(latencies[s.name]) * 1e3
        out[s.name].update(
            tokens_per_s=round(n_tokens / float(np.median(seconds[s.name]))),
            p50_ms=round(float(np.percentile(ms, 50)), 4),
            p99_ms=round(float(np.percentile(ms, 99)), 4),
        )
    return out


def compare_with_crf(results: dict[str, dict[str, Any]]) -> None:
    """Add each package's ratios against the CRF given the same inputs, and issue 12's target."""
    for r in results.values():
        if r["kind"] == "crf":
            continue
        peer = results["crf+pos" if r["uses_pos"] else "crf"]
        r["vs_crf"] = {
            "peer": "crf+pos" if r["uses_pos"] else "crf",
            "f1_points": round(100 * (r["f1"] - peer["f1"]), 2),
            "throughput_ratio": round(r["tokens_per_s"] / peer["tokens_per_s"], 3),
            "p50_ratio": round(r["p50_ms"] / peer["p50_ms"], 3),
        }
        v = r["vs_crf"]
        r["meets_target"] = v["f1_points"] >= 0.5 and v["throughput_ratio"] >= 3 and v["p50_ratio"] <= 2


STYLE = {"fp32": ("o", "tab:blue"), "int8": ("s", "tab:green")}  # other quantizations: grey triangles
STYLE_LEGEND = (("o", "tab:blue", "ner-fast fp32"), ("s", "tab:green", "ner-fast int8"),
                ("^", "tab:gray", "int8 per channel / static"))


def plot(results: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """F1 against batched tokens/s, one point per system, the CRFs marked; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, r in results.items():
        crf = r["kind"] == "crf"
        marker, color = ("X", "tab:red") if crf else STYLE.get(r.get("quantization"), ("^", "tab:gray"))
        ax.scatter(r["tokens_per_s"], r["f1"], marker=marker, color=color, s=60 if crf else 36, zorder=3)
        ax.annotate(name, (r["tokens_per_s"], r["f1"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("batched tokens/s, tokens in -> tags out, 2 threads (log)")
    ax.set_ylabel("entity F1, GMB validation")
    ax.set_title(title, fontsize=9)
    handles = [
        plt.Line2D([], [], marker=m, color=c, linestyle="", label=label)
        for m, c, label in (*STYLE_LEGEND, ("X", "tab:red", "CRF peer"))
    ]
    ax.legend(handles=handles, fontsize=8, loc="lower left")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    atomic_write_bytes(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for trained variants and packages")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR", help="a trained checkpoint (repeatable)")
    parser.add_argument("--package", type=package_arg, action="append", default=[], metavar="NAME=DIR",
                        help="a model package measured as it is, DIR a folder or a bundled name: default, ensemble (repeatable)")
    parser.add_argument("--train", help=f"variants to train here, comma separated, or 'all' ({', '.join(VARIANTS)})")
    parser.add_argument("--epochs", type=int, default=3, help="--train: epochs of every variant (default 3)")
    parser.add_argument("--max-sentences", type=int, help="--train: only the first N corpus sentences (quick runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quantize", default="fp32,int8", help="package kinds: fp32, int8 or both (default)")
    parser.add_argument("--valid-sentences", type=int, help="measure on the first N validation sentences only")
    parser.add_argument("--crf-iterations", type=int, default=50, help="L-BFGS iterations of the CRF peer (default 50)")
    parser.add_argument("--crf-max-sentences", type=int, help="train the CRF on the first N training sentences only")
    parser.add_argument("--repeats", type=int, default=3, help="timed batched passes per system (median)")
    parser.add_argument("--latency-calls", type=int, default=1000, help="single-sentence calls per system")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--plot", type=Path, help="write the PNG plot here")
    parser.add_argument("--prepare-only", action="store_true",
                        help="train and export the variants, measure nothing: training may share the machine, and a"
                             " later run (which reuses them) measures on a quiet one")
    args = parser.parse_args()

    models: dict[str, Path] = {}
    for spec in args.model:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not (Path(folder) / "config.json").exists():
            raise SystemExit(f"--model {spec!r}: expected NAME=DIR with DIR a training checkpoint folder")
        models[name] = Path(folder)
    if args.train:
        names = list(VARIANTS) if args.train == "all" else args.train.split(",")
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            raise SystemExit(f"--train: unknown variants {unknown} (known: {', '.join(VARIANTS)})")
        for name in names:
            models[name] = train_variant(name, args.out / "models" / name, args.epochs, args.max_sentences, args.seed)
    packages: dict[str, Path] = dict(args.package)
    if not models and not packages:
        raise SystemExit("nothing to measure: give --model NAME=DIR, --package NAME=DIR or --train NAMES")
    kinds = args.quantize.split(",")
    if not set(kinds) <= set(KINDS) or not kinds:
        raise SystemExit(f"--quantize: a comma-separated list of {', '.join(KINDS)}")

    if args.prepare_only:
        for name, folder in models.items():
            for kind in {"int8" if k == "int8" else "fp32" for k in kinds}:
                print(f"{name}-{kind}: {export_variant(folder, args.out / 'packages' / f'{name}-{kind}', 'int8' if kind == 'int8' else None)}")
        return

    load_before = load_average()
    train_split, valid = run_splits({})
    n_valid = len(valid) if args.valid_sentences is None else min(len(valid), args.valid_sentences)
    sentences = [valid.sentence(i) for i in range(n_valid)]
    words = [s.words for s in sentences]
    gold = [s.tags for s in sentences]
    pos = [s.pos for s in sentences] if valid.pos is not None else None

    # Static quantization's calibration: every 60th training sentence (640 of them, all lengths).
    calibration = [train_split.sentence(i).words for i in range(0, len(train_split), max(1, len(train_split) // 640))]
    systems: list[System] = []
    for name, folder in models.items():
        for kind in kinds:
            packages = args.out / "packages"
            if kind in EXTRA_KINDS:
                fp32 = export_variant(folder, packages / f"{name}-fp32", None)
                path = quantized_graph(fp32, kind, packages / f"{name}-{kind}", calibration)
                session = ort.InferenceSession(str(path), make_session_options(1), providers=["CPUExecutionProvider"])
                tagger = Tagger(load_package(fp32), {None: session}, workers=2)
                size = path.stat().st_size
            else:
                path = export_variant(folder, packages / f"{name}-{kind}", "int8" if kind == "int8" else None)
                tagger = Tagger.load(path, device="cpu", threads=1, workers=2)
                size = sum(tagger.package.file_sizes.values())
            info = {
                "checkpoint": str(folder), "package": str(path), "quantization": kind,
                "architecture": tagger.package.model.get("architecture"), "package_bytes": size,
            }
            systems.append(System(
                f"{name}-{kind}", "ner-fast", tagger.uses_pos,
                lambda w, p, t=tagger: t.tag_batch(w, p, batch_size=BATCH), lambda w, p, t=tagger: t.tag(w, p), info,
            ))
    for name, path in packages.items():
        tagger = Tagger.load(path, device="cpu", threads=1, workers=2)
        info = {"package": str(path), "quantization": tagger.package.model.get("quantization"),
                "architecture": tagger.package.model.get("architecture"), "package_bytes": sum(tagger.package.file_sizes.values())}
        systems.append(System(
            name, "ner-fast", tagger.uses_pos,
            lambda w, p, t=tagger: t.tag_batch(w, p, batch_size=BATCH), lambda w, p, t=tagger: t.tag(w, p), info,
        ))
    crf_kinds = [False] + ([True] if any(s.uses_pos for s in systems) else [])
    for with_pos in crf_kinds:
        peer = CRFPeer(train_split, with_pos, args.crf_iterations, args.crf_max_sentences)
        info = {"iterations": args.crf_iterations, "train_sentences": peer.train_sentences, "train_seconds": round(peer.train_seconds, 1)}
        systems.append(System("crf+pos" if with_pos else "crf", "crf", with_pos, peer.tag_batch, peer.tag, info))
        print(f"CRF peer{' with POS' if with_pos else ''}: trained on {peer.train_sentences} sentences in {peer.train_seconds:.0f} s")

    results = measure(systems, words, pos, gold, args.repeats, args.latency_calls)
    compare_with_crf(results)
    load_after = load_average()
    doc = {
        "benchmark": "front",
        "settings": vars(args),
        "validation": {"sentences": n_valid, "tokens": sum(len(w) for w in words)},
        "threads": "ner-fast: Tagger(threads=1, workers=2), batch 64; single sentences on one thread; CRF: one thread",
        "results": results,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpus": os.cpu_count(),
    }
    print(f"GMB validation, {n_valid} sentences; load {load_before} -> {load_after}")
    print(f"{'system':16}{'F1':>8}{'tokens/s':>11}{'p50 ms':>9}{'p99 ms':>9}  vs CRF (F1 points, throughput, p50)")
    for name, r in results.items():
        v = r.get("vs_crf")
        vs = f"  {v['f1_points']:+.2f}, {v['throughput_ratio']:.2f}x, {v['p50_ratio']:.2f}x" if v else ""
        print(f"{name:16}{r['f1']:8.4f}{r['tokens_per_s']:11,}{r['p50_ms']:9.3f}{r['p99_ms']:9.3f}{vs}")
    if args.json:
        write_json(args.json, doc)
    if args.plot:
        plot(results, args.plot, f"GMB validation ({n_valid} sentences), {os.cpu_count()} cores, load {load_before[0]}")


if __name__ == "__main__":
    main()
