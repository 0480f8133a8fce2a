"""Pretrained word vectors (`ner-fast train --vectors`): the same recipe with and without them, in one run.

For every seed, each variant (without vectors; with them, once per `--vector-words` value) trains on the
bundled GMB corpus (its first `--max-sentences`, split 80/20 as `ner-fast train` does), is exported (int8,
the default) and measured through the package:

- GMB validation entity F1: the tutorial's validation split (every sentence after the first 38,367 of the
  bundled corpus, 9,592 sentences) through `Tagger.tag_batch`, as written, lower-cased and upper-cased;
  also the best validation F1 training saw (on its own 20%);
- with `--cross FILE` (a CoNLL corpus tagged PER/ORG/LOC, e.g. wikigold): its tokens through `tag_batch`,
  per/org/geo against PER/ORG/LOC (other types count as O), as written, lower- and upper-cased;
- with `--small FILE`: training on the first N sentences (`--small-sizes`, default 500,1000) of that corpus
  (not GMB), validated on the next N/4; best validation entity F1;
- with `--control`: a variant without vectors at the vectors' word dimension (50 instead of 150);
- with `--wide-word-dim D`: a variant with the vectors inside a word embedding of D numbers (`--word-dim D`:
  the vectors' 50, then D - 50 learned from zero; `training/rows.py`), per `--vector-words` value;
- with `--frozen`: beside each vectors variant the same with `--freeze-vectors` (the vectors' own numbers of
  every row that starts from one stay fixed; docs/TRAINING.md, "Frozen vectors, measured");
- speed and size: package size, `Tagger.load` time (median of 5), `tag_batch` tokens/s over the GMB
  validation sentences (batch 64, one pass after a warm-up), p50 of one 20-token sentence (200 calls).

Means and spreads (max - min over the seeds) per variant, and the ratios vectors / none, go into the JSON
(`--json`, with the CPU model, its flags and cores) and a Markdown table on stdout (`--table FILE` too).
The issue's full measurement: `--seeds 0,1,2 --epochs 15` without `--max-sentences`, with `--cross` and
`--small`: hours on 2 cores. It can be taken a seed at a time (`--seeds 0 --json A.json`, `--seeds 1 --json
B.json`, ...) and the parts made one table with `--merge A.json B.json ...`; `--work DIR --reuse` trains on
a run an earlier invocation left unfinished.

Usage: ``python benchmarks/vectors.py [--vectors glove-6b-50d] [--vector-words N[,N...]] [--seeds 0,1,2]
[--epochs N] [--control] [--wide-word-dim D] [--frozen] [--max-sentences N] [--cross FILE] [--small FILE [--small-sizes 500,1000]
[--small-epochs N]] [--work DIR [--reuse]] [--speed-passes N] [--json FILE] [--table FILE]``;
``python benchmarks/vectors.py --merge JSON [JSON ...] [--json FILE] [--table FILE]``
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from ner_fast.checkpoint import METRICS_FILE, STATE_FILE
from ner_fast.config import TrainConfig, resume_config
from ner_fast.option_table import OPTIONS
from ner_fast.corpus import Corpus, read_corpus
from ner_fast.metrics import score
from ner_fast.schemes import TagScheme
from ner_fast.tagger import Tagger

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import write_json  # noqa: E402  (the CPU in every result)

GMB_TRAIN_SENTENCES = 38_367  # the tutorial's sequential 80/20 split of the bundled corpus
CROSS_TYPES = {"per": "PER", "org": "ORG", "geo": "LOC"}
RESUMABLE = {o.name for o in OPTIONS if o.resumable}


class Variant(NamedTuple):
    """One column: its name (JSON keys, run folders), its table header, and what it trains with
    (`word_dim` None: left out, so the recipe's 150, or with vectors theirs)."""

    name: str
    label: str
    vectors: str | None = None
    vector_words: int = 0
    word_dim: int | None = None
    freeze: bool = False


def variants_of(args: argparse.Namespace) -> list[Variant]:
    """Without vectors; with `--control` the same at the vectors' word dimension; with the vectors once per
    `--vector-words` value; with `--wide-word-dim D` the same inside a word embedding of D numbers."""
    from ner_fast.vectors import vectors_dim

    counts = [int(n) for n in args.vector_words.split(",") if n]
    dim = vectors_dim(args.vectors) if args.control or args.wide_word_dim else 0
    out = [Variant("none", "without vectors")]
    if args.control:
        out.append(Variant(f"none-{dim}", f"without, word dim {dim}", word_dim=dim))
    out += [Variant(f"vectors-{n}", f"{args.vectors}, {n} words", args.vectors, n) for n in counts]
    if args.wide_word_dim:
        wide = args.wide_word_dim
        if wide <= dim:
            raise SystemExit(f"--wide-word-dim {wide}: must be more than the vectors' {dim} numbers")
        out += [Variant(f"wide{wide}-{n}", f"{args.vectors} inside {wide}, {n} words", args.vectors, n, wide) for n in counts]
    if args.frozen:  # each vectors variant again, its vectors frozen
        out = [x for v in out for x in ([v, v._replace(name=f"{v.name}-frozen", label=f"{v.label}, frozen", freeze=True)]
                                         if v.vectors else [v])]
    return out



def entity_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], tags: Sequence[str]) -> float:
    """Entity F1 (conlleval's rule, `metrics.score`) of tag strings over the tag list `tags`."""
    scheme = TagScheme(list(tags))
    index = {t: i for i, t in enumerate(tags)}
    g = np.fromiter((index[t] for s in gold for t in s), dtype=np.int64)
    p = np.fromiter((index[t] for s in pred for t in s), dtype=np.int64)
    return float(score(g, p, np.array([len(s) for s in gold]), scheme).f1)


