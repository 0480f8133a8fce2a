"""The spaCy pipeline component "ner_fast" (`pip install "ner-fast[spacy]"`): ner-fast's entities in `doc.ents`.

    import spacy
    nlp = spacy.blank("en")
    nlp.add_pipe("ner_fast")                                   # the bundled package, its own labels
    nlp = spacy.load("en_core_web_sm")
    nlp.add_pipe("ner_fast", config={"package": "export/gmb", "labels": "ontonotes"}, before="ner")
    doc = nlp("Angela Merkel visited Paris on Monday.")
    [(e.text, e.label_, e._.ner_fast_score) for e in doc.ents]
    spacy.displacy.render(doc, style="ent")

The factory is registered through spaCy's entry points (`spacy_factories` in pyproject.toml), so
`add_pipe("ner_fast")` works without importing ner_fast first. Config:

- `package`: a model package folder or a bundled package's name, `default` or `ensemble` (null: the default
  bundled one; `package.package_path`);
- `labels`: the label map (`ner_fast.labels`): "package", "conll", "ontonotes", a JSON file, or a dict
  mapping labels to new ones or null (dropped);
- `mode`: "keep" leaves the entities already in `doc.ents` (a rule-based `EntityRuler` before it) and adds
  only those of ner-fast that overlap none of them; "overwrite" puts ner-fast's entities first and removes
  the earlier ones they overlap: the EntityRuler's `overwrite_ents` False and True (spaCy's own filters,
  `prioritize_existing_ents_filter` and `prioritize_new_ents_filter`, do the merging);
- `alignment_mode`: how an entity's character span becomes a span of spaCy's tokens, `Doc.char_span`'s
  mode, default "expand" (see `align`);
- `batch_size`: sentences a tagging call of `nlp.pipe` (`Tagger.pipe`'s batch size).

Each entity's score (`Entity.score`, the mean of its tokens' probabilities) is `span._.ner_fast_score`,
read-only: the score of the entity ner-fast found over those characters with that label, None for any
other span (an entity kept from before with another label);
`doc._.ner_fast_misaligned` counts the entities of the document whose character span did not fall on
spaCy's token boundaries (aligned by `alignment_mode`, or dropped when that gave no span).
`doc.spans["ner_fast"]` (the component's name: a group of that name set before is replaced) holds every
aligned entity (those "strict" and "contract" drop are not), also those `doc.ents` cannot:
spaCy's entities never overlap, so of two that "expand" brings onto one spaCy token (`Sarkozy(France` is one
there, two entities here) `doc.ents` keeps the longer, and "keep" adds none that overlap an earlier entity.
The group's `attrs["scores"]` are its entities' scores in order: with two ner_fast components in a pipeline,
`_.ner_fast_score` of an entity both found (same characters and label) is the later one's.

The component tags `doc.text` with ner-fast's own tokenizer and sentence splitter (the ones the model was
trained with), whatever spaCy's tokens are; `nlp.pipe` goes through `Tagger.pipe`, sentences of many
documents batched together. `nlp.to_disk` writes the package's path and checksum (never the weights);
`spacy.load` opens the package at that path again and refuses it if its checksum differs. A relative path is
read from the directory `spacy.load` runs in: give an absolute one for a pipeline loaded from anywhere.
"""
from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spacy.language import Language
from spacy.pipeline.span_ruler import prioritize_existing_ents_filter, prioritize_new_ents_filter
from spacy.tokens import Doc, Span

from ner_fast.package import PackageError, names_bundled, package_checksum, package_path
from ner_fast.engine import BATCH_SIZE, check_model
from ner_fast.doc import Entity
from ner_fast.atomic import atomic_write_json, read_json
from ner_fast.buckets import check_batch_size
from ner_fast.labels import LABEL_SETS, PACKAGE

if TYPE_CHECKING:
    from ner_fast.tagger import Tagger

#: `mode` values: keep the entities already set, or overwrite those ner-fast's overlap.
MODES = ("keep", "overwrite")
#: `alignment_mode` values (`Doc.char_span`'s) and the default.
ALIGNMENT_MODES = ("expand", "contract", "strict")
DEFAULT_ALIGNMENT = "expand"
#: The file `to_disk` writes inside the component's folder.
CONFIG_FILE = "ner_fast.json"

SCORE = "ner_fast_score"
MISALIGNED = "ner_fast_misaligned"


def _score(span: Span) -> float | None:
    """`span._.ner_fast_score`: ner-fast's score of an entity it set, with these characters and this label
    (None for any other span). A plain extension keys its values by characters only: an entity set before
    the component over the same characters ("Paris" as CITY, kept) read ner-fast's score of its own."""
    return span.doc.user_data.get((SCORE, span.start_char, span.end_char, span.label_))


if not Span.has_extension(SCORE):
    Span.set_extension(SCORE, getter=_score)
if not Doc.has_extension(MISALIGNED):
    Doc.set_extension(MISALIGNED, default=0)


