"""Model packages are refused when a file was changed, is missing, or the format is newer."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from ner_fast.training.export import export_model
from ner_fast.package import FORMAT_VERSION, MANIFEST_FILE, WEIGHTS_FILE, PackageError, load_package, sha256_file
from helpers import make_checkpoint


@pytest.fixture()
def package(tmp_path: Path) -> Path:
    make_checkpoint(tmp_path / "model")
    return export_model(tmp_path / "model", tmp_path / "pkg", buckets="4", quantize=None)


def test_a_fresh_package_loads(package: Path) -> None:
    pkg = load_package(package)
    assert pkg.manifest["format_version"] == FORMAT_VERSION
    for name, digest in pkg.manifest["files"].items():
        assert sha256_file(package / name) == digest
    assert pkg.graph_path(4).name == "bucket_4.onnx" and pkg.graph_path(None).name == "dynamic.onnx"


@pytest.mark.parametrize("name", [WEIGHTS_FILE, "bucket_4.onnx", "model.json"])
def test_a_changed_file_is_refused(package: Path, name: str) -> None:
    data = bytearray((package / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (package / name).write_bytes(bytes(data))
    with pytest.raises(PackageError, match=f"{name}: sha256 does not match"):
        load_package(package)
    if name != "model.json":  # the flipped byte leaves model.json unreadable even unverified
        load_package(package, verify=False)


def test_a_missing_file_is_refused(package: Path) -> None:
    (package / "dynamic.onnx").unlink()
    with pytest.raises(PackageError, match="dynamic.onnx is listed in the manifest but missing"):
        load_package(package, verify=False)
    (package / "dynamic.onnx").mkdir()  # there, and no file: it was called missing
    with pytest.raises(PackageError, match="dynamic.onnx is listed in the manifest but not a file"):
        load_package(package, verify=False)


def test_a_newer_format_is_refused(package: Path) -> None:
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (package / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="newer than this ner-fast understands"):
        load_package(package)


def test_a_format_2_package_is_refused_without_its_character_graph_and_format_1_with_one(tmp_path: Path, package: Path) -> None:
    assert load_package(package).char_graph_path == package / "chars.onnx"
    rewrite(package, MANIFEST_FILE, lambda m: m.update(format_version=1))
    with pytest.raises(PackageError, match="format_version 1 has no character graph, but char_graph is set"):
        load_package(package)
    rewrite(package, MANIFEST_FILE, lambda m: m.update(format_version=2))
    rewrite(package, "model.json", lambda m: m.update(char_graph=None))
    with pytest.raises(PackageError, match="format_version 2 needs a char_graph record"):
        load_package(package)
    # Without the character graph, a package is format 1, which every ner-fast reads.
    single = export_model(tmp_path / "model", tmp_path / "single", buckets="4", quantize=None, char_graph=False)
    pkg = load_package(single)
    assert pkg.manifest["format_version"] == pkg.model["format_version"] == 1 and pkg.char_graph_path is None
    assert not (single / "chars.onnx").exists()


def test_a_broken_character_graph_is_one_package_error_naming_it(tmp_path: Path, package: Path) -> None:
    """chars.onnx deleted, corrupted, with a wrong checksum, or swapped for another graph (unverified):
    `Tagger.load` raises one PackageError naming the file, never onnxruntime's or the cache's own error."""
    import shutil

    from ner_fast import Tagger

    chars = package / "chars.onnx"
    good = chars.read_bytes()
    cases = {
        "deleted": lambda: chars.unlink(),
        "corrupted": lambda: chars.write_bytes(good[: len(good) // 2]),
        "empty": lambda: chars.write_bytes(b""),
        "a wrong checksum": lambda: rewrite(package, MANIFEST_FILE, lambda m: m["files"].update({"chars.onnx": "0" * 64})),
        "the dynamic graph": lambda: shutil.copyfile(package / "dynamic.onnx", chars),
    }
    original = (package / MANIFEST_FILE).read_text()
    for what, breaking in cases.items():
        chars.write_bytes(good)
        (package / MANIFEST_FILE).write_text(original)
        breaking()
        for verify in (True, False):
            if what == "a wrong checksum" and not verify:
                continue  # the bytes are the right ones: it loads
            with pytest.raises(PackageError, match="chars.onnx") as info:
                Tagger.load(package, verify=verify)
            assert str(package) in str(info.value), (what, verify)


def test_a_manifest_pointing_outside_is_refused(package: Path) -> None:
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    manifest["files"]["../elsewhere"] = "0" * 64
    (package / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="outside the package"):
        load_package(package)


def test_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="not a model package"):
        load_package(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(PackageError, match=r"manifest.json: not valid JSON \(line 1, column 2: Expecting property name"):
        load_package(tmp_path)
    # Another tool's manifest.json (a browser extension's), or a JSON list: said only "('format_version')".
    for other in ('{"manifest_version": 3, "name": "My extension"}', "[1, 2, 3]"):
        (tmp_path / MANIFEST_FILE).write_text(other)
        with pytest.raises(PackageError) as err:
            load_package(tmp_path)
        assert str(err.value) == f"{tmp_path}: not a ner-fast model package (manifest.json has no format_version)"
    # Said "unreadable manifest (KeyError('files'))": Python's words, not the package's.
    for files, got in (("", "nothing"), (', "files": ["model.json"]', "a list"), (', "files": {"model.json": 1}', "'model.json': 1")):
        (tmp_path / MANIFEST_FILE).write_text('{"format_version": 2' + files + "}")
        with pytest.raises(PackageError, match=rf"manifest.json: its files field must be an object of file name to "
                                                rf"sha256, got {got}$"):
            load_package(tmp_path)


def rewrite(package: Path, name: str, change) -> None:
    """Apply `change` to the JSON document `name` and record its new checksum in the manifest (as a
    careless hand edit would), so that only the loader's own checks stand between it and the tagger."""
    doc = json.loads((package / name).read_text())
    change(doc)
    (package / name).write_text(json.dumps(doc))
    if name != MANIFEST_FILE:
        manifest = json.loads((package / MANIFEST_FILE).read_text())
        manifest["files"][name] = sha256_file(package / name)
        (package / MANIFEST_FILE).write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", [WEIGHTS_FILE, "dynamic.onnx", "bucket_4.onnx", "chars.onnx", "model.json"])
