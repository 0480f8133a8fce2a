"""Scoring a trained checkpoint on a corpus: the metrics of `metrics.py`, with plain MXNet inference.

The default corpus is the validation split the model was trained with, rebuilt from the data
settings recorded in its `config.json` (the same `prepare` call, so the same sentences); the
vocabularies must come out identical to the saved ones, else the data has changed and we refuse.
Another corpus is featurized with the model's own vocabularies (unseen words become UNK) and
bucketed without cutting, so every token is scored.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from tqdm import tqdm

from ner_fast.buckets import Bucket, build_buckets
from ner_fast.checkpoint import load_model
from ner_fast.config import read_config, trained_decode
from ner_fast.decode import CRF
from ner_fast.engine import reads_pos_message
from ner_fast.features import ROW_POS
from ner_fast.metrics import Accumulator, PosCounts, Scores, TagScheme
from ner_fast.option_table import row
from ner_fast.signals import interrupts_held

#: Sentences a forward pass: the `--batch-size` default of `ner-fast evaluate` (the option table's row).
BATCH_SIZE: int = row("evaluate", "batch_size").default

if TYPE_CHECKING:
    from ner_fast.corpus import Corpus


def validation_buckets(doc: dict[str, Any], vocabs: Any, run: str | os.PathLike[str]) -> list[Bucket]:
    """Rebuild the validation split of the run in folder `run`, described by its config.json document `doc`."""
    from ner_fast.config import DATA_INPUTS, TrainConfig, check_inputs_there
    from ner_fast.training.run_setup import changed_data, load_data, run_data_differences

    # The folder as given here names the run in errors: the recorded `out` is relative to where it started.
    cfg = TrainConfig.from_dict({**doc["train"], "out": os.fspath(run)})
    check_inputs_there(cfg, "evaluate (rebuilding the validation split)", "evaluate", DATA_INPUTS)
    # A run started with --init added its SOURCE's words to the corpus's (`run_setup._init_words`): the saved ones.
    data = load_data(cfg, check=False, words=vocabs.words.itos if doc.get("init") else ())
    differing = run_data_differences(data, doc, vocabs)
    if differing:
        raise ValueError(changed_data(cfg, doc, differing, "pass the corpus to evaluate explicitly"))
    return data.splits["valid"]


def corpus_buckets(
    path: str | os.PathLike[str], vocabs: Any, max_token_chars: int, lengths: Sequence[int], fmt: str = "auto", uses_pos: bool = False
) -> list[Bucket]:
    """A tagged corpus file as buckets of the model's features (nothing cut).

    `uses_pos`: the model reads POS tags, so a corpus without them is refused (its scores would be
    those of a model fed all-padding POS, not the model's)."""
    from ner_fast.features import featurize, tag_ids

    corpus = read_scored_corpus(path, fmt, vocabs.tags.itos, uses_pos)
    features = featurize(corpus.words, corpus.pos, vocabs, max_token_chars)
    buckets, _ = build_buckets(features, corpus.offsets, tag_ids(corpus.tags, vocabs), lengths, cut=False)
    return buckets


def read_scored_corpus(path: str | os.PathLike[str], fmt: str, tags: Sequence[str], uses_pos: bool) -> Corpus:
    """The tagged corpus file `path` that a model with the tag set `tags` is scored on (a checkpoint's or a
    package's: one rule for both), refused in one line naming the file (and the line of a tag the model
    does not know) when it has no tags, or no POS tags for a model that reads them."""
    from ner_fast.corpus import CorpusError, read_corpus

    corpus = read_corpus(path, fmt, tagged=True)
    if corpus.tags is None:
        raise CorpusError(f"evaluation needs a tagged corpus (read as {corpus.format}; see --format)", corpus.source)
    if uses_pos and not corpus.has_pos:
        raise CorpusError(reads_pos_message("the corpus does not have", "give CoNLL columns or a GMB CSV with POS"),
                          corpus.source)
    known = set(tags)
    for i, tag in enumerate(corpus.tags):
        if tag not in known:
            raise CorpusError(f"tag {tag!r} is not one the model knows ({', '.join(tags)}){corpus.rewritten_note(i)}",
                              corpus.source, corpus.line_of(i))
    return corpus


def score_buckets(
    predictor: Any,
    buckets: Sequence[Bucket],
    tags: Sequence[str],
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    decode: str = "argmax",
    crf: CRF | None = None,
) -> Scores:
    """Run `predictor.predict` over every sentence of `buckets` and score against their tags.

    `crf`: the model's CRF scores, for a model trained with a CRF output layer. Where the predictor gives
    the POS head's ids too (`Predictor(pos=True)`), `pos_accuracy` scores them against the POS row of the
    sentences (as training's validation does, `epoch.run_epoch`); None where no sentence has POS tags.
    """
    if batch_size < 1:  # range() with a negative step would score no sentence at all
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    acc = Accumulator(TagScheme(tags), decode)
    pos_counts = PosCounts()
    total = sum((len(b) + batch_size - 1) // batch_size for b in buckets)
    with tqdm(total=total, desc="evaluate", unit="batch", disable=not progress, leave=False) as bar:
        for bucket in buckets:
            if bucket.tags is None:
                raise ValueError("evaluation needs tags")
            for start in range(0, len(bucket), batch_size):
                rows = slice(start, start + batch_size)
                proba, pos = predictor.predict(bucket.features[rows])
                acc.add(bucket.tags[rows], proba, crf)
                if pos is not None:
                    pos_counts.add_ids(pos, bucket.features[rows][:, ROW_POS])
                bar.update(1)
    scores = acc.result()
    scores.pos_accuracy = pos_counts.accuracy
    return scores


def evaluate(
    model_dir: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    *,
    which: str = "best",
    format: str = "auto",
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    decode: str | None = None,
) -> Scores:
    """Metrics of the checkpoint in `model_dir` on `data` (default: its validation split).

    `decode` defaults to the one the model was trained (and selected) with.
    """
    with interrupts_held():  # imports MXNet, whose import can drop a Ctrl-C (`signals.interrupts_held`)
        from ner_fast.training.model import Predictor

    config, params, vocabs, doc = load_model(model_dir, which)
    if data is None:
        doc = read_config(model_dir, need_train=True)  # its train section rebuilds the split: checked, errors name the file
        buckets = validation_buckets(doc, vocabs, model_dir)
    else:
        lengths = doc.get("data", {}).get("buckets") or []
        buckets = corpus_buckets(Path(data), vocabs, config.max_token_chars, lengths, format, config.pos_enabled)
    method = decode or trained_decode(doc)
    crf = CRF.from_params(params) if config.crf else None
    return score_buckets(Predictor(config, params, pos=True), buckets, vocabs.tags.itos, batch_size, progress, method, crf)


def evaluate_package(package: str | os.PathLike[str], data: str | os.PathLike[str], *, format: str = "auto",
                     batch_size: int = BATCH_SIZE) -> Scores:
    """Metrics of the model package `package` (a folder, or a bundled package's name) on the tagged corpus
    `data`, through `Tagger.tag_batch` as an application runs it (int8, the package's own decoding): the
    scoring of `bundle.score_tagger`, which recorded the bundled packages' F1. Needs no MXNet."""
    from ner_fast.tagger import Tagger
    from ner_fast.training.bundle import score_tagger

    tagger = Tagger.load(package)
    return score_tagger(tagger, read_scored_corpus(data, format, tagger.tags, tagger.uses_pos), batch_size)
