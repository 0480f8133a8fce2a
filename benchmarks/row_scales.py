"""int8 lookup tables with one scale per row against one scale per table (issue 24), in one run.

One training run (e.g. `ner-fast train --vectors glove-6b-50d ...`: 100,000 GloVe rows beside the trained
ones) is exported three ways: float32 (`--quantize none`), the `int8` scheme as it was before issue 24
(one scale per embedding or character table: `quantize.make_invariant(quantize_dynamic_int8(graph))`)
and the `int8` scheme now (`quantize.row_tables` first: one scale per row; the small tables dequantized
when the session is built), and, to show why those are, the same with every table scaled per lookup
(`quantize.FOLD_BYTES` 0). Each package is measured through `Tagger`, as an application gets it:

- entity F1 (conlleval, `bundle.score_tagger`) on the run's own validation split (`bundle.validation_corpus`)
  and on the tutorial's GMB validation split (the 9,592 sentences after the first 38,367 of the bundled
  corpus), and the share of validation tokens tagged as the float32 package tags them;
- the word table's rounding: mean and largest |int8 row - float row| (`init_source.initializer_values`);
- package size, `Tagger.load` time (median of 3); speed on `--threads` onnxruntime threads (default 1,
  steadier on a shared machine): `tag_batch` of the split's first 256 sentences as one batch, and one
  `tag()` call on each of 50 sentences of 20 tokens, the best of `--passes` passes (the packages taking
  turns in each pass, so the machine's load falls on each alike).

JSON (`--json`, with the CPU model, its flags and cores) and a Markdown table on stdout.

Usage: ``python benchmarks/row_scales.py RUN_DIR [--work DIR] [--passes N] [--json FILE]``
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ner_fast.checkpoint import read_config
from ner_fast.corpus import Corpus, read_corpus
from ner_fast.package import load_package
from ner_fast.tagger import Tagger
from ner_fast.training.bundle import score_tagger, validation_corpus
from ner_fast.training.export import export_model
from ner_fast.training.package_writer import write_package
from ner_fast.training.init_source import initializer_values
from ner_fast.training import quantize as quantize_module
from ner_fast.training.quantize import make_invariant, quantize_dynamic_int8

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import load_average, write_json  # noqa: E402  (the CPU in every result)

GMB_TRAIN_SENTENCES = 38_367  # the tutorial's sequential 80/20 split of the bundled corpus
VARIANTS = ("float32", "int8 per table", "int8 per row", "int8 per row, all scaled per lookup")


def per_table_package(float_pkg: Path, out: Path) -> Path:
    """The `int8` scheme before issue 24, from a float32 package: every weight as `quantize_dynamic`
    stores it (the tables one scale each), made batch-invariant. A format-2 package's character graph (the
    character tables) is quantized alike and written with it."""
    pkg = load_package(float_pkg)
    chars = pkg.char_graph_path
    graphs = [make_invariant(quantize_dynamic_int8(onnx.load(str(path))))
              for path in (pkg.graph_path(None), *([chars] if chars is not None else []))]
    for graph in graphs:
        for prop in graph.metadata_props:
            if prop.key == "ner_fast.quantization":
                prop.value = "int8"
    info = {k: v for k, v in pkg.model.items() if k not in ("format_version", "buckets", "versions", "provenance")}
    info["quantization"] = "int8"
    return write_package(out, graphs[0], pkg.buckets, info, pkg.model["versions"], char_model=graphs[1] if chars else None)


def sentences_of(corpus: Corpus) -> list[list[str]]:
    offsets = corpus.offsets.tolist()
    return [corpus.words[a:b] for a, b in zip(offsets, offsets[1:])]


def table_error(package: Path, reference: np.ndarray) -> dict[str, float]:
    """How far the package's word rows lie from the float32 ones."""
    graph = onnx.load(str(load_package(package).graph_path(None)))
    values, _ = initializer_values(graph.graph, ["word_embed_weight"])
    diff = np.abs(values["word_embed_weight"].astype(np.float64) - reference)
    # Relative to each row's largest value: what one scale per table loses on the small rows.
    relative = diff.max(axis=1) / np.maximum(np.abs(reference).max(axis=1), 1e-30)
    return {"mean_abs": float(diff.mean()), "max_abs": float(diff.max()), "median_row_relative": float(np.median(relative))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--work", type=Path, default=None, help="folder for the packages (default: a temporary one)")
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="row-scales-") as tmp:
        work = args.work or Path(tmp)
        packages = {
            "float32": export_model(args.run_dir, work / "float32", quantize="none", force=True),
            "int8 per row": export_model(args.run_dir, work / "int8-per-row", quantize="int8", force=True),
        }
        fold_bytes, quantize_module.FOLD_BYTES = quantize_module.FOLD_BYTES, 0
        try:
            packages["int8 per row, all scaled per lookup"] = export_model(args.run_dir, work / "int8-per-row-lookups", quantize="int8", force=True)
        finally:
            quantize_module.FOLD_BYTES = fold_bytes
        packages["int8 per table"] = per_table_package(packages["float32"], work / "int8-per-table")
        own = validation_corpus(read_config(args.run_dir)["train"])
        gmb = read_corpus(None)[GMB_TRAIN_SENTENCES:]
        gmb_sentences = sentences_of(gmb)
        twenty = [s for s in gmb_sentences if len(s) == 20][:50]
        batch = gmb_sentences[:256]
        float_rows = initializer_values(onnx.load(str(load_package(packages["float32"]).graph_path(None))).graph,
                                        ["word_embed_weight"])[0]["word_embed_weight"].astype(np.float64)
        results: dict[str, dict[str, Any]] = {}
        taggers = {}
        for name in VARIANTS:
            loads = []
            for _ in range(3):
                start = time.perf_counter()
                taggers[name] = Tagger.load(packages[name], device="cpu", threads=args.threads)
                loads.append(time.perf_counter() - start)
            tagger = taggers[name]
            own_scores, gmb_scores = score_tagger(tagger, own), score_tagger(tagger, gmb)
            results[name] = {
                "package_bytes": sum(tagger.package.file_sizes.values()),
                "load_s": statistics.median(loads),
                "f1_run_validation": own_scores.f1,
                "f1_gmb_validation": gmb_scores.f1,
                "per_type_gmb_validation": {k: t["f1"] for k, t in sorted(gmb_scores.per_type.items())},
                "word_table_error": table_error(packages[name], float_rows),
                "tags": tagger.tag_batch(gmb_sentences),
                "batch_s": [],
                "sentence_ms": [],
            }
            tagger.tag_batch(batch, batch_size=len(batch))  # warmed up
        n_tokens = sum(map(len, batch))
        for _ in range(args.passes):  # the packages take turns: the machine's load falls on each alike
            for name in VARIANTS:
                start = time.perf_counter()
                taggers[name].tag_batch(batch, batch_size=len(batch))
                results[name]["batch_s"].append(time.perf_counter() - start)
                start = time.perf_counter()
                for s in twenty:
                    taggers[name].tag(s)
                results[name]["sentence_ms"].append((time.perf_counter() - start) / len(twenty) * 1e3)
        reference = [t for s in results["float32"]["tags"] for t in s]
        for name in VARIANTS:
            mine = [t for s in results[name].pop("tags") for t in s]
            results[name]["tags_as_float32"] = float(np.mean([a == b for a, b in zip(mine, reference)]))
            results[name]["best_tokens_per_s"] = n_tokens / min(results[name]["batch_s"])
            results[name]["best_sentence_ms"] = min(results[name]["sentence_ms"])

    base = results["int8 per table"]
    rows = [
        ("entity F1, the run's validation split", "f1_run_validation", "{:.4f}"),
        ("entity F1, GMB validation split (9,592 sentences)", "f1_gmb_validation", "{:.4f}"),
        ("GMB validation tokens tagged as float32 tags them", "tags_as_float32", "{:.4%}"),
        ("package size (MB)", "package_bytes", "{:.2f}"),
        ("Tagger.load (s)", "load_s", "{:.3f}"),
        (f"tag_batch, 256 sentences, tokens/s (best of {args.passes})", "best_tokens_per_s", "{:,.0f}"),
        (f"tag(), one 20-token sentence (ms, best of {args.passes})", "best_sentence_ms", "{:.3f}"),
    ]
    print("| | " + " | ".join(VARIANTS) + " |")
    print("|---|" + "---|" * len(VARIANTS))
    for label, key, fmt in rows:
        cells = []
        for name in VARIANTS:
            value = results[name][key] / (1e6 if key == "package_bytes" else 1)
            ratio = results[name][key] / base[key] if key in ("best_tokens_per_s", "best_sentence_ms", "package_bytes") else None
            cells.append(fmt.format(value) + (f" ({ratio:.2f}x)" if ratio is not None and name != "int8 per table" else ""))
        print(f"| {label} | " + " | ".join(cells) + " |")
    err = lambda n: results[n]["word_table_error"]  # noqa: E731
    print("| word rows: mean / max abs error, median row error / row max | "
          + " | ".join(f"{err(n)['mean_abs']:.2e} / {err(n)['max_abs']:.2e}, {err(n)['median_row_relative']:.4f}" for n in VARIANTS) + " |")
    if args.json:
        write_json(args.json, {
            "run_dir": os.path.basename(os.path.normpath(args.run_dir)),
            "run_train": {k: read_config(args.run_dir)["train"].get(k) for k in ("vectors", "vector_words", "max_sentences", "epochs", "seed")},
            "words": read_config(args.run_dir)["model"]["n_words"], "word_dim": read_config(args.run_dir)["model"]["word_dim"],
            "run_validation_sentences": len(own), "gmb_validation_sentences": len(gmb),
            "batch_sentences": len(batch), "batch_tokens": n_tokens, "single_sentences": len(twenty),
            "passes": args.passes, "threads": args.threads, "load_average": load_average(),
            "variants": results,
        })


if __name__ == "__main__":
    main()
