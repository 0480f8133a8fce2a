"""Model packages on disk: the manifest, checksums and format version (reading side; no onnx, no mxnet).

A package (written by `ner_fast.training.package_writer.write_package`) is a folder:

    manifest.json        format_version, sha256 of every other file, versions it was made with
    model.json           vocabularies, tags, bucket lengths, feature settings, architecture
    weights.onnx.data    every weight, stored once and shared by all graphs
    bucket_<L>.onnx      one small graph per bucket length L
    dynamic.onnx         the same network with a free sequence length (sentences longer than every bucket)
    chars.onnx           (format 2) the character CNN alone: int32 character rows (n, max_token_chars) ->
                         float32 features (n, F); the graphs above then take those features as their second
                         input `char_features` (batch, seq_len, F) instead of computing them, so the tagger
                         can cache them per word form across batches (model.json `char_graph`)

`load_package` refuses a package whose files do not match their checksums, whose manifest does not
list every file the tagger opens (`model.json`, the shared weights, every graph), whose format version
is not one this code reads, or whose `model.json` lacks a field the tagger needs or holds a malformed
one (`validate_model`): a `PackageError` naming the file and the field, never a KeyError later.
The pretrained packages installed with ner-fast (package data, built by `./dev.sh build-model`, see
`ner_fast.training.bundle`) are named in one table, `BUNDLED`: `default` (alias `bundled`), what
`Tagger.load()` opens when given no path (one distilled network, robust to casing), and `ensemble`, its teacher.
`package_path` is the one rule turning what a user gives (a bundled name, a folder, None) into a folder.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ner_fast.atomic import OutputDir, atomic_write_text, claim_output_dir, read_json
from ner_fast.errors import OptionError, PackageError

#: The newest package format this code writes. 1: every graph computes its own character features from its
#: one input; 2: the character CNN is its own graph (`CHAR_GRAPH_FILE`, model.json `char_graph`) whose output the
#: other graphs take as a second input; a tagger that reads only format 1 cannot feed that input.
#: `format_version` is the one rule for which a package gets.
FORMAT_VERSION = 2
#: The package format versions this code reads (integers only: 1.9 is not 1).
SUPPORTED_VERSIONS = (1, 2)
#: The character graph of a format-2 package.
CHAR_GRAPH_FILE = "chars.onnx"
MANIFEST_FILE = "manifest.json"
#: The files every `ner-fast train` folder has (`folder_kind`): its settings and its vocabularies.
RUN_CONFIG_FILE = "config.json"
RUN_VOCAB_FILE = "vocab.json"
#: What makes a folder one `ner-fast prepare` wrote (`folder_kind`).
PREPARED_FILE = "prepared.json"
#: The parts of a `ner-fast tag --output-dir` folder (`dask.py`), which its own `MANIFEST_FILE` lists (not a
#: package's: `tagged_parts` tells the two apart).
TAGGED_PART = re.compile(r"part-\d{5,}\.jsonl")
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.onnx.data"
DYNAMIC = "dynamic"
# The installed ner_fast package (its data files: the bundled corpus, the bundled model package).
_NER_FAST = Path(__file__).resolve().parent
# The bundled pretrained package, inside the installed ner_fast package: one distilled network with GloVe
# rows, trained on re-cased copies too.
DEFAULT_PACKAGE = _NER_FAST / "models" / "default"
# The second bundled package: the int8 ensemble of two networks that the default one is distilled from.
ENSEMBLE_PACKAGE = _NER_FAST / "models" / "ensemble"
# How `corpus._read_bytes` names a zip archive's member: `ARCHIVE.zip[MEMBER]`, MEMBER maybe in folders of the archive.
_ZIP_MEMBER = re.compile(r"(.+?\.zip)(\[.*\])", re.IGNORECASE | re.DOTALL)
#: `ner-fast export --buckets` default: the dynamic graph alone. Measured (benchmarks/tagger.py --case graphs,
#: docs/ARCHITECTURE.md), it tags at least as fast as the 41 GMB bucket graphs at batch 1 and 64 (one
#: session's weights stay in cache) and loads in 0.2 s and 5 MB instead of 6 s and 131 MB.
DEFAULT_BUCKETS = "dynamic"
#: `ner-fast export --quantize` choices and default (`ner_fast.training.quantize`; the package's model.json
#: `quantization` records which). All int8 schemes store the matrices' int8 weights alike (onnxruntime dynamic
#: quantization, symmetric, per tensor: F1 within 0.001 of float32 at a quarter of the size, docs/TRAINING.md).
#: "int8" is batch-invariant: a sentence's output does not depend on what it is batched with nor on the
#: number of threads (float activations in the LSTM, one scale per row before the output layers); its
#: lookup tables (words, characters, casing) have one scale per row (since issue 24; one per table before).
#: "int8-dynamic" also quantizes activations with one scale per batch: faster on some CPUs (on an
#: AVX-512 VNNI/AMX Xeon 1.4x batched, 1.8x and more for one sentence: benchmarks/invariance.py), NOT
#: batch-invariant. "none": float32 weights
#: (exact parity with MXNet). Packages written before "int8-dynamic" existed record "int8" for it.
QUANTIZATIONS = ("int8", "int8-dynamic", "none")
DEFAULT_QUANTIZE = "int8"
#: Operators that quantize activations with one scale for the whole batch (what `int8-dynamic` writes): a graph
#: holding any of them gives a sentence scores that depend on its batch. `ner-fast info` flags them and
#: `training.quantize` recognises old packages by them (docs/ARCHITECTURE.md, "The same answer").
PER_BATCH_OPS = ("DynamicQuantizeLinear", "DynamicQuantizeLSTM", "DynamicQuantizeMatMul")
#: Every operator known to make a row's output depend on the other rows: `PER_BATCH_OPS`, and `Log`, which
#: onnxruntime computes one way in a vector's body and another in its tail (`quantize.ensemble_from_logits`).
#: The one list of `ner-fast info`'s "batch-invariant" and `quantize.is_batch_invariant`.
BATCH_DEPENDENT_OPS = (*PER_BATCH_OPS, "Log")


def graph_ops(path: str | os.PathLike[str], ops: Iterable[str]) -> set[str]:
    """Those of `ops` that some node of the ONNX graph file `path` is (its op_type), found without onnx (the
    runtime never imports it): a node's op_type is protobuf field 4, the bytes 0x22, its length, its name, so
    a node merely *named* like an op (`Log_2`, an Identity that replaced a Log) does not count."""
    data = Path(path).read_bytes()
    return {op for op in ops if b"\x22" + bytes([len(op)]) + op.encode() in data}


@dataclass(frozen=True)
class Bundled:
    """A pretrained package shipped with ner-fast: where it lies and the command that builds it."""

    #: Its folder inside the installed ner_fast package.
    folder: Path
    build: str


#: The bundled packages by name (the one table: `Tagger.load(NAME)`, every CLI package argument, the
#: spaCy component's `package`, `ner-fast train --init NAME` / `--teacher NAME`). `bundled` is an alias
#: of `default`. Read at call time, so a test points a name elsewhere with `monkeypatch.setitem`.
BUNDLED: dict[str, Bundled] = {
    # One distilled network with GloVe 6B rows: robust to casing and to words GMB never showed, 4x as fast
    # as the ensemble (docs/TRAINING.md, "The bundled build").
    "default": Bundled(DEFAULT_PACKAGE, "./dev.sh build-model"),
    # An int8 ensemble of two networks: the teacher of `default`, about 1 F1 point more on text cased like
    # news, at a quarter of the speed.
    "ensemble": Bundled(ENSEMBLE_PACKAGE, "./dev.sh build-model ensemble"),
}
BUNDLED_ALIASES = {"bundled": "default"}
#: Every name `bundled_package_path` takes.
BUNDLED_NAMES = (*BUNDLED, *BUNDLED_ALIASES)


def bundled_package_path(name: str = "default") -> Path:
    """The folder of the bundled package `name` (a key of `BUNDLED` or an alias).

    Raises PackageError for an unknown name, and when this installation lacks the package (a source tree
    where it was never built), saying how to build it.
    """
    canonical = BUNDLED_ALIASES.get(name, name)
    if canonical not in BUNDLED:
        raise PackageError(f"{name!r} is not a bundled model package (those are: {', '.join(BUNDLED_NAMES)})")
    bundled = BUNDLED[canonical]
    if not (bundled.folder / MANIFEST_FILE).is_file():
        raise PackageError(
            f"{bundled.folder}: no bundled model package {canonical!r} in this installation; build it with"
            f" `{bundled.build}` or pass the path of a package"
        )
    return bundled.folder


def bundled_name(folder: str | os.PathLike[str]) -> str | None:
    """The name `folder` is bundled under (a key of `BUNDLED`), None for any other folder."""
    resolved = Path(folder).resolve()
    return next((name for name, bundled in BUNDLED.items() if bundled.folder.resolve() == resolved), None)


def default_package_path() -> Path:
    """The folder of the default pretrained package bundled with ner-fast (what `Tagger.load()` opens).

    Raises PackageError when this installation has none (a source tree where it was never built).
    """
    return bundled_package_path("default")


def names_bundled(value: object) -> bool:
    """Whether a PACKAGE, `--init` or `--teacher` value names a bundled package rather than a folder: the one
    rule. Only the bare name does, a string that is exactly one of `BUNDLED_NAMES` (`default`); a path written
    as a path (with a slash, `./default`, `default/`, or starting with '.') or given as a `Path` is always the
    folder, even one named like a bundled package (`written_as_path` keeps a `Path` and a record so)."""
    return isinstance(value, str) and value in BUNDLED_NAMES


def written_as_path(path: str | os.PathLike[str]) -> str:
    """`path` as text that `names_bundled` reads as a path: a bare relative name (no slash, not starting with
    '.': what `os.fspath(Path("./default"))` and `portable_path` give for a folder `default` here) as
    `./NAME`, anything else unchanged."""
    text = os.fspath(path)
    return text if not text or "/" in text or os.sep in text or text.startswith(".") else f"./{text}"


def shown_path(folder: str | os.PathLike[str]) -> str:
    """How a message or a card names a package folder: as given, but one named like a bundled package as
    `./NAME` (`Path("./ensemble")` prints as "ensemble", which read back names the bundled package)."""
    text = os.fspath(folder)
    return written_as_path(text) if names_bundled(text) else text


def onnxruntime_can_open(path: str | os.PathLike[str]) -> bool:
    """Whether onnxruntime can open files at `path`: it takes UTF-8 paths only (a folder named in Latin-1 bytes
    reads in Python as lone surrogates, and onnxruntime's constructor refuses them with a page of signatures)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def package_path(path: str | os.PathLike[str] | None) -> Path:
    """The package folder `path` names: the default bundled package for None; the bundled package of
    that name for a string that is exactly one of `BUNDLED_NAMES` (`default`, `bundled`, `ensemble`), even
    when a folder of that name exists in the current directory (as spaCy resolves an installed package's
    name before a path: write `./ensemble` for the folder); any other string or path is a folder. An empty
    string is refused (PackageError): `Path("")` would quietly mean the current folder."""
    if path is None:
        return default_package_path()
    if isinstance(path, str) and not path.strip():
        raise PackageError(f"{path!r} is no package: give a package folder or a bundled name ({', '.join(BUNDLED_NAMES)})")
    if names_bundled(path):
        return bundled_package_path(path)
    return Path(path)


def folder_kind(path: str | os.PathLike[str]) -> str | None:
    """What the folder `path` holds, by the files each kind starts from: "package" (a model package: a
    `manifest.json` with a `files` object, or one that is not JSON, a damaged package's as far as anyone can
    tell), "tagged" (a `ner-fast tag --output-dir` folder: a `manifest.json` of its own, `planned_parts`, even
    before any part is done), "run" (a `ner-fast train` folder: `vocab.json` and `config.json`, written together
    when a run starts, the second with a `model` section), "prepared" (a `ner-fast prepare` folder,
    `prepared.json`) or None (none of them: another tool's manifest.json or config.json is no kind). The one
    rule that `--init`/`--teacher` SOURCE, `claim_folder` and the messages for a folder of another kind
    (`KIND_NAMES`) share."""
    folder = Path(path)
    manifest = _json_object(folder / MANIFEST_FILE)
    if manifest is not None:
        if planned_parts(manifest) is not None:
            return "tagged"
        if manifest is _UNREADABLE or isinstance(manifest.get("files"), dict):
            return "package"
    if (folder / RUN_VOCAB_FILE).is_file():
        config = _json_object(folder / RUN_CONFIG_FILE)
        if config is not None and isinstance(config.get("model"), dict):
            return "run"  # the first check of `config.read_config`, which reads it whole
    return "prepared" if (folder / PREPARED_FILE).is_file() else None


_UNREADABLE: dict[str, Any] = {}  # `_json_object` of a file that is there but not JSON


def _json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in the regular file `path`; `_UNREADABLE` where it is there but not JSON or not an
    object; None where there is no such file (a FIFO is none: never opened)."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return _UNREADABLE
    return doc if isinstance(doc, dict) else _UNREADABLE


def tagged_parts(folder: Path) -> set[str] | None:
    """The parts that the `manifest.json` of a `ner-fast tag --output-dir` run in `folder` plans, or None where
    that file is none (missing, unreadable, a package's): for `dask.run_files`."""
    return planned_parts(_json_object(folder / MANIFEST_FILE))


def planned_parts(manifest: Any) -> set[str] | None:
    """The parts a parsed `manifest.json` plans if it is a tagging run's (an object with `settings` or
    `partitions`, which a package's never has), else None: the one rule of what a tagging run's manifest is
    (`tagged_parts`, `load_package`). A damaged one is still a tagging run's; only names as `TAGGED_PART`
    are parts, so an edited manifest names no other file as the run's (which `--force` would remove)."""
    if not isinstance(manifest, dict) or not {"settings", "partitions"} & manifest.keys():
        return None
    entries = manifest.get("partitions")
    return {r["part"] for r in (entries if isinstance(entries, list) else [])
            if isinstance(r, dict) and isinstance(r.get("part"), str) and TAGGED_PART.fullmatch(r["part"])}


def claim_folder(
    path: str | os.PathLike[str], kind: str, owned: Callable[[Path], Collection[str] | None], *,
    force: bool | None = False, option: str = "--out", writes: Collection[str] = (),
) -> OutputDir:
    """`atomic.claim_output_dir` for a command that writes a folder of `kind` (a `folder_kind`), first refusing,
    even with --force, a folder of another kind (also one holding a stray file of this command's, such as a
    run with a prepared.json): the new files would hide it (`folder_kind` reads a manifest first, then a run,
    then prepared data) or replace its own. The one rule of prepare, train, export, the bundle and
    `tag --output-dir`."""
    found = folder_kind(path)
    if found not in (None, kind):
        raise OptionError(option, f"{path} is {KIND_NAMES[found]}: {KIND_NAMES[kind]} written into it would hide it or"
                                  " replace its files, even with --force; choose another folder")
    return claim_output_dir(path, owned, force=force, option=option, writes=writes)


#: How messages name each `folder_kind` (the one wording: "DIR: a model package, not a training run folder").
KIND_NAMES = {"package": "a model package", "run": "a training run",
              "prepared": "a prepared folder (`ner-fast prepare`: data, not a model)",
              "tagged": "a `ner-fast tag --output-dir` folder (tagged text, not a model)"}


def unknown_name_hint(given: str | os.PathLike[str]) -> str:
    """What a message about a package `given` that is not there adds when `given` may have meant a bundled
    one: for a plain word (the typo `ensembel`, `Ensemble`), the bundled names, which are exact and lower-case;
    for a path ending in one (`Path("ensemble")`, `./ensemble`, `ensemble/`), that only the plain string names
    it. Empty otherwise (`export/gmb`, `./ensembel`)."""
    path = Path(given)
    if len(path.parts) != 1:
        return ""
    if path.name in BUNDLED_NAMES:  # given as a path, else `package_path` had taken the name
        return f" (a path is a folder; the bundled package is the plain string {path.name!r})"
    if os.fspath(given) == path.name:
        return f" (nor a bundled package: those are {', '.join(BUNDLED_NAMES)})"
    return ""


def portable_path(path: str | os.PathLike[str]) -> str:
    """How package metadata records a path of the machine that built the package (the one rule, used
    for `model.json` `source` by `ner-fast export` and for `provenance` by `ner_fast.training.bundle`): a package
    is shipped, and the builder's absolute paths mean nothing elsewhere and leak its file system.

    - a file of the installed ner_fast package (the bundled corpus) is named as that resource:
      `ner_fast/data/ner_dataset.csv.zip`;
    - a path inside the current working directory (not the file-system root) is recorded relative to
      it, as a user of the same checkout types it: `runs/default-model`;
    - any other path by its last component only: `/home/alice/runs/cnn234` -> `cnn234`.

    Symbolic links are tried as given first, then resolved. The member of a zip archive, as a corpus read
    from one is named (`corpus.zip[data/member.csv]`), is kept whole after the archive's path; the current
    folder itself is named by its last component (`.` names nothing). The result never starts with `/`.
    """
    text = os.fspath(path)
    zipped = _ZIP_MEMBER.fullmatch(text)
    archive, member = zipped.groups() if zipped else (text, "")
    given = Path(os.path.abspath(archive))
    cwd = Path.cwd()
    bases = [(_NER_FAST, Path(_NER_FAST.name))] + ([(cwd, Path())] if cwd != Path(cwd.anchor) else [])
    for candidate in (given, Path(os.path.realpath(given))):
        for base, named in bases:
            if candidate.is_relative_to(base) and candidate != cwd:
                return (named / candidate.relative_to(base)).as_posix() + member
    return given.name + member


def format_version(char_graph: bool) -> int:
    """The format version of a package with (2) or without (1) a character graph: a package without one
    stays readable by every ner-fast that reads format 1."""
    return 2 if char_graph else 1


def graph_file(seq_len: int | None) -> str:
    """File name of the graph for a bucket length, or of the dynamic graph for None."""
    return f"{DYNAMIC}.onnx" if seq_len is None else f"bucket_{int(seq_len)}.onnx"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_files(folder: Path) -> set[str] | None:
    """The files of an earlier package written into `folder`: the manifest and what it lists (None: no package)."""
    try:
        listed = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(listed, dict):
        return None
    return {MANIFEST_FILE, *(name for name in listed if isinstance(name, str) and "/" not in name)}


def write_manifest(folder: Path, files: Iterable[str], versions: Mapping[str, str], version: int) -> dict[str, Any]:
    """Checksum `files` (names inside `folder`) and write `folder/manifest.json` for a package of format
    `version` (`format_version`); return the manifest."""
    manifest = {
        "format_version": version,
        "files": {name: sha256_file(folder / name) for name in sorted(files)},
        "versions": dict(versions),
    }
    atomic_write_text(folder / MANIFEST_FILE, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest


def package_checksum(path: str | os.PathLike[str]) -> str:
    """sha256 of a package's manifest.json: it lists the sha256 of every other file, so it names the
    package's exact contents (what a cluster worker checks before tagging with its own copy)."""
    return sha256_file(Path(path) / MANIFEST_FILE)


@dataclass(frozen=True)
class Package:
    """A verified model package: its folder, `model.json` and `manifest.json` contents."""

    path: Path
    model: dict[str, Any]
    manifest: dict[str, Any]

    @property
    def buckets(self) -> list[int]:
        """Bucket lengths that have their own graph, ascending."""
        return sorted(int(b) for b in self.model["buckets"])

    @property
    def tags(self) -> list[str]:
        """Tag strings, indexed by the model's output column."""
        return list(self.model["vocab"]["tags"])

    def graph_path(self, seq_len: int | None) -> Path:
        """Path of the graph for bucket length `seq_len`, or of the dynamic graph for None."""
        return self.path / graph_file(seq_len)

    @property
    def file_sizes(self) -> dict[str, int]:
        """Bytes of each of the package's own files: its manifest and what it lists, not others a `--force`
        folder kept (the size `info`, `export` and the bundle report)."""
        return {name: (self.path / name).stat().st_size for name in sorted({MANIFEST_FILE, *self.manifest["files"]})}

    @property
    def char_graph_path(self) -> Path | None:
        """Path of the character graph (format 2, model.json `char_graph`), None for a package whose graphs
        compute their own character features."""
        return self.path / CHAR_GRAPH_FILE if self.model.get("char_graph") else None


def quantization_scheme(model: Mapping[str, Any]) -> str:
    """The quantization of a package as `export --quantize` names it, from its model.json (which records
    float32, `none`, as null): what `ner-fast info` and serve's `/v1/model` say."""
    return model.get("quantization") or "none"


def load_package(path: str | os.PathLike[str], verify: bool = True) -> Package:
    """Read a package folder, checking its format version and (with `verify`) every file's sha256.

    Raises PackageError with the package path and the reason when it cannot be used.
    """
    folder = Path(path)
    shown = shown_path(folder)
    manifest_path = folder / MANIFEST_FILE
    if not folder.exists():
        raise PackageError(f"{shown}: no such package folder{unknown_name_hint(path)}")
    if not folder.is_dir():
        raise PackageError(f"{shown}: a file, not a model package (a package is a folder holding {MANIFEST_FILE})")
    if manifest_path.exists() and not manifest_path.is_file():
        raise PackageError(f"{manifest_path}: not a file")
    if not manifest_path.is_file():
        kind = folder_kind(folder)
        if kind == "run":
            raise PackageError(f"{shown}: {KIND_NAMES[kind]}, not a model package: make one with `ner-fast export {shown}`")
        if kind == "prepared":
            raise PackageError(f"{shown}: {KIND_NAMES[kind]}, not a model package")
        raise PackageError(f"{shown}: not a model package ({MANIFEST_FILE} is missing)")
    try:
        manifest = read_json(manifest_path, "package manifest")
    except ValueError as exc:  # not JSON, or not UTF-8: the file, and where and why
        raise PackageError(str(exc)) from None
    if planned_parts(manifest) is not None:  # read once: `folder_kind`'s "tagged", from the manifest in hand
        raise PackageError(f"{shown}: {KIND_NAMES['tagged']}, not a model package")
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        # Another tool's manifest.json (a browser extension's, a web app's): its KeyError said only 'format_version'.
        raise PackageError(f"{folder}: not a ner-fast model package ({MANIFEST_FILE} has no format_version)")
    version = manifest["format_version"]
    # bool is an int in Python, and 1.0 == 1: only a JSON integer counts.
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        newer = type(version) is int and version > FORMAT_VERSION
        raise PackageError(
            f"{manifest_path}: format_version {version!r} is "
            + (f"newer than this ner-fast understands ({FORMAT_VERSION}); upgrade ner-fast" if newer
               else f"not one this ner-fast reads ({', '.join(map(str, SUPPORTED_VERSIONS))})")
        )
    listed = manifest.get("files")
    # Its KeyError('files') said what was missing in Python's words, not the package's.
    if not isinstance(listed, dict):
        bad: str | None = "nothing" if listed is None else f"a {type(listed).__name__}"
    else:
        bad = next((f"{name!r}: {sha!r}" for name, sha in listed.items() if not isinstance(sha, str)), None)
    if bad is not None:
        raise PackageError(f"{manifest_path}: its files field must be an object of file name to sha256, got {bad}")
    files: dict[str, str] = dict(listed)
    versions = manifest.get("versions", {})  # what the package was made with: `ner-fast info` shows them
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        raise PackageError(f"{manifest_path}: its versions field must be an object of name to version, got {versions!r}")
    for name in (MODEL_FILE, WEIGHTS_FILE, graph_file(None)):
        if name not in files:
            raise PackageError(f"{manifest_path}: {name} is not listed (every file the tagger opens must be)")
    for name, expected in files.items():
        file = folder / name
        if Path(name).name != name:
            raise PackageError(f"{manifest_path}: file name {name!r} points outside the package")
        if not file.is_file():
            missing = "not a file" if file.exists() else "missing"
            raise PackageError(f"{folder}: {name} is listed in the manifest but {missing}")
        if verify and sha256_file(file) != expected:
            raise PackageError(f"{file}: sha256 does not match the manifest (corrupted or modified package)")
    try:
        model = read_json(folder / MODEL_FILE, "package's model description")
    except ValueError as exc:
        raise PackageError(str(exc)) from None
    validate_model(model, folder / MODEL_FILE)
    if bool(model.get("char_graph")) != (version == 2):
        raise PackageError(f"{folder / MODEL_FILE}: format_version {version} "
                           + ("needs a char_graph record" if version == 2 else "has no character graph, but char_graph is set"))
    if model.get("char_graph") and CHAR_GRAPH_FILE not in files:
        raise PackageError(f"{manifest_path}: {CHAR_GRAPH_FILE} is not listed (model.json char_graph names it)")
    for length in model["buckets"]:
        if graph_file(length) not in files:
            raise PackageError(f"{manifest_path}: {graph_file(length)} is not listed (model.json buckets has {length})")
    return Package(folder, model, manifest)


def _is_int(value: Any, minimum: int) -> bool:
    return type(value) is int and value >= minimum


def validate_model(model: Any, path: Path) -> None:
    """Check every field of a package's `model.json` the tagger reads; PackageError names the field."""
    from ner_fast.decode import DECODERS
    from ner_fast.schemes import TagScheme
    from ner_fast.vocab import Vocabularies

    def bad(field: str, what: str) -> PackageError:
        return PackageError(f"{path}: field {field!r} {what}")

    if not isinstance(model, dict):
        raise PackageError(f"{path}: not a JSON object")
    for field in ("vocab", "buckets", "max_token_chars", "n_features", "use_pos", "decode"):
        if field not in model:
            raise bad(field, "is missing")
    try:
        vocabs = Vocabularies.from_json(model["vocab"])
    except ValueError as exc:
        raise bad("vocab", f"is malformed ({exc})") from None
    n_tags = len(vocabs.tags)
    if n_tags == 0:
        raise bad("vocab", "has no tags")
    try:
        TagScheme(vocabs.tags.itos)
    except ValueError as exc:
        raise bad("vocab.tags", f"is malformed ({exc})") from None
    if "tags" in model and model["tags"] != vocabs.tags.itos:
        raise bad("tags", "differs from vocab.tags")
    buckets = model["buckets"]
    if not isinstance(buckets, list) or not all(_is_int(b, 1) for b in buckets):
        raise bad("buckets", f"must be a list of positive integers, got {buckets!r}")
    if not _is_int(model["max_token_chars"], 1):
        raise bad("max_token_chars", f"must be a positive integer, got {model['max_token_chars']!r}")
    if model["n_features"] != 3 + model["max_token_chars"]:
        raise bad("n_features", f"must be 3 + max_token_chars = {3 + model['max_token_chars']}, got {model['n_features']!r}")
    if not isinstance(model["use_pos"], bool):
        raise bad("use_pos", f"must be true or false, got {model['use_pos']!r}")
    if model["use_pos"] and vocabs.pos is None:
        raise bad("use_pos", "is true but vocab has no POS vocabulary")
    if model["decode"] not in DECODERS:
        raise bad("decode", f"must be one of {', '.join(DECODERS)}, got {model['decode']!r}")
    pos_tags = model.get("pos_tags")
    if pos_tags is not None and (
        not isinstance(pos_tags, list) or len(pos_tags) < 3 or not all(isinstance(t, str) for t in pos_tags)
    ):
        raise bad("pos_tags", "must be null or the POS head's tag list (<pad>, <unk>, then tags)")
    described = model.get("label_descriptions")
    if described is not None and (
        not isinstance(described, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in described.items())
    ):
        raise bad("label_descriptions", "must be an object of label -> description (strings)")
    crf = model.get("crf")
    if crf is not None:
        shapes = {"transitions": (n_tags, n_tags), "start": (n_tags,), "end": (n_tags,)}
        if not isinstance(crf, dict):
            raise bad("crf", "must be null or an object with transitions, start and end")
        for key, shape in shapes.items():
            if _shape(crf.get(key)) != shape:
                raise bad(f"crf.{key}", f"must be finite numbers of shape {shape} ({n_tags} tags)")
    for field in ("source", "provenance", "speed", "architecture"):  # records that `ner-fast info` reads
        if model.get(field) is not None and not isinstance(model[field], dict):
            raise bad(field, f"must be null or an object, got {model[field]!r}")
    chars = model.get("char_graph")
    if chars is not None and chars is not False and not (isinstance(chars, dict) and _is_int(chars.get("width"), 1)):
        raise bad("char_graph", f"must be null or the character graph's record (with its width), got {chars!r}")


def _shape(value: Any) -> tuple[int, ...] | None:
    """The shape of nested lists of numbers (bools excluded), None when ragged or not numbers."""
    if isinstance(value, list):
        inner = [_shape(v) for v in value]
        if not inner:
            return (0,)
        if inner[0] is None or any(i != inner[0] for i in inner):
            return None
        return (len(value), *inner[0])
    number = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and math.isfinite(value))
    return () if number else None
