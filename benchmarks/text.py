"""Raw-text benchmark: a package on raw text (tokenizer + sentence splitter + tagger, `Tagger.pipe` and
`Tagger.__call__`) against the pre-tokenized path (`Tagger.tag_batch` / `tag` on the corpus's own tokens)
and a peer, a linear-chain CRF (sklearn-crfsuite) on the same raw text through the same tokenizer.

    pip install -e ".[bench]"        # sklearn-crfsuite
    python benchmarks/text.py [--package PKG] [--json FILE] [--crf-iterations N] [--group K]

Data: the bundled GMB corpus, sequential 80/20 split (`prepare.split_corpus`, as training uses). The
validation split is given as raw text: each sentence's tokens joined by single spaces. Documents are
`--group` consecutive sentences joined by a space (default 1: one sentence a document; with more, the
sentence splitter's cuts count too). Gold entities become character spans in that text.

Measured in one run:
- tokenizer agreement: re-tokenizing every corpus sentence from its space-joined text, the share of its
  tokens found with the same character span (and the tokenizer's own speed);
- entity F1 (micro, and per type) scored by character span (label, start, end) against the gold spans, so
  tokenization and splitting errors count: the package through `pipe`; the package on the gold tokens
  (`tag_batch`, the pre-tokenized path); the CRF through the same tokenizer and on the gold tokens;
- throughput, tokens a second (the corpus's token count): `pipe(texts, n_threads=2)` (2 batches at once,
  the next group segmented meanwhile; each Doc's `entities` read, since Docs build their parts on first
  access) against `tag_batch(gold tokens, proba=True, workers=2)` (with
  `return_pos=True` when the package has a POS head: the same outputs as a Doc), on one tagger with one
  intra-op thread a session; median of 3 interleaved passes; beside it the CPU time each used (all
  threads), microseconds a token, and its ratio (tag_batch's over pipe's: the throughput ratio two
  idle cores would allow if both paths kept them busy);
- latency p50/p99 of `tagger(text).entities` against `tagger.tag_batch([tokens], proba=True[, return_pos=True])`
  (the throughput baseline's call), and for reference `tagger.tag(tokens)` (tags only) and `tagger.entities(tokens)` (tags
  and entities, what a Doc holds), for validation sentences of 20 tokens (up to 500, each timed once per
  pass, interleaved, 3 passes).

Casing rows (issue 19), with `--casing` (the default; `--no-casing` skips them): the same validation
sentences with every token lower-cased, upper-cased and title-cased (`recase.recase_word`, the rule
`--recase` trains with), entity F1 by character span through `pipe` (raw text) and `tag_batch` (the
re-cased tokens), and each as a ratio of the as-written F1. The CRF is scored on them too.

Targets (issue 9): throughput ratio >= 0.7, p50 ratio <= 1.2, F1 above the CRF's by >= 1 point. The machine
is shared: `uptime`'s load average is recorded before and after.
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ner_fast.corpus import Corpus, read_corpus
from ner_fast.metrics import prf
from ner_fast.package import package_path
from ner_fast.option_table import default_of
from ner_fast.prepare import split_corpus
from ner_fast.recase import MODES, recase_word
from ner_fast.schemes import chunks
from ner_fast.tagger import Tagger
from ner_fast.doc import join_tokens
from ner_fast.text import segment, tokenize
from _machine import load_average, write_json  # the CPU (model, flags, cores) in every result

REPEATS = 3
Span = tuple[int, str, int, int]  # (document, label, start, end)


# ------------------------------------------------------------------------------------------ data


def documents(corpus: Corpus, group: int) -> tuple[list[str], list[list[list[str]]], list[list[tuple[int, int]]], set[Span]]:
    """Raw texts (`group` sentences each, all tokens joined by single spaces), each document's gold token
    lists and their character spans, and the gold entities as character spans."""
    texts, sentences, offsets = [], [], []
    gold: set[Span] = set()
    for d, first in enumerate(range(0, len(corpus), group)):
        doc = [corpus.sentence(i) for i in range(first, min(first + group, len(corpus)))]
        text, starts, ends = join_tokens([w for s in doc for w in s.words])
        base = 0
        for s in doc:
            for label, a, b in chunks(s.tags):
                gold.add((d, label, starts[base + a], ends[base + b - 1]))
            base += len(s.words)
        texts.append(text)
        sentences.append([s.words for s in doc])
        offsets.append(list(zip(starts, ends)))
    return texts, sentences, offsets, gold


def agreement(corpus: Corpus) -> dict[str, Any]:
    """Share of the corpus's tokens that the tokenizer finds again in each sentence's space-joined text."""
    found = total = identical = 0
    seconds = 0.0
    for i in range(len(corpus)):
        words = corpus.sentence(i).words
        text = " ".join(words)
        start = time.perf_counter()
        _, starts, ends = tokenize(text)
        seconds += time.perf_counter() - start
        _, gold_starts, gold_ends = join_tokens(words)
        hits = len(set(zip(gold_starts, gold_ends)) & set(zip(starts, ends)))
        found += hits
        total += len(words)
        identical += hits == len(words) == len(starts)
    return {
        "sentences": len(corpus),
        "tokens": total,
        "tokens_found": found,
        "agreement": round(found / total, 6),
        "sentences_identical": identical,
        "tokenizer_tokens_per_s": round(total / seconds),
    }


# ------------------------------------------------------------------------------------------ scoring


def f1(gold: set[Span], pred: set[Span]) -> dict[str, Any]:
    """Micro precision/recall/F1 over exact (document, label, start, end) matches, and per label."""

    def counted(g: set[Span], p: set[Span]) -> dict[str, float]:
        precision, recall, score = (round(float(v), 4) for v in prf(len(g & p), len(p), len(g)))
        return {"precision": precision, "recall": recall, "f1": score, "gold": len(g), "predicted": len(p)}

    labels = sorted({s[1] for s in gold | pred})
    return {**counted(gold, pred), "per_type": {k: counted({s for s in gold if s[1] == k}, {s for s in pred if s[1] == k}) for k in labels}}


def spans_of_tags(doc: int, tags: Sequence[Sequence[str]], offsets: Sequence[tuple[int, int]]) -> Iterable[Span]:
    """Character spans of the entities in one document's per-sentence tags, tokens at `offsets`."""
    base = 0
    for sentence in tags:
        for label, a, b in chunks(sentence):
            yield doc, label, offsets[base + a][0], offsets[base + b - 1][1]
        base += len(sentence)


