"""Corpus -> split -> vocabularies -> bucket tensors (what `ner-fast prepare` runs and writes).

The layout of a prepared directory is in docs/ARCHITECTURE.md: ``prepared.json`` (settings and
counts), ``vocab.json`` and one ``<split>.npz`` per split with the bucket arrays.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ner_fast.atomic import OutputDir, atomic_dir, read_json
from ner_fast.buckets import Bucket, build_buckets, digest, training_buckets
from ner_fast.config import BY_NAME, check_values, default_of, is_prepared, recorded_path
from ner_fast.corpus import MEMORY, MEMORY_SOURCE, Corpus, read_corpus
from ner_fast.features import featurize, n_features, tag_ids
from ner_fast.npz import read_npz, write_npz
from ner_fast.package import KIND_NAMES, PREPARED_FILE, folder_kind
from ner_fast.recase import with_recased_copies
from ner_fast.errors import CorpusError
from ner_fast.schemes import TagScheme, first_invalid, marks_iobes
from ner_fast.vocab import Vocabularies

FORMAT_VERSION = 1
SPLITS = ("train", "valid")
PREPARED_FILES = (PREPARED_FILE, "vocab.json", *(f"{name}.npz" for name in SPLITS))


def prepared_files(folder: Path) -> set[str] | None:
    """The files of an earlier `ner-fast prepare` output in `folder` (None: it holds none)."""
    return set(PREPARED_FILES) if (folder / PREPARED_FILE).is_file() else None


@dataclass
class PreparedData:
    """Vocabularies, per-split buckets, the settings used and a summary of the run."""

    vocabs: Vocabularies
    splits: dict[str, list[Bucket]]
    settings: dict[str, Any]
    summary: dict[str, Any]
    #: The splits' sentences as read (the training split without its re-cased copies), where `prepare` made
    #: the data; empty when loaded from a folder (`train --teacher` needs the training split's tokens).
    corpora: dict[str, Corpus] = field(default_factory=dict)

    def save(self, directory: str | Path | OutputDir, force: bool = False) -> None:
        """Write to a temporary folder beside `directory`, then rename it into place.

        `directory` must be new, empty or an earlier prepare output (`prepared_files`), which is
        replaced only once the new one is complete; a folder with other files is refused unless
        `force` (then they are kept). See `atomic.atomic_dir`.
        """
        # The folder is read from other folders (`train PREPARED`, its --resume): the files it was made from by
        # absolute path (a relative --dev was resolved again from the folder `train` ran in, another file or none).
        settings = {**self.settings, **{name: recorded_path(flag, self.settings.get(name))
                                        for name, flag in (("dev", "--dev"), ("vectors", "--vectors"))
                                        if self.settings.get(name) != MEMORY_SOURCE}}  # a Corpus given in memory: no file
        with atomic_dir(directory, prepared_files, force=force) as tmp:
            doc = {"format_version": FORMAT_VERSION, "settings": settings, "summary": self.summary}
            (tmp / PREPARED_FILE).write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
            self.vocabs.save(tmp / "vocab.json")
            for name, buckets in self.splits.items():
                _save_split(tmp / f"{name}.npz", buckets)

    @classmethod
    def load(cls, directory: str | Path) -> PreparedData:
        """Read a directory written by `save` (no pickle: npz with allow_pickle=False); a folder of another
        kind (`package.folder_kind`: a run, a package) is named as what it is."""
        directory = Path(directory)
        kind = None if (directory / PREPARED_FILE).is_file() else folder_kind(directory)  # a stray config.json is no run
        if kind is not None:
            raise ValueError(f"{directory}: {KIND_NAMES[kind]}, not a prepared folder (what `ner-fast prepare` writes)")
        doc = read_json(directory / PREPARED_FILE, "prepared-data description")
        if not isinstance(doc, dict) or not isinstance(doc.get("settings"), dict):
            raise ValueError(f"{directory / PREPARED_FILE}: not a ner-fast prepared-data description")
        version = doc.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(f"{directory}: prepared data format {version!r} is not supported (max {FORMAT_VERSION})")
        vocabs = Vocabularies.load(directory / "vocab.json")
        # `save` writes every split (an empty one too): a missing file is a damaged folder, named here
        # (`read_npz`), not a KeyError where training first asks for the split.
        splits = {name: _load_split(directory / f"{name}.npz") for name in SPLITS}
        return cls(vocabs, splits, doc["settings"], doc["summary"])


def _save_split(path: Path, buckets: Sequence[Bucket]) -> None:
    arrays: dict[str, np.ndarray] = {"buckets": np.asarray([b.length for b in buckets], dtype=np.int32)}
    for b in buckets:
        arrays[f"features_{b.length}"] = b.features
        if b.tags is not None:
            arrays[f"tags_{b.length}"] = b.tags
        arrays[f"lengths_{b.length}"] = b.lengths
        arrays[f"indices_{b.length}"] = b.indices
    with open(path, "wb") as f:
        write_npz(f, arrays)


def _load_split(path: Path) -> list[Bucket]:
    arrays = read_npz(path, "prepared split")
    try:
        return [
            Bucket(
                int(n),
                arrays[f"features_{n}"],
                arrays.get(f"tags_{n}"),
                arrays[f"lengths_{n}"],
                arrays[f"indices_{n}"],
            )
            for n in arrays["buckets"].tolist()
        ]
    except KeyError as err:
        raise ValueError(f"{path}: array {err} is missing") from None


def split_corpus(corpus: Corpus, split: Sequence[float]) -> tuple[Corpus, Corpus]:
    """Sequential split: the first ``split[0]`` of the sentences train, the next ``split[1]`` validate.

    When the fractions add up to 1, validation takes every remaining sentence.
    """
    split = BY_NAME["split"].check(split)
    n = len(corpus)
    n_train = int(n * split[0])
    n_valid = n - n_train if abs(sum(split) - 1) < 1e-9 else int(n * split[1])
    if n_train == 0 or n_valid == 0:
        raise ValueError(f"{corpus.source}: split {tuple(split)} of {n} sentences leaves a split empty (give more"
                         " sentences, or a validation file with --dev)")
    return corpus[:n_train], corpus[n_train : n_train + n_valid]


def prepare(
    data: str | Path | Corpus | None = None,
    *,
    format: str = default_of("format"),
    split: Sequence[float] = default_of("split"),
    dev: str | Path | Corpus | None = default_of("dev"),
    max_sentences: int | None = default_of("max_sentences"),
    max_token_chars: int = default_of("max_token_chars"),
    batch_size: int = default_of("batch_size"),
    buckets: Sequence[int] | None = default_of("buckets"),
    keep_long: bool = default_of("keep_long"),
    lowercase: bool = default_of("lowercase"),
    extra_words: Sequence[str] = (),
    vectors: str | None = default_of("vectors"),
    vector_words: int = default_of("vector_words"),
    recase: float = default_of("recase"),
) -> PreparedData:
    """Read `data` (None: the bundled GMB corpus), split it, build vocabularies on the training
    split only and lay out both splits as buckets.

    `dev` is a separate validation corpus (then all of `data` trains and `split` is unused);
    `max_sentences` keeps only the first sentences of `data`. `buckets` defaults to the tutorial's
    rule on the training lengths; under `keep_long` the training sentences longer than the largest
    get buckets too (`buckets.training_buckets`), else they are cut to it; validation sentences never are. `vectors` (`ner_fast.vectors`): the words
    among the `vector_words` most frequent of those vectors join the word vocabulary after the
    training words (`vectors.extend_words`), so validation words they know are not unknown; what
    the vectors are is recorded in the settings (`vectors_source`: name, digest, licence).
    `recase` adds re-cased copies of that fraction of the training sentences after them
    (`recase.with_recased_copies`; the vocabularies are the original sentences' own).
    `extra_words` (`train --init`: the words of SOURCE's vocabulary) are appended after those, so the
    validation split and the tagger look them up instead of reading them as unknown.

    The steps, in order: `read_splits`, `_vocabularies`, the bucket lengths, `_lay_out`, then the
    settings (what a prepared folder fixes) and `_summary`.
    """
    started = time.perf_counter()
    checked = check_values(
        {"format": format, "split": split, "max_sentences": max_sentences, "max_token_chars": max_token_chars,
         "batch_size": batch_size, "buckets": buckets, "keep_long": keep_long, "lowercase": lowercase, "vectors": vectors,
         "vector_words": vector_words, "recase": recase}
    )  # fmt: skip
    split, buckets = checked["split"], checked["buckets"]
    corpus, train, valid = read_splits(data, format, split, dev, max_sentences)
    vocabs, n_training_words, described, known = _vocabularies(train, valid, lowercase, vectors, vector_words, extra_words)
    bucket_lengths = training_buckets(train.lengths, batch_size, keep_long, buckets)
    recased = with_recased_copies(train, checked["recase"])
    splits, counts, n_cut = _lay_out({"train": recased, "valid": valid}, vocabs, max_token_chars, bucket_lengths)
    counts["train"]["recased_copies"] = len(recased) - len(train)

    settings = {
        "max_token_chars": max_token_chars,
        "n_features": n_features(max_token_chars),
        "batch_size": batch_size,
        "buckets": bucket_lengths,
        "buckets_given": sorted(set(buckets)) if buckets else None,  # --buckets itself, which --keep-long extends
        "keep_long": keep_long,
        "lowercase": lowercase,
        "split": None if dev is not None else list(split),
        "max_sentences": max_sentences,
        "source": corpus.source,
        # The --format it was read in (a data option, checked again when a run trains from the folder):
        # a corpus built in memory was read in none, so the one given (as a file's is sniffed from "auto").
        "format": checked["format"] if corpus.format == MEMORY else corpus.format,
        "dev": None if dev is None else valid.source,
        "has_pos": train.has_pos,
        "vectors": vectors,
        "vector_words": vector_words,
        "vectors_source": described,
        "recase": checked["recase"],
        "recase_of": len(train),
    }
    summary = _summary(counts, bucket_lengths, n_cut, train.has_pos, vocabs, n_training_words, started)
    # A validation type the training split lacks is one the model is not trained to tag: its entities count as
    # missed, a cap on the validation F1 (`valid_types_warning` says so; `read_splits` refuses a --dev with no
    # type in common). The same rule whether the validation split is --dev or the end of DATA.
    summary["dev_types_not_trained"] = sorted(_types(valid) - _types(train))
    summary["digest"] = {name: digest(buckets) for name, buckets in splits.items()}  # `run_data_differences`
    summary["vectors_coverage"] = known  # `data_warnings`
    return PreparedData(vocabs, splits, settings, summary, {"train": train, "valid": valid})


def run_splits(train: Mapping[str, Any]) -> tuple[Corpus, Corpus]:
    """The (training, validation) sentences of a training run from its config.json `train` section, as
    `prepare` made them (`read_splits`, the options a section lacks at their defaults): `run_splits({})` is the
    bundled corpus at the default split, that of the bundled packages and the benchmarks. A run trained on a
    prepared folder is refused: its sentences are not kept there."""
    if is_prepared(train.get("data")):
        raise ValueError(f"{train['data']}: the run trained on prepared data, whose validation split cannot be rebuilt"
                         " here; train it on a corpus file (or the bundled corpus)")
    get = {name: train.get(name, default_of(name)) for name in ("format", "split", "dev", "max_sentences")}
    _, training, validation = read_splits(train.get("data"), get["format"], get["split"], get["dev"], get["max_sentences"])
    return training, validation


def read_splits(
    data: str | Path | Corpus | None, format: str, split: Sequence[float], dev: str | Path | Corpus | None,
    max_sentences: int | None,
) -> tuple[Corpus, Corpus, Corpus]:
    """Step 1 of `prepare`: read `data` (its first `max_sentences`) and split it, or take `dev` as the
    validation corpus: (the corpus read, the training split, the validation split). Both must be tagged,
    and both have POS tags or neither, and their tags one scheme (`_check_one_scheme`)."""
    corpus = data if isinstance(data, Corpus) else read_corpus(data, format, tagged=True)
    if max_sentences is not None:
        corpus = corpus[:max_sentences]
    if corpus.tags is None:
        raise ValueError(f"{corpus.source}: training needs a tagged corpus (read as {corpus.format}: no tag column; see --format)")
    trained = _types(corpus)
    if not trained:
        raise ValueError(f"{corpus.source}: every tag is O: a tagger learns no entity from it")
    if dev is None:
        _check_one_scheme([corpus])
        train, valid = split_corpus(corpus, split)
        return corpus, train, valid
    valid = dev if isinstance(dev, Corpus) else read_corpus(dev, format, tagged=True)
    if valid.tags is None:
        raise ValueError(f"{valid.source}: the validation corpus has no tags")
    if valid.has_pos != corpus.has_pos:
        has = {True: "has", False: "has no"}
        raise ValueError(
            f"{valid.source} {has[valid.has_pos]} POS tags but {corpus.source} {has[corpus.has_pos]}:"
            " give both corpora POS tags, or neither"
        )
    checked = _types(valid)
    if checked and not checked & trained:  # one type in common will do: a rare one may be missing
        raise ValueError(
            f"{valid.source}: its entity types ({', '.join(sorted(checked))}) are none of the training data's"
            f" ({', '.join(sorted(trained))}): a validation corpus must use the training data's tags, else its F1"
            " is 0 whatever the model learns"
        )
    _check_one_scheme([corpus, valid])
    return corpus, corpus, valid


def _types(corpus: Corpus) -> set[str]:
    """The entity types of a tagged corpus (`TagScheme.types` of its tags)."""
    return set(TagScheme(sorted(set(corpus.tags or ()))).types)


#: Below this share of the training words known to --vectors, `data_warnings` says so: a corpus and vectors of
#: one language and casing know most (GloVe 6B knows 91% of GMB's training words looked up lower-cased, 55% as
#: written, `--no-lowercase`).
FEW_KNOWN = 0.75


def data_warnings(prepared: PreparedData) -> list[str]:
    """The lines (`Warning: ...`, for stderr) that `ner-fast prepare` and `ner-fast train` give of the data
    they go on with: `valid_types_warning`, and where --vectors know fewer than `FEW_KNOWN` of the training
    words (`vectors.coverage`), how many, with the count looked up lower-cased where that would know enough."""
    warnings = [valid_types_warning(prepared)]
    known = prepared.summary.get("vectors_coverage")
    if known and known["words"] and known["known"] < FEW_KNOWN * known["words"]:
        share = f"{known['known']:,} of the {known['words']:,} training words ({known['known'] / known['words']:.0%})"
        lowered, of = known.get("known_lowercased", 0), known.get("lowercased_words", 0)
        hint = (f"; looked up lower-cased (--lowercase) they would know {lowered:,} of the {of:,} words a"
                f" lower-cased vocabulary holds ({lowered / of:.0%})"
                if of and lowered >= FEW_KNOWN * of else " (vectors of another language or casing?)")
        warnings.append(f"Warning: {prepared.settings.get('vectors')}: the vectors know {share}: the others start"
                        f" from random rows, as without --vectors{hint}")
    return [w for w in warnings if w]


def valid_types_warning(prepared: PreparedData) -> str | None:
    """The one line (`Warning: ...`, for stderr) that `ner-fast prepare` and `ner-fast train` give where the
    validation split has entity types the training split never uses (`dev_types_not_trained` of the summary):
    the model is not trained to tag them, so their entities cap the validation F1. Not an error: a small
    corpus may lack a rare type. The validation split is the `--dev` corpus (named, with the training data)
    or the end of DATA (`--split`, named with DATA). None where there are none."""
    unseen = prepared.summary.get("dev_types_not_trained") or []
    if not unseen:
        return None
    one = len(unseen) == 1
    types = f"entity type{'' if one else 's'} {', '.join(unseen)}"
    settings = prepared.settings
    if settings.get("dev"):
        where = f"{settings['dev']}: {types} never occur{'s' if one else ''} in the training data {settings.get('source')}"
    else:
        split = ",".join(f"{part:g}" for part in settings.get("split") or ())
        where = (f"{settings.get('source')}: {types} occur{'s' if one else ''} in the validation split (--split {split})"
                 " but never in the training split")
    return (f"Warning: {where}: the model is not trained to tag {'it' if one else 'them'}, so"
            f" {'its' if one else 'their'} entities count as missed and cap the validation F1")


def _check_one_scheme(corpora: Sequence[Corpus]) -> None:
    """Refuse tagged corpora that mix IOB2 and IOBES, naming the first line that breaks IOBES and the
    E-/S- tag that made the tag set IOBES. One tag set serves both splits, and with an E- or S- tag
    in it the "bio" decoder gives only IOBES sequences (`schemes.transition_rules`): a BIO corpus
    with a stray S- tag trained a model whose validation F1 was 0. IOB2 alone is always valid here
    (the readers rewrite IOB1 as IOB2)."""
    tags = sorted(set().union(*(c.tags or () for c in corpora)))
    if not any(marks_iobes(t) for t in tags):
        return
    marker = next((t, f"{c.source}:{c.line_of(i)}") for c in corpora for i, t in enumerate(c.tags or ()) if marks_iobes(t))
    index = {t: i for i, t in enumerate(tags)}
    for corpus in corpora:
        assert corpus.tags is not None
        found = first_invalid(np.array([index[t] for t in corpus.tags], dtype=np.int64), corpus.lengths, tags)
        if found is None:
            continue
        token, rule = found
        tag = corpus.tags[token]
        what = {"first": f"{tag!r} opens its sentence, which", "last": f"{tag!r} ends its sentence, which",
                "follow": f"{corpus.tags[token - 1]!r} then {tag!r}"}[rule]
        place = token - 1 if rule == "follow" else token
        raise CorpusError(
            f"{what} is not IOBES, the scheme of {marker[0]!r} at {marker[1]}: write"
            " every corpus in one scheme (IOB2: B-/I-; IOBES: B-/I-/E-/S-)"
            f"{corpus.rewritten_note(place) or corpus.rewritten_note(token)}", corpus.source, corpus.line_of(place),
        )


def _vocabularies(
    train: Corpus, valid: Corpus, lowercase: bool, vectors: str | None, vector_words: int, extra_words: Sequence[str]
) -> tuple[Vocabularies, int, dict[str, Any] | None, dict[str, Any] | None]:
    """Step 2 of `prepare`: the vocabularies of the training split (the tags of both splits), then the
    words of `vectors` and `extra_words` after the training words: (the vocabularies, how many words
    the training split itself gave, what the vectors are, how many training words they know
    (`vectors.coverage`); both None without vectors)."""
    vocabs = Vocabularies.build(train, lowercase=lowercase, extra_tags=valid.tags)
    described = known = None
    n_training_words = len(vocabs.words)
    if vectors is not None:
        from ner_fast.vectors import coverage, extend_words, read_vectors

        source = read_vectors(vectors)
        described, known = source.describe(vectors), coverage(vocabs.words, source, lowercase)
        vocabs.words = extend_words(vocabs.words, source, vector_words, lowercase)
    if extra_words:
        vocabs = vocabs.with_words(extra_words)
    return vocabs, n_training_words, described, known


def _lay_out(
    parts: dict[str, Corpus], vocabs: Vocabularies, max_token_chars: int, bucket_lengths: Sequence[int]
) -> tuple[dict[str, list[Bucket]], dict[str, dict[str, int]], int]:
    """Step 3 of `prepare`: each split (`train`, re-cased copies included, and `valid`) as feature rows
    and tag ids in buckets of `bucket_lengths`; training sentences longer than the largest are cut to
    it. Returns (the buckets by split, sentence/token/bucket counts by split, the sentences cut)."""
    splits: dict[str, list[Bucket]] = {}
    counts: dict[str, dict[str, int]] = {}
    n_cut = 0
    for name, part in parts.items():
        features = featurize(part.words, part.pos, vocabs, max_token_chars)
        assert part.tags is not None
        ids = tag_ids(part.tags, vocabs)
        splits[name], cut = build_buckets(features, part.offsets, ids, bucket_lengths, cut=name == "train")
        n_cut += cut
        counts[name] = {"sentences": len(part), "tokens": part.n_tokens, "buckets": len(splits[name])}
    return splits, counts, n_cut


def _summary(
    counts: dict[str, dict[str, int]], bucket_lengths: Sequence[int], n_cut: int, has_pos: bool,
    vocabs: Vocabularies, n_training_words: int, started: float,
) -> dict[str, Any]:
    """Step 4 of `prepare`: what was prepared, for people (`ner-fast prepare` prints it) and config.json:
    sentences, tokens and buckets by split, the sentences cut, vocabulary sizes, seconds since `started`."""
    return {
        "sentences": counts["train"]["sentences"] + counts["valid"]["sentences"],
        "tokens": counts["train"]["tokens"] + counts["valid"]["tokens"],
        "splits": counts,
        "buckets": bucket_lengths,
        "cut": n_cut,
        "has_pos": has_pos,
        "vocab": {
            "words": len(vocabs.words),
            "training_words": n_training_words,
            "chars": len(vocabs.chars),
            "pos": None if vocabs.pos is None else len(vocabs.pos),
            "tags": len(vocabs.tags),
        },
        "seconds": round(time.perf_counter() - started, 3),
    }
