"""Distillation (`ner-fast train --teacher SOURCE`): a teacher's per-token tag distributions over the
training split, laid out per bucket row as the second label of `iterators.BucketIter`.

A teacher is a model package (its `probs` output, computed once through the runtime `ner_fast.Tagger`;
training may import the runtime, never the reverse), `default` (the bundled package) or a training run
(its best parameters, through `model.Predictor`); several, comma-separated, are averaged (an ensemble).
Distributions are those of the original sentences: a re-cased copy (`--recase`, `recase.origin_of`)
gets the teacher's distribution over its original casing, since the teacher is case-sensitive and
tags the altered copy worse than the original. The student's loss is `model.distill_loss_symbol`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ner_fast.buckets import Bucket
from ner_fast.config import OptionError, default_of, sources_of
from ner_fast.decode import CRF, crf_marginals, log_proba
from ner_fast.engine import reads_pos_message
from ner_fast.recase import origin_of
from ner_fast.schemes import TagScheme, iob2_of

__all__ = ["Teacher", "resolve_teachers", "soften", "teacher_arrays", "teacher_distributions"]

OPTION = "--teacher"


@dataclass(frozen=True)
class Teacher:
    """One teacher: SOURCE as given, its kind ("package" or "run") and folder."""

    spec: str
    kind: str
    path: Path

    def tags(self) -> list[str]:
        """Its tag strings, read without tagging (a package's model.json, a run's vocab.json)."""
        if self.kind == "package":
            from ner_fast.package import load_package

            return load_package(self.path, verify=False).tags
        from ner_fast.package import RUN_VOCAB_FILE
        from ner_fast.vocab import Vocabularies

        return list(Vocabularies.load(self.path / RUN_VOCAB_FILE).tags.itos)

    def record(self) -> dict[str, Any]:
        """What config.json records of it: SOURCE and its folder (`init_source.recorded_source`), kind and checksum
        (`init_source.source_checksum`, as `--init` records them, and of which file): `default` names whatever
        package is bundled when the run starts."""
        from ner_fast.training.init_source import CHECKSUM_OF, recorded_source, source_checksum

        source = recorded_source(self.spec, self.path)
        return {"source": source["source"], "kind": self.kind, "path": source["path"],
                "sha256": source_checksum(self.kind, self.path), "checksum_of": CHECKSUM_OF[self.kind]}


def resolve_teachers(spec: str) -> list[Teacher]:
    """The teachers of `--teacher SPEC` (comma-separated); OptionError (`--teacher`) for one that is neither a
    package, `default` nor a training run with its best parameters."""
    from ner_fast.checkpoint import check_has_params
    from ner_fast.training.init_source import resolve

    teachers = []
    for part in sources_of("--teacher", spec):
        if not part:
            raise OptionError(OPTION, f"{spec!r}: an empty SOURCE in the list")
        try:
            kind, path = resolve(part)
        except OptionError as err:
            raise OptionError(OPTION, err.message) from None
        if kind == "run":
            try:
                check_has_params(path)
            except ValueError as err:
                raise OptionError(OPTION, str(err)) from None
        if _reads_pos(kind, path):
            raise OptionError(OPTION, f"{part}: " + reads_pos_message("a teacher is not given (it tags the training words"
                                                                     " alone)", "distil from a model trained without POS input"))
        teachers.append(Teacher(part, kind, path))
    return teachers


def _reads_pos(kind: str, path: Path) -> bool:
    """Whether the teacher at `path` reads POS tags: a package's `use_pos` (what `Tagger` goes by), a run's
    `ModelConfig.pos_enabled` (what its network is built with)."""
    if kind == "package":
        from ner_fast.package import load_package

        return bool(load_package(path, verify=False).model.get("use_pos"))
    from ner_fast.config import ModelConfig, read_config

    return ModelConfig.from_dict(read_config(path)["model"]).pos_enabled


def _package_distributions(teacher: Teacher, sentences: Sequence[Sequence[str]]) -> tuple[list[str], list[np.ndarray], CRF | None]:
    from ner_fast.tagger import Tagger

    tagger = Tagger.load(teacher.path)
    _, probs = tagger.tag_batch(sentences, proba=True)
    crf = tagger.package.model.get("crf")
    return list(tagger.tags), probs, None if crf is None else CRF.from_json(crf)


def _run_distributions(teacher: Teacher, sentences: Sequence[Sequence[str]]) -> tuple[list[str], list[np.ndarray], CRF | None]:
    from ner_fast.buckets import build_buckets, default_buckets
    from ner_fast.checkpoint import inference_params, load_model
    from ner_fast.corpus import Corpus
    from ner_fast.features import featurize
    from ner_fast.training.model import Predictor

    config, params, vocabs, _ = load_model(teacher.path, "best")
    config, params = inference_params(config, params)
    corpus = Corpus.from_sentences(sentences)
    features = featurize(corpus.words, None, vocabs, config.max_token_chars)
    buckets, _ = build_buckets(features, corpus.offsets, None, default_buckets(corpus.lengths, 64), cut=False)
    predictor = Predictor(config, params)
    out: list[np.ndarray] = [np.zeros((0, config.n_tags), np.float32)] * len(sentences)
    for bucket in buckets:
        for start in range(0, len(bucket), 256):
            rows = slice(start, start + 256)
            proba = predictor.predict_proba(bucket.features[rows])
            for p, n, i in zip(proba, bucket.lengths[rows].tolist(), bucket.indices[rows].tolist()):
                out[i] = p[:n]
    return list(vocabs.tags.itos), out, CRF.from_params(params) if config.crf else None


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Distributions (..., T) raised to 1 / T and renormalised: softmax(log p / T), the teacher's softmax at
    temperature T when p is the softmax of its scores (an ensemble's mean is softened as a whole)."""
    if temperature == 1:
        return probs.astype(np.float32)
    logp = log_proba(probs) / temperature
    logp -= logp.max(axis=-1, keepdims=True)
    q = np.exp(logp)
    return (q / q.sum(axis=-1, keepdims=True)).astype(np.float32)