def test_every_file_the_tagger_opens_must_be_listed(package: Path, name: str) -> None:
    rewrite(package, MANIFEST_FILE, lambda m: m["files"].pop(name))
    data = bytearray((package / name).read_bytes())
    data[len(data) // 2] ^= 0xFF  # unlisted, a corruption would go unseen
    (package / name).write_bytes(bytes(data))
    with pytest.raises(PackageError, match=f"{name} is not listed"):
        load_package(package)


@pytest.mark.parametrize("version", [0, 1.9, 1.0, "1", True, None, -1])
def test_only_supported_integer_format_versions_load(package: Path, version: object) -> None:
    rewrite(package, MANIFEST_FILE, lambda m: m.update(format_version=version))
    with pytest.raises(PackageError, match=r"format_version .* is not one this ner-fast reads \(1, 2\)"):
        load_package(package)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda m: m.pop("max_token_chars"), "max_token_chars"),
        (lambda m: m.update(max_token_chars="8"), "max_token_chars"),
        (lambda m: m.update(n_features=5), "n_features"),
        (lambda m: m.update(buckets=[4, 0]), "buckets"),
        (lambda m: m.update(buckets=[4, 6]), "bucket_6.onnx"),  # no graph for 6 in the manifest
        (lambda m: m.update(use_pos="yes"), "use_pos"),
        (lambda m: m.update(decode="greedy"), "decode"),
        (lambda m: m["vocab"].pop("words"), "vocab"),
        (lambda m: m["vocab"].update(tags=["O", 3]), "vocab"),
        (lambda m: (m["vocab"]["tags"].append("PER"), m["tags"].append("PER")), "vocab.tags"),
        (lambda m: m.update(tags=["O"]), "tags"),
        (lambda m: m.update(crf={"transitions": [[0.0]], "start": [0.0], "end": [0.0]}), "crf.transitions"),
        (lambda m: m.update(crf=[1, 2]), "crf"),
        # A CRF of NaNs decoded every sentence to O, exit 0 (a diverged run's export, or an edit).
        (lambda m: m.update(crf={"transitions": [[0.0] * len(m["tags"])] * len(m["tags"]),
                                 "start": [float("nan")] * len(m["tags"]), "end": [0.0] * len(m["tags"])}), "crf.start"),
        # Records `ner-fast info` reads: a traceback ('bool' object has no attribute 'get').
        (lambda m: m.update(char_graph=True), "char_graph"),
        (lambda m: m.update(provenance="x"), "provenance"),
        (lambda m: m.update(source=[1]), "source"),
    ],
)
def test_a_malformed_model_json_is_refused_naming_the_field(package: Path, change, field: str) -> None:
    rewrite(package, "model.json", change)
    with pytest.raises(PackageError, match=re.escape(field)) as info:
        load_package(package)
    assert str(package) in str(info.value) and "model.json" in str(info.value)


