"""Entity labels people can read: each label's description, and the label maps (the one home of both).

A package's entities carry its own labels (the bundled model's are GMB's: `geo`, `gpe`, `tim`, ...).
A *label map* renames them for the application that reads them, and drops the ones it maps to nothing:

    Tagger.load(labels="conll")         # PER, ORG, LOC, MISC; GMB's time expressions dropped
    Tagger.load(labels="ontonotes")     # PERSON, ORG, GPE, NORP, DATE, EVENT, PRODUCT (spaCy's names)
    Tagger.load(labels="my-labels.json")  # {"geo": "LOCATION", "gpe": "LOCATION", "tim": null}
    Tagger.load(labels={"geo": "LOCATION", "gpe": "LOCATION", "tim": None})   # the same, in Python

`ner-fast tag --labels`, `ner-fast serve --labels`, `ner_fast.dask` and the spaCy component take the same
values (`LABEL_SETS` or a JSON file). A map applies to entities (their `label`), not to the per-token tags.
A label the map does not list keeps its name; a label mapped to `null` is dropped with its entities.

Descriptions: a package records its labels' descriptions in `model.json` under `label_descriptions`
(`ner-fast export` writes them); a package without that field (packages exported before it) gets the
GMB descriptions of `GMB_DESCRIPTIONS` for the labels it has. A mapped label is described by its label
set (`conll`, `ontonotes`), or, from a JSON file, by the descriptions of the package labels mapped to it.

The judgement calls of the two maps (counts from the bundled GMB corpus, docs/ARCHITECTURE.md "Labels"):
GMB's `gpe` is mostly nationalities and peoples ("Iraqi", "Palestinian", "American"), which OntoNotes
calls NORP and CoNLL MISC; its `geo` is mostly countries and cities ("U.S.", "Iraq", "Baghdad"), OntoNotes'
GPE (its LOC, for mountains and rivers, gets nothing: a label map cannot split one label); `tim` is
mostly dates (weekdays, years, months): DATE, and CoNLL has no such type, so `conll` drops it; `art` is
mostly products ("Facebook", "Vioxx", "SpaceShipOne"): PRODUCT rather than WORK_OF_ART; `nat` is named
storms and diseases, the storms (the majority) being EVENT in OntoNotes; CoNLL puts everything that is
not a person, organization or location under MISC.

Imports nothing heavy (json and the standard library): the command line and the server read it.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ner_fast.atomic import read_json

#: What each GMB label means (the bundled corpus's entity types).
GMB_DESCRIPTIONS: Mapping[str, str] = MappingProxyType({
    "per": "person",
    "org": "organization",
    "geo": "geographical entity",
    "gpe": "geopolitical entity",
    "tim": "time expression",
    "art": "artifact",
    "eve": "event",
    "nat": "natural phenomenon",
})

#: The named label maps: package label -> label reported (None: dropped), and the reported labels'
#: descriptions. See the module docstring for the judgement calls.
_SETS: dict[str, tuple[dict[str, str | None], dict[str, str]]] = {
    "conll": (
        {"per": "PER", "org": "ORG", "geo": "LOC", "gpe": "MISC", "tim": None, "art": "MISC", "eve": "MISC", "nat": "MISC"},
        {"PER": "person", "ORG": "organization", "LOC": "location",
         "MISC": "miscellaneous name (nationalities, events, products, ...)"},
    ),
    "ontonotes": (
        {"per": "PERSON", "org": "ORG", "geo": "GPE", "gpe": "NORP", "tim": "DATE", "art": "PRODUCT", "eve": "EVENT",
         "nat": "EVENT"},
        {"PERSON": "people, including fictional", "ORG": "companies, agencies, institutions",
         "GPE": "countries, cities, states", "NORP": "nationalities or religious or political groups",
         "DATE": "absolute or relative dates or periods", "PRODUCT": "objects, vehicles, foods, ... (not services)",
         "EVENT": "named hurricanes, battles, wars, sports events, ..."},
    ),
}

#: The package's own labels (no map).
PACKAGE = "package"
#: The values `labels=` takes besides a JSON file's path.
LABEL_SETS = (PACKAGE, *_SETS)


class LabelError(ValueError):
    """A label map that cannot be used: an unknown name, or a JSON file that is missing or malformed."""


class UnknownLabels(LabelError):
    """A label map given by what names none (neither a map's name nor a file): the command line's usage error."""


@dataclass(frozen=True)
class LabelMap:
    """How a package's entity labels are reported: `name` (one of `LABEL_SETS`, or the JSON file's path),
    `mapping` (package label -> reported label, None: dropped; unlisted labels keep their name) and
    `descriptions` (reported label -> what it means)."""

    name: str
    mapping: Mapping[str, str | None] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, label: str) -> str | None:
        """The label an entity of package label `label` is reported as (None: dropped)."""
        return self.mapping.get(label, label)

    def reported(self, labels: Iterable[str]) -> list[str]:
        """The labels reported for the package labels `labels`, in their order, each once, dropped ones left out."""
        seen: dict[str, None] = {}
        for label in labels:
            target = self(label)
            if target is not None:
                seen.setdefault(target)
        return list(seen)

    def describe(self, label: str) -> str:
        """What reported label `label` means ("" when nobody said)."""
        return self.descriptions.get(label, "")

    def to_json(self) -> dict[str, Any]:
        """The map as JSON (`name`, `mapping`, `descriptions`): what travels to Dask workers and into configs."""
        return {"name": self.name, "mapping": dict(self.mapping), "descriptions": dict(self.descriptions)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabelMap:
        """The inverse of `to_json`."""
        return cls(str(data["name"]), dict(data["mapping"]), dict(data["descriptions"]))


def package_descriptions(model: Mapping[str, Any], labels: Iterable[str]) -> dict[str, str]:
    """Descriptions of a package's entity `labels`: `model.json`'s `label_descriptions`, else (packages
    exported before that field) the GMB ones (`GMB_DESCRIPTIONS`) of the labels that are GMB's."""
    recorded = model.get("label_descriptions")
    known: Mapping[str, str] = recorded if isinstance(recorded, Mapping) else GMB_DESCRIPTIONS
    return {label: known[label] for label in labels if isinstance(known.get(label), str)}


