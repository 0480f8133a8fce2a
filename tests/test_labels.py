"""Label maps and descriptions (`ner_fast.labels`) and the tagger applying them."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ner_fast.labels import GMB_DESCRIPTIONS, LABEL_SETS, LabelError, LabelMap, label_map, package_descriptions
from ner_fast.package import load_package, default_package_path
from ner_fast.tagger import Tagger

TEXT = "Angela Merkel visited Paris on Monday. She met Iraqi officials and the Red Cross."
GMB = ["art", "eve", "geo", "gpe", "nat", "org", "per", "tim"]


@pytest.fixture(scope="module")
def plain() -> Tagger:
    return Tagger.load(device="cpu")


def test_the_package_map_keeps_labels_and_describes_them_with_gmb_defaults() -> None:
    # A package exported before model.json had label_descriptions (the bundled ensemble is one; here the default
    # package without the field): the GMB defaults.
    package = load_package(default_package_path())
    model = {k: v for k, v in package.model.items() if k != "label_descriptions"}
    plain = Tagger.load(dataclasses.replace(package, model=model), device="cpu")
    assert plain.label_map.name == "package"
    assert sorted(plain.entity_labels) == GMB
    assert plain.label_map.describe("gpe") == "geopolitical entity"
    assert plain.label_map.describe("nat") == "natural phenomenon"
    assert {plain.label_map.describe(label) for label in GMB} == set(GMB_DESCRIPTIONS.values())


def test_recorded_descriptions_win_over_the_defaults() -> None:
    package = load_package(default_package_path())
    model = {**package.model, "label_descriptions": {"geo": "a place on a map"}}
    tagger = Tagger.load(dataclasses.replace(package, model=model), device="cpu")
    assert tagger.label_map.describe("geo") == "a place on a map"
    assert tagger.label_map.describe("per") == ""  # the package described only geo
    assert package_descriptions({}, ["per", "xyz"]) == {"per": "person"}


@pytest.mark.parametrize(
    ("labels", "expected", "dropped"),
    [
        ("conll", {"Angela Merkel": "PER", "Paris": "LOC", "Iraqi": "MISC", "Red Cross": "ORG"}, {"Monday"}),
        ("ontonotes", {"Angela Merkel": "PERSON", "Paris": "GPE", "Iraqi": "NORP", "Monday": "DATE", "Red Cross": "ORG"}, set()),
    ],
)
def test_named_maps_rename_and_drop(plain: Tagger, labels: str, expected: dict[str, str], dropped: set[str]) -> None:
    own = {e.text: e.label for e in plain(TEXT).entities}
    assert own == {"Angela Merkel": "per", "Paris": "geo", "Monday": "tim", "Iraqi": "gpe", "Red Cross": "org"}
    tagger = Tagger.load(device="cpu", labels=labels)
    doc = tagger(TEXT)
    assert {e.text: e.label for e in doc.entities} == expected
    assert not dropped & {e.text for e in doc.entities}
    # The same map on pre-tokenized input, and the descriptions of the reported labels.
    tokens = "Angela Merkel visited Paris on Monday".split()
    assert [e.label for e in tagger.entities(tokens)] == [expected["Angela Merkel"], expected["Paris"], *(
        [] if "Monday" in dropped else [expected["Monday"]])]
    assert all(tagger.label_map.describe(label) for label in tagger.entity_labels)
    # Token tags stay the package's: the map is about entities.
    assert doc.tokens[0].tag == "B-per"


def test_every_gmb_label_has_a_place_in_each_named_map() -> None:
    for name in LABEL_SETS[1:]:
        labels = label_map(name, GMB)
        assert set(labels.mapping) == set(GMB), name
        assert all(labels.describe(t) for t in labels.reported(GMB)), name


def test_a_json_map_renames_drops_and_keeps_unlisted_labels(tmp_path: Path) -> None:
    file = tmp_path / "labels.json"
    file.write_text(json.dumps({"geo": "LOCATION", "gpe": "LOCATION", "tim": None}), encoding="utf-8")
    tagger = Tagger.load(device="cpu", labels=file)
    found = {e.text: e.label for e in tagger(TEXT).entities}
    assert found == {"Angela Merkel": "per", "Paris": "LOCATION", "Iraqi": "LOCATION", "Red Cross": "org"}
    assert tagger.label_map.describe("LOCATION") in ("geographical entity; geopolitical entity", "geopolitical entity; geographical entity")
    assert tagger.label_map.describe("per") == "person"
    assert "tim" not in tagger.entity_labels and "LOCATION" in tagger.entity_labels


def test_a_dict_maps_as_the_json_file_of_it_does(tmp_path: Path) -> None:
    # In Python the map is a dict: the same renames and the same checks as the JSON file holding it,
    # not a TypeError from deep inside (`expected str, bytes or os.PathLike object, not dict`).
    mapping = {"geo": "LOCATION", "gpe": "LOCATION", "tim": None}
    file = tmp_path / "labels.json"
    file.write_text(json.dumps(mapping), encoding="utf-8")
    by_dict, by_file = Tagger.load(device="cpu", labels=mapping), Tagger.load(device="cpu", labels=file)
    assert [e.label for e in by_dict(TEXT).entities] == [e.label for e in by_file(TEXT).entities]
    assert "LOCATION" in [e.label for e in by_dict(TEXT).entities]
    assert by_dict.label_map.mapping == by_file.label_map.mapping
    assert by_dict.label_map.descriptions == by_file.label_map.descriptions
    assert LabelMap.from_json(json.loads(json.dumps(by_dict.label_map.to_json()))) == by_dict.label_map
    with pytest.raises(LabelError, match=r"^labels: 'PER' not among the package's entity labels"):
        Tagger.load(device="cpu", labels={"PER": "PERSON"})
    with pytest.raises(LabelError, match=r"^labels: label 'geo' must map to a label"):
        label_map({"geo": 3}, GMB)
    with pytest.raises(LabelError, match=r"^labels must be package, conll, ontonotes, a JSON file or a dict; got int"):
        label_map(3, GMB)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{oops", "not valid JSON"),
        ('["geo"]', "must hold one JSON object"),
        ('{"geo": 3}', "label 'geo' must map to a label"),
        ('{"geo": ""}', "label 'geo' must map to a label"),
    ],
)
def test_a_bad_map_file_is_one_line_naming_the_file(tmp_path: Path, content: str, problem: str) -> None:
    file = tmp_path / "map.json"
    file.write_text(content, encoding="utf-8")
    with pytest.raises(LabelError) as caught:
        label_map(str(file), GMB)
    message = str(caught.value)
    assert message.startswith(f"{file}: ") and problem in message and "\n" not in message


def test_a_map_key_the_package_lacks_is_refused_naming_it(tmp_path: Path) -> None:
    # Upper-case CoNLL-style keys for GMB's lower-case labels: ignored, they would change nothing.
    file = tmp_path / "map.json"
    file.write_text(json.dumps({"PER": "PERSON", "geo": "LOC"}), encoding="utf-8")
    with pytest.raises(LabelError) as caught:
        Tagger.load(device="cpu", labels=file)
    message = str(caught.value)
    assert message.startswith(f"{file}: 'PER' not among") and "per" in message and "\n" not in message


@pytest.mark.parametrize("name", ["conll", "ontonotes"])
def test_a_named_map_of_none_of_the_packages_labels_is_refused(name: str) -> None:
    # A package trained on other types (PER, LOC, ORG): `--labels ontonotes` renamed nothing and said nothing,
    # as a JSON map's unknown key would have (refused above). Partly covered labels still map (the others
    # keep their names): `label_map` is given some GMB labels there.
    with pytest.raises(LabelError) as caught:
        label_map(name, ["LOC", "ORG", "PER"])
    message = str(caught.value)
    assert message.startswith(f"labels {name!r}: maps GMB's labels") and "LOC, ORG, PER" in message
    assert "\n" not in message
    assert label_map(name, ["per", "MISC"])("per") in ("PER", "PERSON")


def test_a_missing_map_file_is_named_as_missing(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="no such label-map file"):
        Tagger.load(device="cpu", labels=tmp_path / "labels.json")


def test_an_unknown_name_says_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="neither one of package, conll, ontonotes nor a JSON file"):
        Tagger.load(device="cpu", labels="bio")


@pytest.mark.parametrize("given", ["bio", "labels.json"])
@pytest.mark.parametrize("output_dir", [False, True])
def test_tag_names_a_labels_value_that_names_nothing_as_a_usage_error(given: str, output_dir: bool, tmp_path: Path) -> None:
    # It exited 1 without the pointer to --help, where every other option value that names nothing exits 2
    # (with --output-dir, whose labels are resolved on the client, too).
    from click.testing import CliRunner

    from ner_fast.cli import cli

    labels = str(tmp_path / given if given.endswith(".json") else given)
    if output_dir:
        (tmp_path / "in.txt").write_text("Paris\n", encoding="utf-8")
        args = ["tag", str(tmp_path / "in.txt"), "--input-format", "text", "--output-dir", str(tmp_path / "out")]
    else:
        args = ["tag", "--text", "Paris"]
    result = CliRunner().invoke(cli, [*args, "--labels", labels])
    assert result.exit_code == 2 and result.output.startswith("Error: --labels: "), result.output
    assert "tag --help')" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_label_map_travels_as_json() -> None:
    labels = label_map("conll", GMB)
    assert LabelMap.from_json(json.loads(json.dumps(labels.to_json()))) == labels


def test_malformed_label_descriptions_are_refused_naming_the_field() -> None:
    from ner_fast.package import PackageError, validate_model

    model = load_package(default_package_path()).model
    for bad in (["geo"], {"geo": 1}):
        with pytest.raises(PackageError, match="model.json: field 'label_descriptions'"):
            validate_model({**model, "label_descriptions": bad}, Path("model.json"))