def _doc_spans(tags: Sequence[Sequence[str]], gold_words: Sequence[Sequence[Sequence[str]]],
               offsets: Sequence[Sequence[tuple[int, int]]]) -> set[Span]:
    """The character spans of per-sentence `tags` over the documents' sentences, in order."""
    spans: set[Span] = set()
    k = 0
    for d, doc_words in enumerate(gold_words):
        spans.update(spans_of_tags(d, tags[k : k + len(doc_words)], offsets[d]))
        k += len(doc_words)
    return spans


def recased(corpus: Corpus, mode: str) -> Corpus:
    """`corpus` with every token re-cased (`mode`: one of `recase.MODES`), tags and sentences unchanged."""
    return Corpus([recase_word(w, mode) for w in corpus.words], corpus.pos, corpus.tags, corpus.offsets, corpus.source, corpus.format)


def casing_rows(tagger: Tagger, valid: Corpus, group: int, as_written: dict[str, float]) -> dict[str, Any]:
    """Entity F1 of `tagger` on `valid` re-cased each way (`recase.MODES`): raw text through `pipe`, tokens
    through `tag_batch`, and each as a ratio of `as_written` (the same two F1s on `valid` as it is)."""
    rows: dict[str, Any] = {"as written": as_written}
    for mode in MODES:
        texts, gold_words, offsets, gold = documents(recased(valid, mode), group)
        predicted = {(d, e.label, e.start, e.end) for d, doc in enumerate(tagger.pipe(texts, n_threads=2)) for e in doc.entities}
        flat = [s for doc in gold_words for s in doc]
        row = {"raw_text": f1(gold, predicted)["f1"], "pretokenized": f1(gold, _doc_spans(tagger.tag_batch(flat), gold_words, offsets))["f1"]}
        row["ratio_to_as_written"] = {k: round(row[k] / v, 3) if v else None for k, v in as_written.items()}
        rows[mode] = row
        print(f"casing {mode}: {row}")
    return rows