def default_descriptions(labels: Iterable[str]) -> dict[str, str]:
    """What `ner-fast export` records for a new package's `labels`: the GMB descriptions of those that are GMB's."""
    return {label: GMB_DESCRIPTIONS[label] for label in labels if label in GMB_DESCRIPTIONS}


def label_map(
    spec: str | os.PathLike[str] | Mapping[str, str | None] | LabelMap | None, labels: Iterable[str] = (),
    descriptions: Mapping[str, str] | None = None,
) -> LabelMap:
    """The `LabelMap` that `spec` names for a package whose entity labels are `labels`, described by
    `descriptions` (`package_descriptions`):

    - None or "package": the package's labels as they are;
    - "conll" or "ontonotes": the named maps (module docstring), refused when `labels` (when given) holds
      none of the GMB labels they map, since they would rename nothing;
    - anything else: a JSON file holding one object, package label -> reported label (a string) or null
      (dropped); each key must be one of `labels` (when given). Its reported labels are described by the
      descriptions of the package labels mapped to them;
    - a dict (any Mapping): what such a file holds, with the same checks (its name: "dict").

    Raises `LabelError`, one line naming the file (or the name) and the problem."""
    if isinstance(spec, LabelMap):
        return spec
    labels = list(labels)
    own = dict(descriptions or {})
    if spec is None or spec == PACKAGE:
        return LabelMap(PACKAGE, {}, own)
    if isinstance(spec, str) and spec in _SETS:
        mapping, described = _SETS[spec]
        if labels and not any(label in mapping for label in labels):  # it would rename nothing, silently
            raise LabelError(f"labels {spec!r}: maps GMB's labels ({', '.join(mapping)}); this package's are"
                             f" {', '.join(labels)}, none of them: keep them (package) or give a JSON map of them")
        # Labels the named map does not cover (a package not trained on GMB) keep their own description.
        extra = {label: own[label] for label in labels if label not in mapping and label in own}
        return LabelMap(spec, dict(mapping), {**extra, **described})
    if isinstance(spec, Mapping):
        name, where, mapping = "dict", "labels", _checked_map(spec, "labels")
    elif isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if not path.is_file():
            if path.suffix.lower() == ".json" and not path.exists():
                raise UnknownLabels(f"{os.fspath(spec)}: no such label-map file")
            names = ", ".join(LABEL_SETS)
            raise UnknownLabels(f"labels {os.fspath(spec)!r}: neither one of {names} nor a JSON file")
        name = where = os.fspath(path)
        mapping = _read_map(path)
    else:
        raise LabelError(f"labels must be {', '.join(LABEL_SETS)}, a JSON file or a dict; got {type(spec).__name__}")
    # A key the package does not have would be ignored, silently: a typo ("PER" for "per") or a map
    # written for another package. Checked when the package's labels are known.
    strangers = [key for key in mapping if labels and key not in labels]
    if strangers:
        raise LabelError(f"{where}: {', '.join(map(repr, strangers))} not among the package's entity labels"
                         f" ({', '.join(labels)})")
    described: dict[str, str] = {}
    for label in labels:
        target = mapping.get(label, label)
        if target is not None and label in own:
            described[target] = f"{described[target]}; {own[label]}" if target in described else own[label]
    return LabelMap(name, mapping, described)


def _read_map(path: Path) -> dict[str, str | None]:
    """A JSON label-map file: one object of string -> string or null (LabelError names the file and the problem)."""
    try:
        data = read_json(path, "label map")
    except ValueError as err:  # names the file: missing, unreadable, or not JSON (where and why)
        raise LabelError(str(err)) from None
    if not isinstance(data, dict):
        raise LabelError(f"{path}: must hold one JSON object, package label -> new label or null, got {type(data).__name__}")
    return _checked_map(data, str(path))


def _checked_map(data: Mapping[Any, Any], where: str) -> dict[str, str | None]:
    """A label map's object (a JSON file's or a dict): each package label to a label or None."""
    for key, value in data.items():
        if not isinstance(key, str):
            raise LabelError(f"{where}: the package labels it maps must be strings, got {key!r}")
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise LabelError(f"{where}: label {key!r} must map to a label (a non-empty string) or null, got {value!r}")
    return dict(data)
