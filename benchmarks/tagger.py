"""Tagger benchmark: onnxruntime (per-bucket graphs, the dynamic graph, int8) against MXNet's forward pass.

    python benchmarks/tagger.py [--model DIR] [--json FILE]               # case "network" (below)
    python benchmarks/tagger.py --case graphs [--package PKG] [--json FILE]
    python benchmarks/tagger.py --case long [--package PKG] [--json FILE]

`--case graphs` and `--case long` need no MXNet. They run on `--package`, else on a package exported from
random weights at the tuned recipe's dimensions (CRF, casing, POS, hidden 275) with the GMB vocabularies
and the 41 GMB training buckets: the cost of a graph depends on its dimensions, not on its weights.

- `graphs`: per-bucket graphs (`Tagger.load(buckets=None)`, all of them) against the single dynamic graph
  (`buckets=[]`) on the GMB validation sentences, end to end (`tag` one sentence at a time, `tag_batch` at
  batch 64), the two taking turns on each piece of work, median of 3 passes (`--repeats`); plus each tagger's load time and resident memory. Ratio: dynamic
  over buckets (above 1: the dynamic graph is faster).
- `long`: 63 sentences of 30 tokens and one of 2,000 in one `tag_batch` call at batch 64, against the same
  sentences one `tag` call at a time. Ratio: batch time over one-at-a-time time (it was 24: the long
  sentence padded the whole batch to 2,000 tokens; `buckets.plan_batches` now groups long sentences by
  length under a padded-token cap).

Case `network` (the default):

On one trained model (`--model`, else `runs/gmb` when it holds a checkpoint, else a small model trained
here for one epoch on a slice) and its validation sentences, in one run:

- tokens a second of the network alone at batch 1 and 64: MXNet `Predictor.predict_proba` vs onnxruntime
  sessions, all fed the same bucket tensors (a format-2 package's sessions, the export default, also the
  character features from the tagger's cache: `Tagger.feeds`; each shape run once untimed first, so MXNet's binding and
  onnxruntime's first-run setup are not counted; the median of 3 interleaved passes);
- tokens a second end to end (`Tagger.tag_batch`: tokens in, tags out) at batch 64;
- p50/p99 latency of single 20-token sentences (500 different ones in turn) end to end (`Tagger.tag`), onnxruntime fp32 and int8, and
  MXNet (featurize + forward + tag names) for reference;
- entity-level F1 (conlleval, `ner_fast.metrics`) of MXNet, fp32 and int8 on the validation split, all
  decoded the way the package says (argmax or valid-IOB2 Viterbi, with a CRF model's transitions, `ner_fast.decode`);
- package sizes.

Both engines use 2 threads (BENCH_THREADS overrides): OMP_NUM_THREADS=2 for MXNet, set before it is
imported; for onnxruntime either 2 intra-op threads per run (`ort_*`, taggers `fp32`/`int8`) or 2 batches
at once with one thread each (`*_workers`, `Tagger(workers=2)`). The machine is shared: `uptime`'s load
average is recorded before and after.
"""
from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = os.environ.get("BENCH_THREADS", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from itertools import cycle  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

from ner_fast import _kernels  # noqa: E402

from ner_fast.buckets import default_buckets, plan_batches  # noqa: E402
from ner_fast.checkpoint import load_model, params_file  # noqa: E402
from ner_fast.corpus import Corpus  # noqa: E402
from ner_fast.decode import decode  # noqa: E402
from ner_fast.features import featurize  # noqa: E402
from ner_fast.metrics import TagScheme, score  # noqa: E402
from ner_fast.training.export import export_model  # noqa: E402
from ner_fast.package import load_package  # noqa: E402
from ner_fast.prepare import run_splits  # noqa: E402
from ner_fast.tagger import Tagger  # noqa: E402
from _machine import load_average, write_json  # the CPU (model, flags, cores) in every result

THREADS = int(os.environ["OMP_NUM_THREADS"])
REPEATS = 3
ROOT = Path(__file__).resolve().parent.parent


def validation_corpus(doc: dict[str, Any]) -> Corpus:
    """The validation sentences of a training run, rebuilt from its recorded settings."""
    return run_splits(doc["train"])[1]


def find_or_train_model(given: str | None, work: Path) -> Path:
    """`--model`, else runs/gmb if it holds a checkpoint, else a small model trained now (about a minute)."""
    if given:
        return Path(given)
    full_run = ROOT / "runs" / "gmb"
    if (full_run / params_file("best")).exists():
        return full_run
    from ner_fast.config import TrainConfig
    from ner_fast.training.train import train

    print("no --model and no runs/gmb: training a small model (1 epoch, 3000 sentences)")
    cfg = TrainConfig(out=str(work / "model"), max_sentences=3000, epochs=1, seed=0)
    train(cfg, progress=False, echo=lambda _: None)
    return work / "model"


def bucket_batches(matrix: np.ndarray, offsets: np.ndarray, buckets: list[int], batch_size: int, limit: int | None = None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(padded length, sentence indices, features) batches, planned as the tagger plans them
    (`buckets.plan_batches`: the smallest bucket that fits, longer sentences grouped by length)."""
    lengths = np.diff(offsets)[: len(offsets) - 1 if limit is None else limit]
    batches = []
    for key, idx in plan_batches(lengths, buckets, batch_size):
        seq_len = key if key is not None else int(lengths[idx].max())
        features, _, _ = _kernels.fill_bucket(matrix, None, offsets, np.ascontiguousarray(idx), seq_len)
        batches.append((seq_len, idx, features))
    return batches


Batches = list[tuple[int, np.ndarray, np.ndarray]]


def session_pass(tagger: Tagger, pool: ThreadPoolExecutor | None = None, dynamic: bool = False) -> Callable[[Batches], None]:
    """A pass over batches through the tagger's bucket sessions (the dynamic one where no bucket fits, or
    always with `dynamic`), one batch at a time, or with `pool` several batches at once (data-parallel, as
    `Tagger(workers=...)` runs). Each batch is fed what the graph takes (`Tagger.feeds`): for a format-2
    package the character features too, from the tagger's cache (warm after `warm_up`), as the tagger
    feeds them; a feed of `features` alone is refused by a format-2 graph."""
    sessions = {None: tagger.sessions[None]} if dynamic else tagger.sessions

    def one(batch: tuple[int, np.ndarray, np.ndarray]) -> None:
        seq_len, _, x = batch
        sessions.get(seq_len, sessions[None]).run(None, tagger.feeds(x))

    def run_pass(batches: Batches) -> None:
        if pool is None:
            for batch in batches:
                one(batch)
        else:
            list(pool.map(one, batches))

    return run_pass


def warm_up(run_pass: Callable[[Batches], None], batches: Batches) -> None:
    """One untimed run of every (length, batch size) shape: MXNet binds, onnxruntime sizes its arenas."""
    shapes = {(seq_len, len(x)): (seq_len, i, x) for seq_len, i, x in batches}
    run_pass(list(shapes.values()))


def timed_pass(run_pass: Callable[[Batches], None], batches: Batches) -> float:
    """Seconds for one pass over `batches`."""
    start = time.perf_counter()
    run_pass(batches)
    return time.perf_counter() - start


def latency(call: Callable[[], Any], n: int) -> dict[str, float]:
    for _ in range(50):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="training checkpoint folder (default: runs/gmb, else train a small one)")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--batch1-sentences", type=int, default=1500, help="sentences timed at batch 1 (default 1500)")
    parser.add_argument("--latency-calls", type=int, default=2000)
    parser.add_argument("--case", choices=("network", "graphs", "long"), default="network", help="what to measure (module docstring)")
    parser.add_argument("--sentences", type=int, default=None, help="--case graphs: only the first N validation sentences")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="--case graphs: timed passes per tagger (default 3)")
    parser.add_argument("--package", help="model package for --case graphs/long (default: random weights at the tuned dimensions)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ner_fast_bench_") as work:  # packages (and a model) made here
        cases = {"network": bench, "graphs": bench_graphs, "long": bench_long}
        result = cases[args.case](args, Path(work))
    if args.json:
        write_json(args.json, result)


def random_package(work: Path, pos: bool = True, buckets: str = "auto") -> Path:
    """A package of random weights at the tuned recipe's dimensions, GMB vocabularies and training buckets
    (`pos` False: no POS input, as raw text needs; `buckets` as `ner-fast export --buckets`)."""
    from ner_fast.atomic import atomic_write_json
    from ner_fast.checkpoint import CONFIG_VERSION, ModelConfig, init_params, save_params
    from ner_fast.features import CASING_CLASSES
    from ner_fast.vocab import Vocabularies

    train = run_splits({})[0]
    vocabs = Vocabularies.build(train, lowercase=True)
    config = ModelConfig(
        n_words=len(vocabs.words), n_chars=len(vocabs.chars), n_tags=len(vocabs.tags), n_pos=len(vocabs.pos or []) if pos else 0,
        n_casing=len(CASING_CLASSES) + 1, max_token_chars=20, use_casing=True, crf=True,
    )
    folder = work / "random_model"
    folder.mkdir()
    doc = {
        "format_version": CONFIG_VERSION,
        "model": config.to_dict(),
        "data": {"buckets": default_buckets(train.lengths, 50), "max_token_chars": 20},
        "train": {"decode": "bio"},
        "versions": {"mxnet": "none (random weights)"},
    }
    atomic_write_json(folder / "config.json", doc)
    vocabs.save(folder / "vocab.json")
    save_params(folder / params_file("best"), init_params(config, 0))
    return export_model(folder, work / "random_pkg", buckets=buckets, quantize=None)


def resident_mb() -> float:
    """This process's resident memory, MB (Linux /proc)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def validation_sentences(package: Path) -> tuple[list[list[str]], list[list[str]] | None]:
    """The GMB validation sentences (and POS when the package uses them)."""

    valid = run_splits({})[1]
    sentences = [valid.sentence(i) for i in range(len(valid))]
    uses_pos = load_package(package, verify=False).model["use_pos"]
    return [s.words for s in sentences], ([s.pos for s in sentences] if uses_pos else None)  # type: ignore[misc]


def bench_graphs(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Per-bucket graphs against the single dynamic graph, end to end (module docstring)."""
    load_before = load_average()
    package = Path(args.package) if args.package else random_package(work)
    words, pos = validation_sentences(package)
    words, pos = words[: args.sentences], (pos[: args.sentences] if pos else None)
    n_tokens = sum(map(len, words))
    loads: dict[str, dict[str, float]] = {}
    taggers: dict[str, Tagger] = {}
    for name, buckets in (("dynamic", []), ("buckets", None)):  # dynamic first: its memory is the smaller step
        before, start = resident_mb(), time.perf_counter()
        taggers[name] = Tagger.load(package, device="cpu", threads=THREADS, buckets=buckets)
        loads[name] = {"load_s": round(time.perf_counter() - start, 3), "resident_mb": round(resident_mb() - before, 1),
                       "sessions": len(taggers[name].sessions)}
    n1 = min(args.batch1_sentences, len(words))
    pos_or_none = pos if pos else [None] * len(words)
    assert taggers["dynamic"].tag_batch(words[:300], pos[:300] if pos else None) == taggers["buckets"].tag_batch(words[:300], pos[:300] if pos else None)

    # The machine is shared and its load changes from second to second: the two taggers take turns on
    # every piece of work (one sentence at batch 1, 640 sentences at batch 64), in alternating order,
    # so any change in load falls on both alike. Each pass sums each tagger's time; the median pass counts.
    def one(t: Tagger, i: int) -> None:
        t.tag(words[i], pos_or_none[i])

    def many(t: Tagger, i: int) -> None:
        t.tag_batch(words[i : i + 640], pos[i : i + 640] if pos else None, batch_size=64)

    work_items = {"batch1": (one, range(n1)), "batch64": (many, range(0, len(words), 640))}
    tokens = {"batch1": sum(len(w) for w in words[:n1]), "batch64": n_tokens}
    speed: dict[str, dict[str, float]] = {name: {} for name in taggers}
    ratio: dict[str, float] = {}
    names = list(taggers)
    for label, (call, items) in work_items.items():
        for t in taggers.values():  # warm-up: every graph shape once
            for i in items:
                call(t, i)
        passes: list[dict[str, float]] = []
        for _ in range(args.repeats):
            total = {name: 0.0 for name in names}
            for k, i in enumerate(items):
                for name in names if k % 2 == 0 else names[::-1]:
                    start = time.perf_counter()
                    call(taggers[name], i)
                    total[name] += time.perf_counter() - start
            passes.append(total)
        for name in names:
            speed[name][f"{label}_tokens_per_s"] = round(tokens[label] / float(np.median([p[name] for p in passes])))
        ratio[label] = round(float(np.median([p["buckets"] / p["dynamic"] for p in passes])), 3)
        ratio[f"{label}_passes"] = [round(p["buckets"] / p["dynamic"], 3) for p in passes]  # type: ignore[assignment]
        print(f"{label}: " + ", ".join(f"{n} {speed[n][f'{label}_tokens_per_s']:,} tok/s" for n in names) + f"; dynamic speed / buckets speed {ratio[label]}")
    print(f"dynamic / buckets: {ratio}; load: {loads}")
    return {
        "case": "graphs",
        "package": str(package) if args.package else "random weights, tuned dimensions, GMB vocabularies and training buckets",
        "threads": THREADS,
        "sentences": {"batch1": n1, "batch64": len(words)},
        "tokens": tokens,
        "end_to_end_tokens_per_s": speed,
        "ratio_dynamic_over_buckets": ratio,
        "load": loads,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def bench_long(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One 2,000-token sentence among 63 of 30 tokens: one batch against one sentence at a time."""
    load_before = load_average()
    package = Path(args.package) if args.package else random_package(work)
    words, pos = validation_sentences(package)
    flat_words = [w for s in words for w in s]
    flat_pos = [p for s in pos for p in s] if pos else None
    sentences = [flat_words[i * 30 : (i + 1) * 30] for i in range(63)] + [flat_words[:2000]]
    tags_pos = [flat_pos[i * 30 : (i + 1) * 30] for i in range(63)] + [flat_pos[:2000]] if flat_pos else None
    tagger = Tagger.load(package, device="cpu", threads=THREADS)
    lengths = np.array([len(s) for s in sentences])
    plan = plan_batches(lengths, tagger.buckets, 64)
    largest = max(len(idx) * (key or int(lengths[idx].max())) for key, idx in plan)
    tagger.tag_batch(sentences, tags_pos, batch_size=64)  # warm-up
    batch_s, single_s = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        batched = tagger.tag_batch(sentences, tags_pos, batch_size=64)
        batch_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        singles = [tagger.tag(s, tags_pos[i] if tags_pos else None) for i, s in enumerate(sentences)]
        single_s.append(time.perf_counter() - start)
    assert batched == singles
    result = {
        "case": "long",
        "package": str(package) if args.package else "random weights, tuned dimensions, GMB vocabularies and training buckets",
        "threads": THREADS,
        "sentences": "63 x 30 tokens + 1 x 2000",
        "buckets": tagger.buckets,
        "batch64_s": round(float(np.median(batch_s)), 4),
        "one_at_a_time_s": round(float(np.median(single_s)), 4),
        "ratio_batch_over_one_at_a_time": round(float(np.median(batch_s) / np.median(single_s)), 3),
        "largest_padded_batch_tokens": int(largest),
        "real_tokens": int(lengths.sum()),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
    print(json.dumps(result, indent=1))
    return result


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The whole measurement (see the module docstring); returns the figures."""
    import mxnet as mx  # noqa: F401  (after OMP_NUM_THREADS is set)

    from ner_fast.training.model import Predictor

    load_before = load_average()
    model_dir = find_or_train_model(args.model, work)
    config, params, vocabs, doc = load_model(model_dir)
    valid = validation_corpus(doc)
    words = valid.words
    pos = valid.pos if config.pos_enabled else None
    sentences = [valid.sentence(i) for i in range(len(valid))]
    sent_words = [s.words for s in sentences]
    sent_pos = [s.pos for s in sentences] if pos is not None else None
    print(f"model {model_dir}; validation: {len(valid):,} sentences, {valid.n_tokens:,} tokens; threads {THREADS}")

    packages = {
        # Bucket graphs too (not the export default), so that both kinds of graph are measured.
        "fp32": export_model(model_dir, work / "fp32", buckets="auto", quantize=None),
        "int8": export_model(model_dir, work / "int8", buckets="auto", quantize="int8"),
    }
    # Two ways to give onnxruntime THREADS threads: intra-op threads in each run, or THREADS batches
    # at once with one thread each (`workers`).
    taggers = {name: Tagger.load(p, device="cpu", threads=THREADS) for name, p in packages.items()}
    taggers.update({f"{name}_workers": Tagger.load(p, device="cpu", threads=1, workers=THREADS) for name, p in packages.items()})
    buckets = taggers["fp32"].buckets
    # Up to 500 different 20-token validation sentences, taken in turn: one fixed sentence would
    # measure only its own decoding path (BIO repair by Viterbi costs ~0.3 ms when argmax is invalid).
    twenty = [(w, sent_pos[i] if sent_pos else None) for i, w in enumerate(sent_words) if len(w) == 20][:500]
    # Single sentences: THREADS intra-op threads, one thread (the workers taggers), and int8. Timed
    # before MXNet runs anything: its OpenMP threads keep spinning after a forward pass and would
    # steal the cores from onnxruntime (MXNet's own latency is timed last, after its passes).
    lat = {name: latency(lambda t=tagger, c=cycle(twenty): t.tag(*next(c)), args.latency_calls) for name, tagger in taggers.items()}
    predictor = Predictor(config, params)

    matrix = featurize(words, pos, vocabs, config.max_token_chars).matrix
    offsets = valid.offsets
    n_tokens = {}
    pool = ThreadPoolExecutor(THREADS)

    def mxnet_pass(batches: Batches) -> None:
        for _, _, x in batches:
            predictor.predict_proba(x)

    engines: dict[str, Callable[[Batches], None]] = {
        "mxnet": mxnet_pass,
        "ort_buckets": session_pass(taggers["fp32"]),
        "ort_dynamic": session_pass(taggers["fp32"], dynamic=True),
        "ort_int8_buckets": session_pass(taggers["int8"]),
        "ort_buckets_workers": session_pass(taggers["fp32_workers"], pool),
        "ort_int8_buckets_workers": session_pass(taggers["int8_workers"], pool),
    }
    speed: dict[str, dict[str, float]] = {name: {} for name in engines}
    for batch_size, limit in ((1, args.batch1_sentences), (64, None)):
        batches = bucket_batches(matrix, offsets, buckets, batch_size, limit)
        n_tokens[batch_size] = int(sum(np.diff(offsets)[idx].sum() for _, idx, _ in batches))
        for run_pass in engines.values():
            warm_up(run_pass, batches)
        # Engines take turns in a rotating order, REPEATS passes each, and the median pass counts: the
        # machine is shared, and interleaving spreads any change in its load over all engines alike.
        seconds: dict[str, list[float]] = {name: [] for name in engines}
        names = list(engines)
        for r in range(REPEATS):
            for name in names[r:] + names[:r]:
                seconds[name].append(timed_pass(engines[name], batches))
        for name in engines:
            speed[name][f"batch{batch_size}_tokens_per_s"] = round(n_tokens[batch_size] / float(np.median(seconds[name])))
            print(f"  {name:<24} batch {batch_size:>2}: {speed[name][f'batch{batch_size}_tokens_per_s']:>10,} tokens/s")

    end_to_end = {}
    for name, tagger in taggers.items():
        tagger.tag_batch(sent_words[:200], sent_pos[:200] if sent_pos else None)
        start = time.perf_counter()
        predicted = tagger.tag_batch(sent_words, sent_pos, batch_size=64)
        end_to_end[name] = {"batch64_tokens_per_s": round(valid.n_tokens / (time.perf_counter() - start)), "tags": predicted}


    method = taggers["fp32"].decode  # the package's decoding, applied to MXNet's probabilities too
    crf = taggers["fp32"].crf  # and a CRF model's learned transitions

    mx_cases = cycle(twenty)

    def mxnet_tag() -> list[str]:
        w20, p20 = next(mx_cases)
        m = featurize(w20, p20, vocabs, config.max_token_chars).matrix
        probs = predictor.predict_proba(np.ascontiguousarray(m.T[None]))
        return [vocabs.tags.itos[i] for i in decode(probs, np.array([len(w20)]), vocabs.tags.itos, method, crf)[0].tolist()]

    lat["mxnet"] = latency(mxnet_tag, min(args.latency_calls, 1000))

    # Entity F1 on the validation split: MXNet's own predictions, then fp32 and int8 packages.
    scheme = TagScheme(vocabs.tags.itos)
    gold = vocabs.tags.lookup_many(valid.tags)
    mx_pred = np.empty(len(words), dtype=np.int64)
    for _, idx, x in bucket_batches(matrix, offsets, buckets, 64):
        ids = decode(predictor.predict_proba(x), np.diff(offsets)[idx], vocabs.tags.itos, method, crf)
        for row, i in enumerate(idx.tolist()):
            a, b = offsets[i], offsets[i + 1]
            mx_pred[a:b] = ids[row, : b - a]
    lengths = np.diff(offsets)
    f1 = {"mxnet": score(gold, mx_pred, lengths, scheme).f1}
    for name in taggers:
        pred = vocabs.tags.lookup_many([t for s in end_to_end[name].pop("tags") for t in s])
        f1[name] = score(gold, pred, lengths, scheme).f1
    pool.shutdown()
    sizes = {name: load_package(path, verify=False).file_sizes for name, path in packages.items()}

    mx_speed = speed["mxnet"]
    ratios = {
        name: {b: round(speed[name][f"batch{b}_tokens_per_s"] / mx_speed[f"batch{b}_tokens_per_s"], 2) for b in ("1", "64")}
        for name in engines
        if name != "mxnet"
    }
    result = {
        "model": str(model_dir),
        "threads": THREADS,
        "validation": {"sentences": len(valid), "tokens": valid.n_tokens, "timed_batch1_tokens": n_tokens[1]},
        "buckets": buckets,
        "network_tokens_per_s": speed,
        "speedup_vs_mxnet": ratios,
        "end_to_end_tokens_per_s_batch64": {k: v["batch64_tokens_per_s"] for k, v in end_to_end.items()},
        "latency_20_tokens": lat,
        "decode": method,
        "crf": crf is not None,
        "entity_f1": {k: round(v, 4) for k, v in f1.items()},
        "package_bytes": {name: sum(s.values()) for name, s in sizes.items()},
        "package_files": sizes,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "targets": {
            f"{name}_2x_mxnet_batch{b}": ratios[name][b] >= 2
            for name in ("ort_buckets", "ort_buckets_workers")
            for b in ("1", "64")
        }
        | {"p50_20_tokens_under_1ms": lat["fp32"]["p50_ms"] < 1.0},
    }
    print()
    print(f"{'engine':<24} {'batch 1 tok/s':>14} {'batch 64 tok/s':>15} {'x MXNet (1/64)':>16}")
    for name in engines:
        r = ratios.get(name, {"1": 1.0, "64": 1.0})
        print(f"{name:<24} {speed[name]['batch1_tokens_per_s']:>14,} {speed[name]['batch64_tokens_per_s']:>15,} {r['1']:>7.2f}/{r['64']:<7.2f}")
    print("end to end (tokens in, tags out), batch 64: " + ", ".join(f"{k} {v:,} tok/s" for k, v in result["end_to_end_tokens_per_s_batch64"].items()))
    print("single 20-token sentences, end to end: " + ", ".join(f"{k} p50 {v['p50_ms']:.3f} ms p99 {v['p99_ms']:.3f} ms" for k, v in lat.items()))
    print("entity F1: " + ", ".join(f"{k} {v:.4f}" for k, v in result["entity_f1"].items()))
    print("package MB: " + ", ".join(f"{k} {v / 1e6:.2f}" for k, v in result["package_bytes"].items()))
    print(f"load average before {load_before}, after {result['load_average_after']}")
    return result


if __name__ == "__main__":
    main()