def columns(corpus: Corpus) -> tuple[list[list[str]], list[list[str]]]:
    """A tagged corpus's sentences as word lists and tag lists."""
    bounds = corpus.offsets.tolist()
    assert corpus.tags is not None
    return ([list(corpus.words[a:b]) for a, b in zip(bounds, bounds[1:])],
            [list(corpus.tags[a:b]) for a, b in zip(bounds, bounds[1:])])


def cased(sentences: list[list[str]], how: str) -> list[list[str]]:
    return [[getattr(w, how)() for w in s] for s in sentences] if how != "as_written" else sentences


def to_cross(tags: Sequence[str]) -> list[str]:
    """GMB tags -> PER/ORG/LOC (per/org/geo; the rest O), and a corpus's own tags kept for those types."""
    out = []
    for t in tags:
        head, _, kind = t.partition("-")
        kind = CROSS_TYPES.get(kind, kind if kind in CROSS_TYPES.values() else "")
        out.append(f"{head}-{kind}" if kind else "O")
    return out


def cross_f1(tagger: Tagger, corpus: Corpus, how: str) -> float:
    sentences, tags = columns(corpus)
    gold = [to_cross(t) for t in tags]
    pred = [to_cross(t) for t in tagger.tag_batch(cased(sentences, how))]
    tags = ["O"] + [f"{p}-{k}" for k in CROSS_TYPES.values() for p in "BI"]
    return entity_f1(gold, pred, tags)


def quality(tagger: Tagger, valid: Corpus, cross: Corpus | None) -> dict[str, float]:
    """Entity F1 on the GMB validation split (and `cross`), as written, lower- and upper-cased."""
    sentences, gold = columns(valid)
    out = {f"gmb_valid_f1_{how}": entity_f1(gold, tagger.tag_batch(cased(sentences, how)), tagger.tags)
           for how in ("as_written", "lower", "upper")}
    if cross is not None:
        out.update({f"cross_f1_{how}": cross_f1(tagger, cross, how) for how in ("as_written", "lower", "upper")})
    return out


