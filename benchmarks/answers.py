"""Does this CPU give the bundled packages' answers? (issue 19: "the same answer on any machine")

    python benchmarks/answers.py [--package NAME=DIR ...] [--compare EARLIER.json] [--json FILE]

For each package (default: both bundled ones), tags the validation split its bundle step scored (the
`provenance` in its model.json: corpus and split) through `Tagger.tag_batch`, as an application does, and
records:

- the entity scores (conlleval, overall and per type) and whether they equal, as the same float64 values,
  the scores recorded when the package was built (on the builder's CPU, named in its `provenance.speed`);
- the sha256 of the predicted tags (a sentence a line, tags separated by one space) and the token count.

`--compare` reads the JSON of an earlier run (another CPU's, e.g. `benchmarks/results/answers_epyc.json`)
and reports, per package, whether the tags' digest is the same; a differing digest then says to compare the
tags themselves. Exit status 0 when every comparison made agrees, 1 otherwise, 2 for a usage mistake (a
`--compare` file that is missing or not such a JSON: one line). Nothing here is a speed.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from ner_fast.package import package_path
from ner_fast.tagger import Tagger
from ner_fast.training.bundle import score_tags, tag_corpus, validation_corpus
from _machine import write_json  # the CPU (model, flags, cores) in every result
from defaults import package_arg  # benchmarks/defaults.py: `--package NAME=DIR|default`, written once

SCORES = ("f1", "precision", "recall")


def answers(path: Path) -> dict[str, Any]:
    """The package at `path`'s answers on its recorded validation split, against its recorded scores."""
    tagger = Tagger.load(path)
    provenance = tagger.package.model.get("provenance") or {}
    if "validation" not in provenance:
        raise SystemExit(f"answers: {path}: its model.json records no validation scores (a bundled package's do)")
    recorded = provenance["validation"]
    corpus = validation_corpus(provenance["training"])
    tags = tag_corpus(tagger, corpus)  # tagged once: scored as the bundle step scores, and digested
    scores = score_tags(tags, corpus, tagger.tags)
    per_type = scores.per_type
    same = all(getattr(scores, k) == recorded[k] for k in SCORES) and per_type.keys() == recorded["per_type"].keys() and all(
        per_type[t][k] == recorded["per_type"][t][k] for t in per_type for k in (*SCORES, "support"))
    return {
        "package": str(path),
        "sentences": len(tags),
        "tokens": sum(map(len, tags)),
        "scores": {k: getattr(scores, k) for k in SCORES},
        "recorded_scores": {k: recorded[k] for k in SCORES},
        "recorded_on": (provenance.get("speed") or {}).get("cpu", {}).get("model"),
        "scores_equal_recorded": same,
        "tags_sha256": hashlib.sha256("\n".join(" ".join(s) for s in tags).encode()).hexdigest(),
    }


def read_earlier(path: Path) -> dict[str, Any]:
    """The `packages` of an earlier run's JSON; ValueError (one line) for a file that is missing or is not one."""
    try:
        packages = json.loads(path.read_text(encoding="utf-8"))["packages"]
        if all(isinstance(p, dict) and isinstance(p.get("tags_sha256"), str) for p in packages.values()):
            return packages
    except OSError as err:
        raise ValueError(f"--compare {path}: {err.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    raise ValueError(f"--compare {path}: not a JSON of benchmarks/answers.py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=package_arg, action="append", help="NAME=DIR (default: both bundled)")
    parser.add_argument("--compare", type=Path, help="an earlier run's JSON (another CPU's) to compare digests with")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    packages = args.package or [("default", package_path("default")), ("ensemble", package_path("ensemble"))]
    try:
        earlier = read_earlier(args.compare) if args.compare else {}
    except ValueError as err:
        parser.error(str(err))  # a usage mistake: exit status 2, not the 1 of answers that differ
    results, agree = {}, True
    for name, path in packages:
        result = results[name] = answers(path)
        line = f"{name}: F1 {result['scores']['f1']:.4f}, recorded scores {'equal' if result['scores_equal_recorded'] else 'DIFFER'}"
        agree &= result["scores_equal_recorded"]
        if name in earlier:
            result["same_tags_as_compared"] = result["tags_sha256"] == earlier[name]["tags_sha256"]
            agree &= result["same_tags_as_compared"]
            line += f"; tags {'the same as' if result['same_tags_as_compared'] else 'NOT the same as'} {args.compare}'s"
        print(line)
    if args.json:
        write_json(args.json, {"benchmark": "answers", "packages": results,
                               "compared_with": str(args.compare) if args.compare else None})
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