def _columns(spec: str, names: Sequence[str], tags: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Where each of a teacher's tags `names` goes among the student's `tags`: a (teacher tags, student tags) 0/1
    matrix, and the teacher's tags sent to O. An IOBES teacher of a student that is not IOBES gives its S-X
    to B-X and E-X to I-X (IOBES refines IOB2); a tag the student still lacks goes to its O (the student's
    data marks no such entity, so its gold reads O there). OptionError when a tag of the student gets none,
    or the student is IOBES and the teacher not (no teacher's tag says where an entity ends)."""
    teacher_iobes, student_iobes = TagScheme(list(names)).iobes, TagScheme(list(tags)).iobes
    if student_iobes and not teacher_iobes:
        raise OptionError(OPTION, f"{spec} tags in IOB2, the training data in IOBES: its tags cannot say which"
                          " token ends an entity (E-, S-); give a teacher trained on IOBES tags, or the data in IOB2")
    targets = [iob2_of(t) for t in names] if teacher_iobes and not student_iobes else list(names)
    missing = sorted(set(tags) - set(targets))
    if missing or ("O" not in tags and any(t not in tags for t in targets)):
        why = (f"lacks tags of the training data ({', '.join(missing)})" if missing else
               f"knows tags the training data lacks ({', '.join(t for t in names if t not in tags)}), and the training"
               " data has no O tag to give them to")
        # The student's tags are those of DATA and --dev together.
        raise OptionError(OPTION, f"{spec} {why}: a teacher must know every tag of the student (the tags"
                          " of DATA and --dev together)")
    matrix = np.zeros((len(names), len(tags)))
    to_o = [name for name, t in zip(names, targets) if t not in tags]
    for i, t in enumerate(targets):
        matrix[i, tags.index(t if t in tags else "O")] = 1.0
    return matrix, to_o


def teacher_distributions(
    teachers: Sequence[Teacher], sentences: Sequence[Sequence[str]], tags: Sequence[str],
    say: Callable[[str], None] = lambda msg: None, target: str = default_of("distill_target"),
) -> list[np.ndarray]:
    """The teachers' mean distribution (len(sentence), len(tags)) over each of `sentences`, its columns the
    student's `tags`, each teacher's tags put there by `_columns` (OptionError before any teacher tags when
    one cannot be). `target` (`--distill-target`): "probs", each teacher's per-token softmax; "marginals"
    and "crf", for a teacher with a CRF its per-token marginals (`decode.crf_marginals`, over the teacher's
    own tags), its softmax otherwise."""
    for teacher in teachers:  # every teacher's tags first: a mismatch was found after minutes of tagging
        _columns(teacher.spec, teacher.tags(), tags)
    total: list[np.ndarray] | None = None
    for teacher in teachers:
        say(f"{OPTION} {teacher.spec}: tagging {len(sentences):,} training sentences")
        get = _package_distributions if teacher.kind == "package" else _run_distributions
        names, probs, crf = get(teacher, sentences)
        if target in ("marginals", "crf") and crf is not None:
            probs = [crf_marginals(p, crf) for p in probs]
        matrix, to_o = _columns(teacher.spec, names, tags)
        if to_o:
            say(f"{OPTION} {teacher.spec}: its tags the training data lacks ({', '.join(to_o)}) count as O")
        projected = [p.astype(np.float64) @ matrix for p in probs]
        total = projected if total is None else [a + b for a, b in zip(total, projected)]
    assert total is not None
    return [(p / len(teachers)).astype(np.float32) for p in total]


def teacher_arrays(
    buckets: Sequence[Bucket], distributions: Sequence[np.ndarray], recase: float, temperature: float
) -> list[np.ndarray]:
    """Per bucket, the (sentences, length, tags) float32 distributions (softened by `temperature`) of its rows:
    row r holds those of sentence `recase.origin_of(indices[r])` (a re-cased copy: its original's), cut to the
    bucket's length like the row's tokens; zeros on padding."""
    n = len(distributions)
    n_tags = distributions[0].shape[1] if n else 0
    out = []
    for bucket in buckets:
        array = np.zeros((len(bucket), bucket.length, n_tags), dtype=np.float32)
        for r, (i, length) in enumerate(zip(origin_of(bucket.indices, n, recase).tolist(), bucket.lengths.tolist())):
            if len(distributions[i]) < length:
                raise ValueError(f"the teacher gave {len(distributions[i])} distributions for a sentence of {length} tokens")
            array[r, :length] = soften(distributions[i][:length], temperature)
        out.append(array)
    return out
