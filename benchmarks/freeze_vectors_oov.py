"""Fine-tuned against frozen vectors (`train --freeze-vectors`), split by what the model knew of an entity's words.

Reads the packages `benchmarks/transfer.py` left in its `--out` folder for the systems `vectors` and
`vectors-frozen` (the same corpus, sizes and seeds), tags the test file with each (float32 package through
`Tagger.tag_batch`) and scores every entity, gold or predicted, by its words as the run looked them up
(lower-cased: the recipe's vocabulary):

- `seen`: every word occurs in the run's training file (its row trained, fine-tuned or not);
- `vectors only`: some word never occurs in training, and every such word is in the run's vocabulary, so
  a pretrained vector is all the network has of it (the words issue 24's suspicion is about: kept at
  their vectors while the training words' rows move away from them, unless frozen);
- `unknown`: some word is in neither (UNK).

Per class: recall of the gold entities, precision of the predicted ones, their F1 (a predicted entity is
right when its span and type equal a gold one's). Writes JSON (`--json`, with the CPU) and a Markdown
table (stdout): mean over the seeds per size and system.

    python benchmarks/freeze_vectors_oov.py --out /tmp/fz/gum --corpus gum --test /work/data/gum-test.conll \\
        --json benchmarks/results/transfer_gum_freeze_vectors_oov.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import write_json  # noqa: E402  (the CPU in every result)

from ner_fast.corpus import Corpus, read_corpus  # noqa: E402
from ner_fast.schemes import chunks  # noqa: E402
from ner_fast.tagger import Tagger  # noqa: E402

SYSTEMS = ("vectors", "vectors-frozen")
CLASSES = ("seen", "vectors only", "unknown")


def word_class(words: list[str], trained: set[str], vocabulary: set[str]) -> str:
    """The class of an entity's `words` (lower-cased here) against the training words and the vocabulary."""
    unseen = [w for w in (x.lower() for x in words) if w not in trained]
    if not unseen:
        return "seen"
    return "vectors only" if all(w in vocabulary for w in unseen) else "unknown"


def point_scores(point: Path, system: str, test: Corpus) -> dict[str, Any]:
    """Per-class recall, precision and F1 of one run's package on the test corpus."""
    run, package = point / system / "run", point / system / "package"
    vocabulary = set(json.loads((run / "vocab.json").read_text())["words"])
    train = read_corpus(point / "train.conll", "conll")
    trained = {w.lower() for i in range(len(train)) for w in train.sentence(i).words}
    sentences = [test.sentence(i) for i in range(len(test))]
    predicted = Tagger.load(package, device="cpu").tag_batch([s.words for s in sentences])
    counts = {c: {"gold": 0, "found": 0, "predicted": 0, "right": 0} for c in CLASSES}
    for s, tags in zip(sentences, predicted):
        gold, pred = set(chunks(s.tags)), set(chunks(tags))
        for kind, chunk_set, hit_key, total_key in ((gold, pred, "found", "gold"), (pred, gold, "right", "predicted")):
            for t, a, b in kind:
                c = counts[word_class(s.words[a:b], trained, vocabulary)]
                c[total_key] += 1
                c[hit_key] += (t, a, b) in chunk_set
    out: dict[str, Any] = {}
    for c, n in counts.items():
        recall = n["found"] / n["gold"] if n["gold"] else 0.0
        precision = n["right"] / n["predicted"] if n["predicted"] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[c] = {**n, "recall": round(recall, 4), "precision": round(precision, 4), "f1": round(f1, 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="benchmarks/transfer.py's --out folder")
    parser.add_argument("--corpus", required=True, help="the corpus NAME given to transfer.py")
    parser.add_argument("--test", type=Path, required=True, help="its test file")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    test = read_corpus(args.test, "conll")
    runs = []
    for point in sorted((args.out / args.corpus).iterdir()):
        if not all((point / s / "package").is_dir() for s in SYSTEMS):
            continue
        size, _, seed = point.name.partition("-seed")
        for system in SYSTEMS:
            runs.append({"size": size, "seed": int(seed), "system": system, "classes": point_scores(point, system, test)})
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    if not runs:
        raise SystemExit(f"{args.out / args.corpus}: no point with a package of each of {', '.join(SYSTEMS)}")
    summary: dict[str, Any] = {}
    for r in runs:
        summary.setdefault(r["size"], {}).setdefault(r["system"], []).append(r)
    table = ["| training sentences | class | gold entities (mean) | " + " | ".join(f"{s}: recall / precision / F1" for s in SYSTEMS) + " |",
             "|---|---|---|" + "---|" * len(SYSTEMS)]
    for size in sorted(summary, key=int):
        for c in CLASSES:
            cells = []
            for s in SYSTEMS:
                rs = summary[size][s]
                m = {k: statistics.mean(r["classes"][c][k] for r in rs) for k in ("recall", "precision", "f1", "gold")}
                summary[size][s + ":" + c] = m
                cells.append(f"{m['recall']:.3f} / {m['precision']:.3f} / {m['f1']:.3f}")
            table.append(f"| {size} | {c} | {summary[size][SYSTEMS[0] + ':' + c]['gold']:.0f} | " + " | ".join(cells) + " |")
    print("\n".join(table))
    means = {size: {k: v for k, v in d.items() if ":" in k} for size, d in summary.items()}
    write_json(args.json, {"benchmark": "freeze_vectors_oov", "corpus": args.corpus, "test": str(args.test),
                           "transfer_out": str(args.out), "runs": runs, "means": means, "table": table})


if __name__ == "__main__":
    main()