@Language.factory(
    "ner_fast",
    default_config={"package": None, "labels": PACKAGE, "mode": MODES[0], "alignment_mode": DEFAULT_ALIGNMENT,
                    "batch_size": BATCH_SIZE},
    assigns=["doc.ents", "doc.spans", "token.ent_iob", "token.ent_type", f"span._.{SCORE}", f"doc._.{MISALIGNED}"],
    # What `nlp.evaluate` reports and weighs, as for spaCy's own "ner" (`NerFast.score`).
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_ner_fast(
    nlp: Language, name: str, package: str | None, labels: str | dict[str, str | None], mode: str, alignment_mode: str,
    batch_size: int,
) -> NerFast:
    """spaCy's factory of the "ner_fast" component (config: see the module docstring)."""
    return NerFast(name, package, labels, mode, alignment_mode, batch_size)


def align(doc: Doc, entities: Iterable[Entity], alignment_mode: str = DEFAULT_ALIGNMENT) -> tuple[list[Span], list[float], int]:
    """spaCy spans of ner-fast entities (character offsets into `doc.text`), each scored
    (`span._.ner_fast_score`), their scores in order, and how many entities were misaligned.

    The rule: `doc.char_span(start, end, label, alignment_mode=...)`. An entity whose span starts and ends
    on spaCy token boundaries becomes exactly that span in every mode. Otherwise (spaCy keeps "U.S.-led"
    one token where ner-fast may tag "U.S." alone) it counts as misaligned and "expand" widens it to the
    tokens it touches, "contract" narrows it to the tokens wholly inside it (dropped when none is) and
    "strict" drops it. The default is "expand": an entity is never lost, and the tokens it touches are
    the ones an application reading `token.ent_type_` should see marked; the price is a few characters
    more than the model marked (counted, and benchmarks/spacy.py measures what it changes in F1), and two
    entities widened onto one spaCy token overlap (both stay in the span group, `doc.ents` keeps one).
    """
    spans: list[Span] = []
    scores: list[float] = []
    misaligned = 0
    for e in entities:
        span = doc.char_span(e.start, e.end, label=e.label, alignment_mode=alignment_mode)
        if span is None or span.start_char != e.start or span.end_char != e.end:
            misaligned += 1
        if span is not None and len(span):
            doc.user_data[(SCORE, span.start_char, span.end_char, span.label_)] = e.score
            spans.append(span)
            scores.append(e.score)
    return spans, scores, misaligned


class NerFast:
    """The "ner_fast" pipeline component (made by spaCy through `make_ner_fast`; see the module docstring)."""

    def __init__(
        self,
        name: str = "ner_fast",
        package: str | os.PathLike[str] | None = None,
        labels: str | dict[str, str | None] = PACKAGE,
        mode: str = MODES[0],
        alignment_mode: str = DEFAULT_ALIGNMENT,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"ner_fast: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if alignment_mode not in ALIGNMENT_MODES:
            raise ValueError(f"ner_fast: alignment_mode must be one of {', '.join(ALIGNMENT_MODES)}, got {alignment_mode!r}")
        try:
            check_batch_size(batch_size)  # the tagger's own rule, now, not at the first document `pipe` tags
        except (TypeError, ValueError) as err:
            raise type(err)(f"ner_fast: {err}") from None
        self.name = name
        self.package = None if package is None else os.fspath(package)
        self.label_set = labels
        self.mode = mode
        self.alignment_mode = alignment_mode
        self.batch_size = int(batch_size)  # np.int64 passes the check; the config is JSON
        # spaCy imports this module (its entry points) whenever it makes a pipeline: onnxruntime only here.
        from ner_fast.tagger import Tagger

        try:
            self.tagger: Tagger = Tagger.load(self.package, labels=labels)
        except PackageError as err:
            if (self.package is None or names_bundled(self.package) or os.path.isabs(self.package)
                    or os.path.exists(self.package)):  # found here: what is wrong is the folder itself
                raise
            # A pipeline saved with a relative path opens it from wherever `spacy.load` runs.
            # Said as a condition: a plain word may as well be a bundled name misspelt (the error names those).
            raise PackageError(f"{err} (if the pipeline's package {self.package!r} is a folder: a relative path is read"
                               f" from the current directory {os.getcwd()}; give its absolute path in the config to open"
                               " it from anywhere)") from None
        try:
            check_model(self.tagger)  # spaCy hands over raw text: refused here, not at the first document
        except ValueError as err:
            raise ValueError(f"ner_fast: package {self.package}: {err}") from None
        self.checksum = package_checksum(package_path(self.package))

    # ------------------------------------------------------------------------------ tagging

    def __call__(self, doc: Doc) -> Doc:
        """Tag one document's text and set its entities."""
        return self.set_annotations(doc, self.tagger(doc.text).entities)

    def pipe(self, stream: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        """Documents of `stream` with their entities set, in order: their texts go through `Tagger.pipe`
        (sentences of many documents a tagging call, `self.batch_size` of them; `batch_size`, the
        documents a batch of `nlp.pipe`, does not change how ner-fast batches)."""
        docs, texts = itertools.tee(stream)
        tagged = self.tagger.pipe((doc.text for doc in texts), batch_size=self.batch_size)
        # `tagged` first: it reads `stream` ahead, so an error of `stream` reaches it (which yields the
        # documents before, then raises); `docs` only replays what was read. Pulling `docs` first would
        # meet the spent stream and end quietly, dropping the error and every document after it.
        for found, doc in zip(tagged, docs):
            yield self.set_annotations(doc, found.entities)

    def set_annotations(self, doc: Doc, entities: Sequence[Entity]) -> Doc:
        """Align `entities` to `doc`'s tokens (`align`), all of them into the span group `doc.spans[name]`, and
        merge them into `doc.ents` as `mode` says."""
        spans, scores, misaligned = align(doc, entities, self.alignment_mode)
        doc.spans[self.name] = spans
        # Its own scores, in the group's order: `_.ner_fast_score` is keyed by characters and label, so a
        # second ner_fast component (or a second entity widened onto the same tokens) gives it its score.
        doc.spans[self.name].attrs["scores"] = scores
        merge = prioritize_new_ents_filter if self.mode == "overwrite" else prioritize_existing_ents_filter
        doc.ents = sorted(merge(list(doc.ents), spans))
        doc._.set(MISALIGNED, misaligned)
        return doc

    def score(self, examples: Iterable[Any], **kwargs: Any) -> dict[str, Any]:
        """Entity precision, recall and F1, overall and per type, of `examples` (spaCy `Example`s), as spaCy's
        own "ner" scores them (`spacy.scorer.get_ner_prf`): `nlp.evaluate` reported none for this component."""
        from spacy.scorer import get_ner_prf

        return get_ner_prf(examples, **kwargs)

    @property
    def labels(self) -> tuple[str, ...]:
        """The entity labels this component may set (after the label map)."""
        return tuple(self.tagger.entity_labels)

    # ------------------------------------------------------------------------------ serialization

    def settings(self) -> dict[str, Any]:
        """What `to_disk` records: the package's path (null: the bundled one) and checksum, and the config."""
        return {"package": self.package, "checksum": self.checksum, "labels": self.label_set, "mode": self.mode,
                "alignment_mode": self.alignment_mode, "batch_size": self.batch_size, "label_map": self.label_map()}

    def label_map(self) -> dict[str, str | None]:
        """The label each of the package's entity types is set as (None: dropped): what `labels` gave."""
        return dict(zip(self.tagger.scheme.types, self.tagger.entity_types))

    def _check(self, saved: dict[str, Any], where: str) -> None:
        """Refuse a saved pipeline whose package is not the one this component opened (same path, other files),
        or whose labels now map otherwise (a labels file is recorded by its path: edited since, or another
        file of that name where the pipeline is loaded); pipelines saved before the map was recorded: the package."""
        if saved.get("checksum") != self.checksum:
            raise PackageError(
                f"{where}: the pipeline was saved with package {saved.get('package') or 'bundled'} of checksum "
                f"{saved.get('checksum')}, but {package_path(self.package)} now has checksum {self.checksum}"
            )
        then, now = saved.get("label_map"), self.label_map()
        if then is not None and then != now:
            changed = next(t for t in sorted({*then, *now}) if then.get(t) != now.get(t))
            relative = (f" (a relative path is read from the current directory {os.getcwd()})"
                        if isinstance(self.label_set, str) and self.label_set not in LABEL_SETS
                        and not os.path.isabs(self.label_set) else "")
            raise ValueError(f"{where}: the pipeline was saved with labels {self.label_set!r} setting {changed} as"
                             f" {then.get(changed)!r}; they now set it as {now.get(changed)!r}{relative}: put the labels"
                             " back as they were, or make the pipeline again")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its config and checksum (`_reopen`): where processes are spawned (macOS, Windows),
        `nlp.pipe(n_process=2)` pickles the pipeline, and the tagger's onnxruntime sessions cannot be."""
        return _reopen, (self.name, self.settings())

    def to_disk(self, path: str | os.PathLike[str], *, exclude: Iterable[str] = ()) -> None:
        """Write the package's path and checksum and the config into the folder `path` (no weights)."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / CONFIG_FILE, self.settings())

    def from_disk(self, path: str | os.PathLike[str], *, exclude: Iterable[str] = ()) -> NerFast:
        """Check what `to_disk` wrote against the package opened from the config (`spacy.load`)."""
        file = Path(path) / CONFIG_FILE
        self._check(read_json(file, "ner_fast component record"), str(file))
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        """`to_disk`'s record as bytes (`nlp.to_bytes`)."""
        return json.dumps(self.settings()).encode("utf-8")

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> NerFast:
        """Check `to_bytes`' record against this component's package."""
        self._check(json.loads(data), "ner_fast bytes")
        return self


def _reopen(name: str, settings: dict[str, Any]) -> NerFast:
    """The component `NerFast.__reduce__` pickled: its package opened again, refused if its checksum changed."""
    component = NerFast(name, settings["package"], settings["labels"], settings["mode"], settings["alignment_mode"],
                        settings["batch_size"])
    component._check(settings, f"ner_fast component {name!r} unpickled")
    return component