def _crf_casing(crf: tuple[Any, "Features"], valid: Corpus, group: int) -> dict[str, float]:
    """The CRF's entity F1 on the gold tokens of `valid` re-cased each way (`recase.MODES`)."""
    model, features = crf
    out = {}
    for mode in MODES:
        _, gold_words, offsets, gold = documents(recased(valid, mode), group)
        flat = [s for doc in gold_words for s in doc]
        out[mode] = f1(gold, _doc_spans(model.predict([features.sentence(s) for s in flat]), gold_words, offsets))["f1"]
    return out


# ------------------------------------------------------------------------------------------ the CRF peer


def word_features(word: str) -> list[str]:
    """The usual CRF features of one word (no POS): identity, shape, affixes, character classes."""
    shape = "".join("X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c for c in word)
    short = "".join(ch for i, ch in enumerate(shape) if i == 0 or ch != shape[i - 1])
    return [
        "w=" + word.lower(), "shape=" + shape[:12], "short=" + short, "p2=" + word[:2], "p3=" + word[:3],
        "s2=" + word[-2:], "s3=" + word[-3:], "s4=" + word[-4:], f"upper={word.isupper()}", f"title={word.istitle()}",
        f"digit={word.isdigit()}", f"hyphen={'-' in word}", f"len={min(len(word), 8)}",
    ]


class Features:
    """Per-token feature lists for crfsuite: the word's own features and its neighbours' (-2..+2, fewer
    of them), each word's lists computed once (the corpus has 35k distinct words among 1M tokens)."""

    NEIGHBOURS = {-2: ("w", "short"), -1: ("w", "short", "s3", "title", "upper"), 1: ("w", "short", "s3", "title", "upper"), 2: ("w", "short")}

    def __init__(self) -> None:
        self.cache: dict[tuple[str, int], list[str]] = {}

    def of_word(self, word: str, offset: int) -> list[str]:
        key = (word, offset)
        if key not in self.cache:
            own = word_features(word)
            if offset == 0:
                self.cache[key] = own
            else:
                keep = self.NEIGHBOURS[offset]
                self.cache[key] = [f"{offset}:{f}" for f in own if f.split("=", 1)[0] in keep]
        return self.cache[key]

    def sentence(self, words: Sequence[str]) -> list[list[str]]:
        n = len(words)
        out = []
        for i in range(n):
            features = ["bias", *self.of_word(words[i], 0)]
            for offset in (-2, -1, 1, 2):
                j = i + offset
                if 0 <= j < n:
                    features += self.of_word(words[j], offset)
                else:
                    features.append(f"{offset}:edge")
            out.append(features)
        return out


def train_crf(train: Corpus, iterations: int, features: Features) -> tuple[Any, float]:
    """A linear-chain CRF (L-BFGS, elastic net) trained on the training split; (model, seconds)."""
    import sklearn_crfsuite

    crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=iterations, all_possible_transitions=True)
    start = time.perf_counter()
    # Features made as crfsuite reads them (a generator): a list of every token's would take gigabytes.
    xs = (features.sentence(train.sentence(i).words) for i in range(len(train)))
    crf.fit(xs, [train.sentence(i).tags for i in range(len(train))])
    return crf, time.perf_counter() - start