def speed(package: Path, sentences: list[list[str]]) -> dict[str, float]:
    """Package size, load time (median of 5), tag_batch tokens/s (one pass) and the p50 of one 20-token sentence."""
    loads = []
    for _ in range(5):
        start = time.perf_counter()
        tagger = Tagger.load(package)
        loads.append(time.perf_counter() - start)
    tagger.tag_batch(sentences[:500])  # warm-up
    start = time.perf_counter()
    tagger.tag_batch(sentences)
    per_s = sum(map(len, sentences)) / (time.perf_counter() - start)
    sentence = (sentences[0] * 20)[:20]
    times = []
    for _ in range(200):
        start = time.perf_counter()
        tagger.tag_batch([sentence])
        times.append(time.perf_counter() - start)
    return {"package_bytes": sum(tagger.package.file_sizes.values()),
            "load_s": statistics.median(loads), "tag_batch_tokens_per_s": per_s,
            "p50_20_tokens_ms": 1000 * statistics.median(times)}


def not_resumable(train: dict[str, Any]) -> dict[str, Any]:
    """A run's options less those a resumed run may change (the epoch cap): what `--reuse` checks."""
    return {k: v for k, v in train.items() if k not in RESUMABLE}


def train_one(out: Path, data: str | None, seed: int, variant: "Variant", args: argparse.Namespace,
              max_sentences: int | None) -> dict[str, Any]:
    from ner_fast.training.train import train

    given: dict[str, Any] = {"epochs": args.epochs, "seed": seed, "max_sentences": max_sentences, "patience": 0}
    if variant.vectors:
        given.update(vectors=variant.vectors, vector_words=variant.vector_words, freeze_vectors=variant.freeze)
    if variant.word_dim is not None:  # left out: the recipe's (150), or with vectors theirs
        given.update(word_dim=variant.word_dim)
    cfg = TrainConfig.from_options(str(out), data, **given)
    if args.reuse and (out / STATE_FILE).exists():
        # A run of an earlier invocation in --work, made with these options: trained on where it stopped short
        # of --epochs (an invocation killed mid-run), then measured again, not retrained.
        epoch = json.loads((out / STATE_FILE).read_text())["epoch"]
        if not_resumable(json.loads((out / "config.json").read_text())["train"]) != not_resumable(cfg.to_dict()) or epoch > cfg.epochs:
            raise SystemExit(f"{out}: trained with other options; leave --reuse out or use another --work")
        if epoch < cfg.epochs:
            train(resume_config(out, epochs=cfg.epochs), resume=True, progress=False, echo=lambda msg: None)
        state = json.loads((out / STATE_FILE).read_text())
        history = [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
        best_f1, best_epoch, train_s = state["best_f1"], state["best_epoch"], float("nan")
    else:
        started = time.perf_counter()
        result = train(cfg, force=True, progress=False, echo=lambda msg: None)
        history, best_f1, best_epoch, train_s = result.history, result.best_f1, result.best_epoch, time.perf_counter() - started
    seconds = [h["seconds"] for h in history]
    return {"best_valid_f1": best_f1, "best_epoch": best_epoch, "train_s": train_s,
            "mean_epoch_s": sum(seconds) / len(seconds), "word_dim": cfg.arch["word_dim"],
            "words": len(json.loads((out / "vocab.json").read_text())["words"])}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return {k: {"mean": statistics.mean(r[k] for r in runs), "spread": max(r[k] for r in runs) - min(r[k] for r in runs)}
            for k in keys}


def table(result: dict[str, Any]) -> str:
    """The Markdown table: one column per variant, mean (± half the spread over seeds for F1) and, beside each
    vectors variant, its ratio to the run without vectors."""
    s, names = result["summary"], result["variants"]
    rows = [
        ("GMB validation entity F1, tag_batch, as written", "gmb_valid_f1_as_written", "{:.4f}", 1),
        ("  lower-cased", "gmb_valid_f1_lower", "{:.4f}", 1),
        ("  upper-cased", "gmb_valid_f1_upper", "{:.4f}", 1),
        ("best validation F1 in training (its own 20%)", "best_valid_f1", "{:.4f}", 1),
        *[(f"cross corpus ({result['settings']['cross']}) F1, {how}", f"cross_f1_{how}", "{:.4f}", 1)
          for how in ("as_written", "lower", "upper") if f"cross_f1_{how}" in s["none"]],
        ("vocabulary (words)", "words", "{:,.0f}", 1),
        ("package size (MB, int8)", "package_bytes", "{:.2f}", 1e-6),
        ("Tagger.load (s)", "load_s", "{:.3f}", 1),
        ("tag_batch tokens/s", "tag_batch_tokens_per_s", "{:,.0f}", 1),
        ("p50, one 20-token sentence (ms)", "p50_20_tokens_ms", "{:.2f}", 1),
        ("mean epoch (s)", "mean_epoch_s", "{:.0f}", 1),
    ]
    n = len(result["settings"]["seeds"])
    head = " | ".join(result["labels"][v] for v in names)
    lines = [f"| {n} seed(s) | {head} |", "|---|" + "---|" * len(names)]
    for label, key, fmt, k in rows:
        if key not in s["none"]:  # a merge of parts measured on other CPUs keeps no speed figures
            continue
        cells = []
        for v in names:
            m = s[v][key]
            cell = fmt.format(m["mean"] * k) + (f" ± {m['spread'] * k / 2:.4f}" if n > 1 and "f1" in key else "")
            if v != "none" and s["none"][key]["mean"]:
                cell += f" ({m['mean'] / s['none'][key]['mean']:.2f}x)"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for size, f1 in s.get("small", {}).items():
        lines.append(f"| small data, {size} training sentences, best validation F1 | " + " | ".join(f"{f1[v]:.4f}" for v in names) + " |")
    return "\n".join(lines)


MACHINE_KEYS = ("train_s", "mean_epoch_s", "load_s", "tag_batch_tokens_per_s", "p50_20_tokens_ms")


def assemble(settings: dict[str, Any], variants: list[str], labels: dict[str, str], runs: list[dict[str, Any]],
             small: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The JSON document of a measurement: settings, runs and each variant's summary over the seeds."""
    return {"benchmark": "vectors", "dnnl_max_cpu_isa": os.environ.get("DNNL_MAX_CPU_ISA"), "settings": settings,
            "variants": variants, "labels": labels, "runs": runs,
            "summary": {v: summarise([r for r in runs if r["variant"] == v]) for v in variants} | {"small": small}}


def merge(parts: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One document from several invocations' (`--seeds 0`, then `--seeds 1`, ...: a full schedule on 2 cores
    takes sessions): the same settings and variants but their seeds, each seed once, no small-data runs
    (their JSON keeps means only). The parts' CPUs are recorded (`settings.parts`; `measured_on`: theirs,
    where one); where they differ, the figures that depend on the machine (speed, load and epoch times) are
    left out: only the F1s and sizes compare."""
    (first_name, first), *rest = parts
    for name, doc in parts:
        if doc.get("benchmark") != "vectors":
            raise SystemExit(f"{name}: not a JSON written by benchmarks/vectors.py")
        if doc["summary"].get("small"):
            raise SystemExit(f"{name}: has small-data runs, which keep their means only; merge runs without --small")
    def same(doc: dict[str, Any]) -> tuple[Any, ...]:
        return {k: v for k, v in doc["settings"].items() if k != "seeds"}, doc["variants"], doc["dnnl_max_cpu_isa"]

    for name, doc in rest:
        if same(doc) != same(first):
            raise SystemExit(f"{name}: measured with other settings or variants than {first_name}; only --seeds may differ")
    seeds = [s for _, doc in parts for s in doc["settings"]["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"seeds {sorted(seeds)}: a seed is in more than one part")
    runs = [dict(r) for _, doc in parts for r in doc["runs"]]
    one_cpu = all(doc["cpu"] == first["cpu"] for _, doc in parts)
    if not one_cpu:
        runs = [{k: v for k, v in r.items() if k not in MACHINE_KEYS} for r in runs]
    runs.sort(key=lambda r: (r["seed"], first["variants"].index(r["variant"])))
    settings = {**first["settings"], "seeds": sorted(seeds),
                "parts": [{"file": name, "seeds": doc["settings"]["seeds"], "cpu": doc["cpu"]} for name, doc in parts]}
    doc = assemble(settings, first["variants"], first["labels"], runs, {})
    # "cpu" (`write_json`) is the machine that merged; the speeds kept are this one's.
    doc.update(dnnl_max_cpu_isa=first["dnnl_max_cpu_isa"], measured_on=first["cpu"] if one_cpu else None)
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", default="glove-6b-50d")
    parser.add_argument("--vector-words", default="100000", help="comma-separated: one variant each")
    parser.add_argument("--control", action="store_true", help="add a run without vectors at their word dimension"
                        " (is a difference the vectors' or the smaller dimension's?)")
    parser.add_argument("--wide-word-dim", type=int, help="add a run per --vector-words value with the vectors inside"
                        " a word embedding of this many numbers (e.g. 150: the vectors' 50, then 100 learned)")
    parser.add_argument("--frozen", action="store_true", help="add beside each vectors variant the same with"
                        " --freeze-vectors")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--max-sentences", type=int, default=None, help="GMB sentences trained on (80%%) and validated on")
    parser.add_argument("--cross", type=Path, help="a CoNLL corpus tagged PER/ORG/LOC (e.g. wikigold)")
    parser.add_argument("--small", type=Path, help="a corpus that is not GMB, for the small-data runs")
    parser.add_argument("--small-sizes", default="500,1000")
    parser.add_argument("--small-epochs", type=int, help="epochs of the small-data runs (default: --epochs)")
    parser.add_argument("--speed-passes", type=int, default=3, help="speed measured this many times per package, "
                        "the packages taking turns; the best pass counts")
    parser.add_argument("--work", type=Path, help="folder for the runs and packages (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="measure finished runs already in --work (same options)"
                        " instead of training them again (e.g. to add --cross)")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="JSON", help="train nothing: one table from these"
                        " JSONs of earlier invocations that differ in --seeds only")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--table", type=Path)
    args = parser.parse_args()
    if args.merge:
        report(merge([(p.name, json.loads(p.read_text())) for p in args.merge]), args)
        return
    from ner_fast.training.export import export_model

    seeds = [int(x) for x in args.seeds.split(",")]
    variants = variants_of(args)
    bundled = read_corpus()
    valid = bundled[GMB_TRAIN_SENTENCES:]
    cross = read_corpus(args.cross) if args.cross else None
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        runs, packages = [], []
        for seed in seeds:
            for v in variants:
                out = work / f"gmb-{v.name}-{seed}"
                run = {"variant": v.name, "seed": seed, **train_one(out, None, seed, v, args, args.max_sentences)}
                packages.append(export_model(out, work / f"pkg-{v.name}-{seed}", force=True))
                run.update(quality(Tagger.load(packages[-1]), valid, cross))
                runs.append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)
        # Speed: the packages take turns, so a busy spell of a shared machine does not favour one.
        sentences, _ = columns(valid)
        for _ in range(args.speed_passes):
            for run, package in zip(runs, packages):
                for key, value in speed(package, sentences).items():
                    better = max if key == "tag_batch_tokens_per_s" else min
                    run[key] = better(run.get(key, value), value)
        small: dict[str, dict[str, float]] = {}
        if args.small:
            for size in (int(x) for x in args.small_sizes.split(",")):
                for v in variants:
                    small_args = argparse.Namespace(**{**vars(args), "epochs": args.small_epochs or args.epochs})
                    f1s = [train_one(work / f"small-{size}-{v.name}-{seed}", str(args.small), seed, v, small_args,
                                     size + size // 4)["best_valid_f1"] for seed in seeds]
                    small.setdefault(str(size), {})[v.name] = statistics.mean(f1s)
    settings = {"vectors": args.vectors, "vector_words": args.vector_words,
                "wide_word_dim": args.wide_word_dim, "frozen": args.frozen, "seeds": seeds, "epochs": args.epochs,
                "max_sentences": args.max_sentences, "cross": args.cross and args.cross.name,
                "small": args.small and args.small.name, "small_epochs": args.small_epochs or args.epochs,
                "recipe": "tuned (the default), int8 packages",
                "gmb_validation": f"the bundled corpus after sentence {GMB_TRAIN_SENTENCES:,} ({len(valid):,} sentences)"}
    report(assemble(settings, [v.name for v in variants], {v.name: v.label for v in variants}, runs, small), args)


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    """The table on stdout (and `--table`), the document to `--json`."""
    text = table(result)
    print(text)
    if args.table:
        args.table.write_text(text + "\n")
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