def test_portable_path_records_no_path_of_the_building_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ner_fast
    from ner_fast.corpus import bundled_corpus_path
    from ner_fast.package import portable_path

    # A file of the installed package is named as that resource, whatever the current folder.
    corpus = bundled_corpus_path()
    assert corpus.is_file() and corpus.is_absolute()
    resource = "ner_fast/data/ner_dataset.csv.zip"
    assert portable_path(corpus) == resource
    assert portable_path(f"{corpus}[ner_dataset.csv]") == resource + "[ner_dataset.csv]"
    monkeypatch.chdir(Path(ner_fast.__file__).resolve().parent.parent)  # src/ or site-packages
    assert portable_path(corpus) == resource
    # Inside the current folder: relative to it, given absolute or relative, symlinks kept as given.
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (work / "runs" / "a").mkdir(parents=True)
    (elsewhere / "shared" / "b").mkdir(parents=True)
    (work / "linked").symlink_to(elsewhere / "shared")
    monkeypatch.chdir(work)
    assert portable_path(work / "runs" / "a") == "runs/a"
    assert portable_path("runs/a") == "runs/a"
    assert portable_path("./runs/../runs/a/") == "runs/a"
    assert portable_path(work / "linked" / "b") == "linked/b"
    # Anywhere else: the last component alone (a name inside a zip stays with its file).
    assert portable_path(elsewhere / "shared" / "b") == "b"
    assert portable_path("../elsewhere/shared/b") == "b"
    assert portable_path("/no/such/corpus.zip[corpus.csv]") == "corpus.zip[corpus.csv]"
    # A current folder that is the file system's root would make every path "relative": not so.
    monkeypatch.chdir("/")
    assert portable_path(work / "runs" / "a") == "a"


def test_the_absolute_path_detector_of_the_tests_finds_them() -> None:
    # The oracle of the "no absolute path in model.json" tests must see each kind it is meant to see.
    from helpers import absolute_paths

    doc = {"a": {"model_dir": "/home/alice/runs/a"}, "b": ["/run3", "C:\\runs\\x", "cmd --out=/tmp/x/y", "x.zip"],
           "/etc/k": 1, "vocab": ["/", "bbl/day", "a/b", "-/-"]}
    found = absolute_paths(doc)
    assert [w for w, _ in found] == ["a.model_dir", "b[0]", "b[1]", "b[2]", "/etc/k (key)"]