def crf_peer(
    train: Corpus, iterations: int, texts: Sequence[str], gold_words: Sequence[Sequence[Sequence[str]]],
    offsets: Sequence[Sequence[tuple[int, int]]], flat_sentences: Sequence[Sequence[str]], gold: set[Span],
) -> tuple[dict[str, Any], dict[str, Any], tuple[Any, Features]]:
    """The CRF trained on `train`, scored on the raw texts (through the same tokenizer and splitter) and
    on the gold tokens: (its training facts, {"crf_raw_text": F1, "crf_pretokenized": F1}, (the model,
    its features))."""
    features = Features()
    crf, seconds = train_crf(train, iterations, features)
    crf_raw: set[Span] = set()
    for d, text in enumerate(texts):
        words, starts, ends, sent = segment(text)
        sentences = [words[a:b] for a, b in zip(sent[:-1], sent[1:])]
        crf_tags = crf.predict([features.sentence(s) for s in sentences]) if sentences else []
        crf_raw.update(spans_of_tags(d, crf_tags, list(zip(starts, ends))))
    crf_pre = _doc_spans(crf.predict([features.sentence(s) for s in flat_sentences]), gold_words, offsets)
    facts = {"iterations": iterations, "train_seconds": round(seconds, 1), "train_sentences": len(train)}
    return facts, {"crf_raw_text": f1(gold, crf_raw), "crf_pretokenized": f1(gold, crf_pre)}, (crf, features)


# ------------------------------------------------------------------------------------------ timing


