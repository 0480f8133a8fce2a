"""The spaCy component "ner_fast": entry point, doc.ents, keep/overwrite, alignment, serialization, displaCy,
and its entities against `Tagger.pipe`'s on GMB validation text. No downloaded spaCy model: spacy.blank("en")."""
from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

spacy = pytest.importorskip("spacy")

from ner_fast.package import PackageError, default_package_path, package_checksum  # noqa: E402
from ner_fast.prepare import split_corpus  # noqa: E402
from ner_fast.spacy_component import CONFIG_FILE, align  # noqa: E402
from ner_fast.tagger import Tagger  # noqa: E402
from ner_fast.doc import Entity  # noqa: E402

TEXT = "Angela Merkel visited Paris on Monday. She met Iraqi officials in Baghdad."


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger.load(device="cpu")


@pytest.fixture(scope="module")
def nlp() -> spacy.language.Language:
    pipeline = spacy.blank("en")
    pipeline.add_pipe("ner_fast")
    return pipeline


def triples(doc: spacy.tokens.Doc) -> list[tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def test_the_entry_point_makes_the_component_without_importing_ner_fast_first() -> None:
    script = (
        "import json, sys, spacy\n"
        "assert 'ner_fast' not in sys.modules\n"
        "nlp = spacy.blank('en')\n"
        "nlp.add_pipe('ner_fast', config={'labels': 'conll'})\n"
        f"doc = nlp({TEXT!r})\n"
        "print(json.dumps([[e.text, e.label_] for e in doc.ents]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ents = json.loads(done.stdout.strip().splitlines()[-1])
    assert ["Angela Merkel", "PER"] in ents and ["Paris", "LOC"] in ents
    assert not any(label == "tim" or text == "Monday" for text, label in ents)  # conll drops time expressions


def test_doc_ents_and_scores_are_the_taggers(nlp: spacy.language.Language, tagger: Tagger) -> None:
    doc = nlp(TEXT)
    expected = tagger(TEXT).entities
    assert len(expected) >= 4
    assert triples(doc) == [(e.start, e.end, e.label) for e in expected]
    assert [e._.ner_fast_score for e in doc.ents] == [e.score for e in expected]
    assert doc._.ner_fast_misaligned == 0
    assert [t.ent_type_ for t in doc[:2]] == ["per", "per"] and doc[0].ent_iob_ == "B" and doc[1].ent_iob_ == "I"


def test_labels_config_maps_the_labels(tagger: Tagger) -> None:
    pipeline = spacy.blank("en")
    pipeline.add_pipe("ner_fast", config={"labels": "ontonotes"})
    doc = pipeline(TEXT)
    mapped = {e.text: e.label_ for e in doc.ents}
    assert mapped["Angela Merkel"] == "PERSON" and mapped["Iraqi"] == "NORP" and mapped["Monday"] == "DATE"
    assert set(pipeline.get_pipe("ner_fast").labels) >= {"PERSON", "NORP", "DATE", "GPE"}


def test_a_label_map_given_as_a_dict_is_config_and_survives_to_disk(tmp_path: Path) -> None:
    # Tagger.load and Dask take a dict; the factory's `labels: str` refused it (a breaker trial).
    pipeline = spacy.blank("en")
    pipeline.add_pipe("ner_fast", config={"labels": {"per": "PERSON", "geo": None}})
    labels = {e.text: e.label_ for e in pipeline(TEXT).ents}
    unmapped = spacy.blank("en")
    unmapped.add_pipe("ner_fast")
    assert "geo" in {e.label_ for e in unmapped(TEXT).ents}  # so that the dropping below is seen
    assert labels["Angela Merkel"] == "PERSON" and "geo" not in labels.values()
    pipeline.to_disk(tmp_path / "nlp")
    again = spacy.load(tmp_path / "nlp")
    assert {e.text: e.label_ for e in again(TEXT).ents} == labels


def test_keep_and_overwrite_treat_existing_entities_as_the_entity_ruler_does() -> None:
    patterns = [{"label": "CITY", "pattern": "Paris"}, {"label": "FIRST", "pattern": "Angela"},
                {"label": "VERB", "pattern": "visited"}]
    found, scores = {}, {}
    for mode in ("keep", "overwrite"):
        pipeline = spacy.blank("en")
        pipeline.add_pipe("entity_ruler").add_patterns(patterns)
        pipeline.add_pipe("ner_fast", config={"mode": mode})
        doc = pipeline(TEXT)
        found[mode] = {(e.text, e.label_) for e in doc.ents}
        again = spacy.tokens.Doc(pipeline.vocab).from_bytes(doc.to_bytes())  # how nlp.pipe(n_process=2) sends a doc back
        scores[mode] = {(e.text, e.label_): e._.ner_fast_score for e in again.ents}
    # Only ner-fast's own entities have its score: the kept CITY over "Paris" read ner-fast's score of its
    # "geo" entity there (a plain span extension is keyed by characters only).
    assert scores["keep"][("Paris", "CITY")] is None and scores["keep"][("visited", "VERB")] is None
    assert 0 < scores["keep"][("Monday", "tim")] <= 1 and 0 < scores["overwrite"][("Paris", "geo")] <= 1
    # keep: the ruler's entities stay; ner-fast's that overlap them (Angela Merkel, Paris) are not added.
    assert {("Paris", "CITY"), ("Angela", "FIRST"), ("visited", "VERB"), ("Monday", "tim")} <= found["keep"]
    assert ("Angela Merkel", "per") not in found["keep"] and ("Paris", "geo") not in found["keep"]
    # overwrite: ner-fast's win where they overlap; the ruler's others stay.
    assert {("Paris", "geo"), ("Angela Merkel", "per"), ("visited", "VERB"), ("Monday", "tim")} <= found["overwrite"]
    assert ("Paris", "CITY") not in found["overwrite"] and ("Angela", "FIRST") not in found["overwrite"]


@pytest.mark.parametrize(
    ("mode", "expected"), [("expand", ("N.Y.-based", 0, 10)), ("contract", None), ("strict", None)]
)
def test_align_follows_char_span_and_counts_misaligned_entities(mode: str, expected: tuple | None) -> None:
    doc = spacy.blank("en")("N.Y.-based Acme hired Bob.")
    assert [t.text for t in doc][:2] == ["N.Y.-based", "Acme"]  # spaCy keeps N.Y.-based one token
    inside = Entity("geo", 0, 4, "N.Y.", 0.9, 0, 1)  # a span that ends inside spaCy's token
    exact = Entity("org", 11, 15, "Acme", 0.8, 1, 2)
    spans, scores, misaligned = align(doc, [inside, exact], mode)
    assert scores == [s._.ner_fast_score for s in spans]
    assert misaligned == 1
    got = [(s.text, s.start_char, s.end_char) for s in spans]
    assert ("Acme", 11, 15) in got
    if expected is None:
        assert len(got) == 1
    else:
        assert got[0] == expected and spans[0].label_ == "geo" and spans[0]._.ner_fast_score == 0.9


def test_bad_config_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode must be one of keep, overwrite"):
        spacy.blank("en").add_pipe("ner_fast", config={"mode": "merge"})
    with pytest.raises(ValueError, match="alignment_mode must be one of"):
        spacy.blank("en").add_pipe("ner_fast", config={"alignment_mode": "nearest"})
    # The tagger's own rule (`buckets.check_batch_size`), at once: True passed, and failed at the first `pipe`.
    from ner_fast.spacy_component import NerFast

    with pytest.raises(ValueError, match="^ner_fast: batch_size must be at least 1, got 0$"):
        spacy.blank("en").add_pipe("ner_fast", config={"batch_size": 0})
    with pytest.raises(TypeError, match="^ner_fast: batch_size must be an int, got bool True$"):
        NerFast(batch_size=True)  # type: ignore[arg-type]
    bad = tmp_path / "labels.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{bad}: not valid JSON"):
        spacy.blank("en").add_pipe("ner_fast", config={"labels": str(bad)})


def test_a_package_that_reads_pos_is_refused_when_added(tmp_path: Path) -> None:
    # Raw text has no POS tags: refused in one line when the pipeline is built, not at its first document.
    from helpers import make_checkpoint
    from ner_fast.training.export import export_model

    make_checkpoint(tmp_path / "model", buckets=[4], with_pos=True)
    package = export_model(tmp_path / "model", tmp_path / "pkg", quantize=None)
    assert Tagger.load(package, device="cpu").uses_pos
    with pytest.raises(ValueError) as caught:
        spacy.blank("en").add_pipe("ner_fast", config={"package": str(package)})
    message = str(caught.value)
    assert message.startswith(f"ner_fast: package {package}: this model reads POS tags") and "\n" not in message


def test_to_disk_and_load_round_trip_the_package_path_and_checksum(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    shutil.copytree(default_package_path(), package)
    pipeline = spacy.blank("en")
    pipeline.add_pipe("ner_fast", config={"package": str(package), "labels": "conll", "mode": "overwrite"})
    before = triples(pipeline(TEXT))
    pipeline.to_disk(tmp_path / "pipeline")
    saved = json.loads((tmp_path / "pipeline" / "ner_fast" / CONFIG_FILE).read_text(encoding="utf-8"))
    assert saved["package"] == str(package) and saved["checksum"] == package_checksum(package)
    assert saved["labels"] == "conll" and saved["mode"] == "overwrite"
    assert not list((tmp_path / "pipeline").rglob("*.onnx*"))  # the weights stay in the package
    loaded = spacy.load(tmp_path / "pipeline")
    component = loaded.get_pipe("ner_fast")
    assert (component.package, component.label_set, component.mode) == (str(package), "conll", "overwrite")
    assert triples(loaded(TEXT)) == before and before
    # The same path with other contents (a valid package whose manifest differs) is refused on load.
    manifest = json.loads((package / "manifest.json").read_text(encoding="utf-8"))
    manifest["versions"]["note"] = "re-exported"
    (package / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(PackageError, match="checksum"):
        spacy.load(tmp_path / "pipeline")


def test_a_labels_file_that_maps_otherwise_where_the_pipeline_loads_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A labels file is recorded by its path: loaded from another folder (another map.json there) or after an
    edit, the pipeline set other labels, silently (a serve-and-spaCy trial's finding: a /tmp/map.json of
    someone else's was used)."""
    made, elsewhere = tmp_path / "made", tmp_path / "elsewhere"
    for folder, geo in ((made, "LOCATION"), (elsewhere, "PLACE")):
        folder.mkdir()
        (folder / "map.json").write_text(json.dumps({"geo": geo}), encoding="utf-8")
    monkeypatch.chdir(made)
    pipeline = spacy.blank("en")
    pipeline.add_pipe("ner_fast", config={"labels": "map.json"})
    before = triples(pipeline(TEXT))
    assert "LOCATION" in {label for *_, label in before}
    pipeline.to_disk(tmp_path / "nlp")
    assert triples(spacy.load(tmp_path / "nlp")(TEXT)) == before  # the same map: loads
    monkeypatch.chdir(elsewhere)
    with pytest.raises(ValueError, match=r"the pipeline was saved with labels 'map.json' setting geo as 'LOCATION'; they"
                                         r" now set it as 'PLACE' \(a relative path is read from the current directory"):
        spacy.load(tmp_path / "nlp")
    monkeypatch.chdir(made)
    (made / "map.json").write_text(json.dumps({"geo": None}), encoding="utf-8")  # edited since: geo dropped
    with pytest.raises(ValueError, match="setting geo as 'LOCATION'; they now set it as None"):
        spacy.load(tmp_path / "nlp")


def test_to_bytes_round_trip(nlp: spacy.language.Language) -> None:
    data = nlp.to_bytes()
    copy = spacy.blank("en")
    copy.add_pipe("ner_fast")
    copy.from_bytes(data)
    assert triples(copy(TEXT)) == triples(nlp(TEXT))


def test_the_component_pickles_by_reopening_its_package(tmp_path: Path) -> None:
    # spaCy's `nlp.pipe(n_process=2)` pickles the pipeline where processes are spawned (macOS, Windows):
    # the component travels as its config and checksum, and opens the same package in the other process.
    package = tmp_path / "pkg"
    shutil.copytree(default_package_path(), package)
    pipeline = spacy.blank("en")
    pipeline.add_pipe("ner_fast", config={"package": str(package), "labels": "conll", "mode": "overwrite", "batch_size": 7})
    copy = pickle.loads(pickle.dumps(pipeline))
    component = copy.get_pipe("ner_fast")
    assert component.settings() == pipeline.get_pipe("ner_fast").settings()
    assert triples(copy(TEXT)) == triples(pipeline(TEXT)) and triples(copy(TEXT))
    data = pickle.dumps(pipeline.get_pipe("ner_fast"))
    manifest = json.loads((package / "manifest.json").read_text(encoding="utf-8"))
    manifest["versions"]["note"] = "re-exported"
    (package / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(PackageError, match="checksum"):  # another package at that path meanwhile
        pickle.loads(data)


def test_nlp_pipe_on_spawned_processes() -> None:
    script = (
        "import json, multiprocessing, spacy\n"
        "if __name__ == '__main__':\n"
        "    multiprocessing.set_start_method('spawn')\n"
        "    nlp = spacy.blank('en')\n"
        "    nlp.add_pipe('ner_fast')\n"
        f"    docs = list(nlp.pipe([{TEXT!r}] * 4, n_process=2, batch_size=2))\n"
        "    print(json.dumps([[[e.start_char, e.end_char, e.label_] for e in d.ents] for d in docs]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    expected = [[e.start, e.end, e.label] for e in Tagger.load(device="cpu")(TEXT).entities]
    assert expected and got == [expected] * 4


def test_displacy_renders_the_entities(nlp: spacy.language.Language) -> None:
    html = spacy.displacy.render(nlp(TEXT), style="ent", jupyter=False)
    for text, label in [("Angela Merkel", "per"), ("Paris", "geo"), ("Baghdad", "geo"), ("Iraqi", "gpe")]:
        assert text in html
        assert f">{label}</span>" in html


def test_nlp_pipe_equals_tagger_pipe_on_gmb_validation_text(bundled, nlp: spacy.language.Language, tagger: Tagger) -> None:
    """The component's entities equal `Tagger.pipe`'s but for misaligned ones, which it counts."""
    _, valid = split_corpus(bundled, (0.8, 0.2))
    # 400 sentences, as raw text: four sentences a document (the splitter's cuts count).
    sentences = [" ".join(valid.sentence(i).words) for i in range(400)]
    texts = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
    ours = list(nlp.pipe(texts, batch_size=16))
    theirs = list(tagger.pipe(texts))
    assert len(ours) == len(theirs) == len(texts)
    total = differing = misaligned = 0
    for doc, reference in zip(ours, theirs):
        expected = {(e.start, e.end, e.label) for e in reference.entities}
        got = set(triples(doc))
        total += len(expected)
        unmatched = expected - got
        # Every entity not found as is lies off spaCy's token boundaries.
        assert all(doc.char_span(a, b, alignment_mode="strict") is None for a, b, _ in unmatched)
        differing += len(unmatched)
        misaligned += doc._.ner_fast_misaligned
    assert total > 500
    assert differing == misaligned
    assert differing <= total // 100  # GMB's tokens are spaCy's or coarser: alignment rarely matters


def test_the_package_setting_takes_a_bundled_name(tmp_path: Path) -> None:
    # `package: "ensemble"`: the second bundled package, by the name `Tagger.load` takes; saved and loaded by name.
    from ner_fast.package import ENSEMBLE_PACKAGE

    pipeline = spacy.blank("en")
    component = pipeline.add_pipe("ner_fast", config={"package": "ensemble"})
    assert component.tagger.package.path == ENSEMBLE_PACKAGE
    assert component.checksum == package_checksum(ENSEMBLE_PACKAGE)
    doc = pipeline(TEXT)
    assert ("Paris", "geo") in {(e.text, e.label_) for e in doc.ents}
    pipeline.to_disk(tmp_path / "nlp")
    assert json.loads((tmp_path / "nlp" / "ner_fast" / CONFIG_FILE).read_text(encoding="utf-8"))["package"] == "ensemble"
    again = spacy.load(tmp_path / "nlp")
    assert again.get_pipe("ner_fast").tagger.package.path == ENSEMBLE_PACKAGE
    assert [(e.text, e.label_) for e in again(TEXT).ents] == [(e.text, e.label_) for e in doc.ents]


def test_a_relative_package_path_that_is_not_there_says_it_is_read_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pipeline saved with `package: "pkg"` and loaded from another directory: one message saying why.
    package = tmp_path / "pkg"
    shutil.copytree(default_package_path(), package)
    monkeypatch.chdir(tmp_path)
    pipeline = spacy.blank("en")
    pipeline.add_pipe("ner_fast", config={"package": "pkg"})
    pipeline.to_disk(tmp_path / "pipeline")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(PackageError) as caught:
        spacy.load(tmp_path / "pipeline")
    message = str(caught.value)
    assert "no such package folder" in message and "relative path" in message and str(elsewhere) in message
    assert "\n" not in message
    # A folder of that name here that is no package: the current directory was the right one, so not said.
    (elsewhere / "pkg").mkdir()
    with pytest.raises(PackageError) as caught:
        spacy.load(tmp_path / "pipeline")
    assert "manifest.json is missing" in str(caught.value) and "relative path" not in str(caught.value)
    monkeypatch.chdir(tmp_path)
    assert triples(spacy.load(tmp_path / "pipeline")(TEXT)) == triples(pipeline(TEXT))


def test_nlp_pipe_raises_when_its_texts_fail_after_yielding_those_before(nlp: spacy.language.Language) -> None:
    # spaCy's tokenizer raises on a lone surrogate while `nlp.pipe` makes the docs; the component must pass the
    # error on (as `Tagger.pipe` does), not end the stream early as if the texts were all done.
    got = []
    with pytest.raises(UnicodeEncodeError):
        for doc in nlp.pipe(["Angela Merkel visited Paris.", "\ud800", "Barack Obama"]):
            got.append(doc)
    assert [d.text for d in got] == ["Angela Merkel visited Paris."]
    assert ("Angela Merkel", "per") in {(e.text, e.label_) for e in got[0].ents}


def test_nlp_evaluate_scores_the_entities() -> None:
    """`nlp.evaluate` gave no ents_p/ents_r/ents_f for this component (it had no `score`), while spaCy's
    entity_ruler has them. The oracle: counts of exact (start, end, label) spans, by hand."""
    from spacy.training import Example

    pipeline = spacy.blank("en")
    pipeline.add_pipe("ner_fast")
    predicted = {(e.start_char, e.end_char, e.label_) for e in pipeline(TEXT).ents}
    assert len(predicted) >= 2
    kept = sorted(predicted)[:-1]  # gold: all but one predicted entity, plus one that is not predicted
    extra = (TEXT.index("visited"), TEXT.index("visited") + 7, "tim")  # a word no entity covers
    assert all(end <= extra[0] or start >= extra[1] for start, end, _ in predicted)
    gold = [*kept, extra]
    example = Example.from_dict(pipeline.make_doc(TEXT), {"entities": [list(e) for e in gold]})
    scores = pipeline.evaluate([example])
    right = len(predicted & set(gold))
    assert scores["ents_p"] == pytest.approx(right / len(predicted))
    assert scores["ents_r"] == pytest.approx(right / len(gold))
    assert scores["ents_f"] == pytest.approx(2 * right / (len(predicted) + len(gold)))
    assert set(scores["ents_per_type"]) >= {label for *_, label in predicted}


def test_entities_widened_onto_one_spacy_token_all_stay_in_the_span_group(nlp: spacy.language.Language) -> None:
    """spaCy keeps `Sarkozy(France` one token; ner-fast's per and geo both widen onto it and overlap. `doc.ents`
    cannot hold both (it keeps the longer); the span group keeps every entity."""
    text = "Gordon Brown (UK) and Nicolas Sarkozy(France) met."
    doc = nlp.make_doc(text)
    assert "Sarkozy(France" in [t.text for t in doc]
    per, geo = text.index("Nicolas Sarkozy"), text.index("France")
    entities = [Entity("per", per, per + 15, "Nicolas Sarkozy", 0.9, 5, 7), Entity("geo", geo, geo + 6, "France", 0.8, 8, 9)]
    doc = nlp.get_pipe("ner_fast").set_annotations(doc, entities)
    assert doc._.ner_fast_misaligned == 2
    grouped = {(s.label_, s.text) for s in doc.spans["ner_fast"]}
    assert grouped == {("per", "Nicolas Sarkozy(France"), ("geo", "Sarkozy(France")}
    assert [(e.label_, e.text) for e in doc.ents] == [("per", "Nicolas Sarkozy(France")]
    assert {s._.ner_fast_score for s in doc.spans["ner_fast"]} == {0.9, 0.8}


def test_the_span_group_holds_the_entities_keep_did_not_add() -> None:
    pipeline = spacy.blank("en")
    pipeline.add_pipe("entity_ruler").add_patterns([{"label": "CITY", "pattern": "Paris"}])
    pipeline.add_pipe("ner_fast")
    doc = pipeline(TEXT)
    assert ("Paris", "CITY") in {(e.text, e.label_) for e in doc.ents}
    assert ("Paris", "geo") in {(s.text, s.label_) for s in doc.spans["ner_fast"]}
    again = spacy.tokens.Doc(pipeline.vocab).from_bytes(doc.to_bytes())  # the group survives serialization
    assert [(s.text, s.label_) for s in again.spans["ner_fast"]] == [(s.text, s.label_) for s in doc.spans["ner_fast"]]


def test_two_components_keep_their_own_scores_in_their_span_groups() -> None:
    pipeline = spacy.blank("en")
    pipeline.add_pipe("ner_fast", name="one")
    pipeline.add_pipe("ner_fast", name="two", config={"package": "ensemble"})
    doc = pipeline(TEXT)
    expected = {name: [e.score for e in Tagger.load(package)(TEXT).entities] for name, package in (("one", "default"), ("two", "ensemble"))}
    for name in ("one", "two"):
        assert doc.spans[name].attrs["scores"] == expected[name] and len(doc.spans[name]) == len(expected[name]) > 0
    assert expected["one"] != expected["two"]  # else the test could not tell them apart