def test_portable_path_keeps_a_zip_members_folders_and_names_the_current_folder(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A corpus read from a zip is named `ARCHIVE[MEMBER]` (`corpus._read_bytes`), and the member may sit in
    folders of the archive: the member is kept whole (it was cut to `train.csv]`). The current folder itself
    (`ner-fast export .` inside a run) is recorded by its name, not as `.`, which names nothing."""
    from ner_fast.package import portable_path

    outside = "/home/alice/corpora/gmb.zip[data/train set/ner.csv]"
    assert portable_path(outside) == "gmb.zip[data/train set/ner.csv]"
    run = tmp_path / "runs" / "cnn234"
    run.mkdir(parents=True)
    (run / "gmb.zip").touch()
    monkeypatch.chdir(tmp_path)
    assert portable_path(f"{run / 'gmb.zip'}[data/ner.csv]") == "runs/cnn234/gmb.zip[data/ner.csv]"
    monkeypatch.chdir(run)
    assert portable_path(".") == "cnn234"
    assert portable_path(run) == "cnn234"
    assert portable_path("gmb.zip[data/ner.csv]") == "gmb.zip[data/ner.csv]"
    # A file name with brackets that is no zip member is a plain name.
    assert portable_path("/elsewhere/notes[1]/x[2].csv") == "x[2].csv"


@pytest.mark.parametrize("versions", [None, [], "1.0", {"onnx": 1}])
def test_a_manifest_whose_versions_are_not_names_to_versions_is_refused(package: Path, versions: object) -> None:
    """`ner-fast info` shows them: a null crashed it with a traceback, while tagging went on."""
    rewrite(package, MANIFEST_FILE, lambda m: m.update(versions=versions))
    with pytest.raises(PackageError, match=r"manifest.json: its versions field must be an object of name to version"):
        load_package(package)


def test_a_file_or_a_folder_named_manifest_is_no_package(tmp_path: Path, package: Path) -> None:
    (tmp_path / "default.zip").write_bytes(b"PK")
    with pytest.raises(PackageError, match=r"default.zip: a file, not a model package \(a package is a folder"):
        load_package(tmp_path / "default.zip")
    (tmp_path / "odd" / MANIFEST_FILE).mkdir(parents=True)
    with pytest.raises(PackageError, match=r"odd/manifest.json: not a file$"):
        load_package(tmp_path / "odd")


def _swap_in(package: Path, name: str, data: bytes) -> None:
    """Replace one of the package's files and record its checksum, so only the tagger's checks remain."""
    (package / name).write_bytes(data)
    rewrite(package, MANIFEST_FILE, lambda m: m["files"].update({name: sha256_file(package / name)}))


def test_graphs_that_disagree_with_model_json_are_refused_at_load(tmp_path: Path) -> None:
    """A bucket graph swapped for another length, a tag list or POS list that no longer fits the graphs,
    a character graph whose width model.json misstates: each named at load (they failed at the first
    call with onnxruntime's traceback or an unnamed "17 tag probabilities for 16 tags", or not at all)."""
    from ner_fast.tagger import Tagger

    make_checkpoint(tmp_path / "run", use_pos=False, pos_aux_weight=1.0)  # POS tags of its own: a head
    built = export_model(tmp_path / "run", tmp_path / "built", buckets="4,9", quantize=None)
    n_tags = len(json.loads((built / "model.json").read_text())["tags"])
    assert Tagger.load(built).pos_tags  # the fixture has a POS head

    def copy(name: str) -> Path:
        return Path(shutil.copytree(built, tmp_path / name))

    swapped = copy("swapped")
    _swap_in(swapped, "bucket_4.onnx", (built / "bucket_9.onnx").read_bytes())
    with pytest.raises(PackageError, match=r"bucket_4.onnx: the graph has 9 tokens \(its bucket length\), model.json says 4"):
        Tagger.load(swapped)

    def drop_last_tag(m: dict) -> None:
        m["vocab"]["tags"].pop()
        m["tags"], m["crf"] = m["vocab"]["tags"], None

    fewer = copy("fewer")
    rewrite(fewer, "model.json", drop_last_tag)
    with pytest.raises(PackageError, match=rf"dynamic.onnx: the graph has {n_tags} tags, model.json says {n_tags - 1}"):
        Tagger.load(fewer, buckets=[])
    pos = copy("pos")
    rewrite(pos, "model.json", lambda m: m.update(pos_tags=m["pos_tags"][:5]))
    with pytest.raises(PackageError, match=r"POS tags \(model.json pos_tags\), model.json says 5"):
        Tagger.load(pos)
    width = copy("width")
    rewrite(width, "model.json", lambda m: m["char_graph"].update(width=99))
    with pytest.raises(PackageError, match=r"chars.onnx: makes \d+ character features a token, model.json char_graph says 99"):
        Tagger.load(width)
    with pytest.raises(TypeError, match="session_options must be an onnxruntime.SessionOptions, got str"):
        Tagger.load(built, session_options="x")


def test_weights_linked_out_of_the_folder_are_named_with_the_way_out(tmp_path: Path, package: Path) -> None:
    """git-annex and DVC leave the large file a link into their store: onnxruntime refuses to follow it
    out of the folder, which it said as "External data path validation failed" on dynamic.onnx."""
    from ner_fast.tagger import Tagger

    store = tmp_path / "annex"
    store.mkdir()
    (package / WEIGHTS_FILE).rename(store / WEIGHTS_FILE)
    (package / WEIGHTS_FILE).symlink_to(Path("..") / "annex" / WEIGHTS_FILE)
    load_package(package)  # the checksums hold: the file is the same
    with pytest.raises(PackageError, match=rf"{WEIGHTS_FILE}: a link out of the package folder \(to .*annex.*\), which"
                                           r" onnxruntime refuses to read weights through: put the file itself"):
        Tagger.load(package)


def test_a_path_that_is_not_utf8_is_named_and_export_refuses_one(tmp_path: Path, package: Path) -> None:
    """onnxruntime takes UTF-8 paths only: a folder named in Latin-1 bytes gave a page of constructor
    signatures blamed on dynamic.onnx, and export wrote a package there that nothing could load."""
    from ner_fast.errors import OptionError
    from ner_fast.tagger import Tagger

    latin = tmp_path / os.fsdecode(b"pkg_\xe9")
    shutil.copytree(package, latin)
    with pytest.raises(PackageError, match=r"the package's path is not valid UTF-8, which onnxruntime cannot open: rename"):
        Tagger.load(latin)
    with pytest.raises(OptionError, match=r"--out: .* is not valid UTF-8, and onnxruntime could not open a package there"):
        export_model(tmp_path / "model", tmp_path / os.fsdecode(b"out_\xe9"), quantize=None)
    assert not (tmp_path / os.fsdecode(b"out_\xe9")).exists()