def median_rate(tokens: int, runs: dict[str, Callable[[], Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Tokens a second of each callable, median of REPEATS passes run interleaved, and the CPU time
    it used (the process's, every thread) in microseconds a token, median too: on a shared machine the
    CPU a path needs moves less with the load than its speed does."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(REPEATS):
        for name, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    rates = {name: round(tokens / statistics.median(t)) for name, t in times.items()}
    return rates, {name: round(statistics.median(c) / tokens * 1e6, 3) for name, c in cpu.items()}


def latencies(calls: dict[str, Callable[[int], Any]], n: int) -> dict[str, dict[str, float]]:
    """p50/p99 milliseconds of each call over items 0..n-1, interleaved, REPEATS passes."""
    samples: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(REPEATS):
        for i in range(n):
            for name, call in calls.items():
                start = time.perf_counter()
                call(i)
                samples[name].append(time.perf_counter() - start)
    return {
        name: {"p50_ms": round(float(np.percentile(s, 50)) * 1e3, 3), "p99_ms": round(float(np.percentile(s, 99)) * 1e3, 3)}
        for name, s in samples.items()
    }


# ------------------------------------------------------------------------------------------ the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", default=None,
                        help="model package: a folder or a bundled name, default or ensemble (default: the default one)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--crf-iterations", type=int, default=50, help="L-BFGS iterations of the CRF peer")
    parser.add_argument("--group", type=int, default=1, help="sentences a document")
    parser.add_argument("--sentences", type=int, default=None, help="use only the first N validation sentences (quick runs)")
    parser.add_argument("--no-crf", action="store_true", help="skip the CRF peer (quick runs; no F1 margin)")
    parser.add_argument("--casing", action=argparse.BooleanOptionalAction, default=True,
                        help="also score the validation text lower-, upper- and title-cased (default: yes)")
    args = parser.parse_args()

    load_before = load_average()
    package = package_path(args.package)
    corpus = read_corpus()
    train, valid = split_corpus(corpus, default_of("split"))  # the default split, as `prepare.run_splits({})`
    if args.sentences is not None:
        valid = valid[: args.sentences]
    texts, gold_words, offsets, gold = documents(valid, args.group)
    n_tokens = valid.n_tokens
    print(f"validation: {len(valid)} sentences, {n_tokens} tokens, {len(texts)} documents, {len(gold)} entities")

    result: dict[str, Any] = {"package": str(package), "group": args.group, "load_average_before": load_before}
    result["tokenizer"] = agreement(corpus)
    print("tokenizer:", result["tokenizer"])

    tagger = Tagger.load(package, device="cpu", threads=1, workers=1)
    flat_sentences = [s for doc in gold_words for s in doc]

    # Entity F1 by character span.
    docs = list(tagger.pipe(texts, n_threads=2))
    predicted = {(d, e.label, e.start, e.end) for d, doc in enumerate(docs) for e in doc.entities}
    pre = _doc_spans(tagger.tag_batch(flat_sentences), gold_words, offsets)
    result["f1"] = {"package_raw_text": f1(gold, predicted), "package_pretokenized": f1(gold, pre)}
    print("package F1: raw", result["f1"]["package_raw_text"]["f1"], "pre-tokenized", result["f1"]["package_pretokenized"]["f1"])

    # Throughput.
    def pipe_run() -> None:
        # Docs build their parts on first access: read the entities, what a raw-text caller wants.
        for doc in tagger.pipe(texts, n_threads=2):
            doc.entities

    # The pre-tokenized calls return what a Doc holds: tags, probabilities, and POS tags from a POS head.
    pos_head = tagger.pos_tags is not None

    def pretokenized_run() -> None:
        tagger.tag_batch(flat_sentences, proba=True, workers=2, return_pos=pos_head)

    rates, cpu = median_rate(n_tokens, {"pipe_2_threads": pipe_run, "tag_batch_2_workers": pretokenized_run})
    result["throughput_tokens_per_s"] = {**rates, "ratio": round(rates["pipe_2_threads"] / rates["tag_batch_2_workers"], 3)}
    result["cpu_us_per_token"] = {**cpu, "ratio": round(cpu["tag_batch_2_workers"] / cpu["pipe_2_threads"], 3)}
    print("throughput:", result["throughput_tokens_per_s"], "CPU us a token:", result["cpu_us_per_token"])

    # Latency of 20-token sentences: raw text in, Doc out, against tokens in, tags + probabilities out
    # (the call the throughput baseline makes), tags only, and tags + entities (what a Doc holds).
    twenty = [valid.sentence(i).words for i in range(len(valid)) if len(valid.sentence(i).words) == 20][:500]
    raw = [" ".join(w) for w in twenty]
    lat: dict[str, Any] = latencies(
        {
            "call_text": lambda i: tagger(raw[i]).entities,
            "tag_batch_tokens": lambda i: tagger.tag_batch([twenty[i]], proba=True, return_pos=pos_head),
            "tag_tokens": lambda i: tagger.tag(twenty[i]),
            "entities_tokens": lambda i: tagger.entities(twenty[i]),
        },
        len(twenty),
    )
    lat["sentences"] = len(twenty)
    lat["p50_ratio"] = round(lat["call_text"]["p50_ms"] / lat["tag_batch_tokens"]["p50_ms"], 3)
    lat["p50_ratio_vs_tag"] = round(lat["call_text"]["p50_ms"] / lat["tag_tokens"]["p50_ms"], 3)
    lat["p50_ratio_vs_entities"] = round(lat["call_text"]["p50_ms"] / lat["entities_tokens"]["p50_ms"], 3)
    result["latency_20_tokens"] = lat
    print("latency:", lat)

    if args.casing:
        written = {"raw_text": result["f1"]["package_raw_text"]["f1"], "pretokenized": result["f1"]["package_pretokenized"]["f1"]}
        result["casing"] = casing_rows(tagger, valid, args.group, written)

    # The CRF peer. Close the tagger first: its sessions' memory arenas hold gigabytes after tag_batch.
    del tagger, docs
    gc.collect()
    margin = None
    if not args.no_crf:
        result["crf"], crf_f1, crf = crf_peer(train, args.crf_iterations, texts, gold_words, offsets, flat_sentences, gold)
        result["f1"].update(crf_f1)
        if args.casing:
            result["casing"]["as written"]["crf_pretokenized"] = result["f1"]["crf_pretokenized"]["f1"]
            for mode, row in _crf_casing(crf, valid, args.group).items():
                result["casing"][mode]["crf_pretokenized"] = row
        margin = result["f1"]["package_raw_text"]["f1"] - result["f1"]["crf_raw_text"]["f1"]
        result["f1"]["margin_over_crf_points"] = round(100 * margin, 2)
        print("CRF F1: raw", result["f1"]["crf_raw_text"]["f1"], "pre-tokenized", result["f1"]["crf_pretokenized"]["f1"])

    result["targets"] = {
        "throughput_ratio_at_least_0.7": result["throughput_tokens_per_s"]["ratio"] >= 0.7,
        "p50_ratio_at_most_1.2": lat["p50_ratio"] <= 1.2,
        "f1_over_crf_at_least_1_point": None if margin is None else margin >= 0.01,
    }
    result["load_average_after"] = load_average()
    print(json.dumps(result["targets"]))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
