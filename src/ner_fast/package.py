"""Model packages on disk: the manifest, checksums and format version (reading side; no onnx, no mxnet).

A package (written by `ner_fast.onnx_export.write_package`) is a folder:

    manifest.json        format_version, sha256 of every other file, versions it was made with
    model.json           vocabularies, tags, bucket lengths, feature settings, architecture
    weights.onnx.data    every weight, stored once and shared by all graphs
    bucket_<L>.onnx      one small graph per bucket length L
    dynamic.onnx         the same network with a free sequence length (sentences longer than every bucket)

`load_package` refuses a package whose files do not match their checksums or whose format is newer
than this code understands.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ner_fast.atomic import atomic_write_text

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.onnx.data"
DYNAMIC = "dynamic"
#: Where the default package is installed with ner-fast (package data; `./dev.sh build-model` makes it).
DEFAULT_PACKAGE = Path(__file__).parent / "models" / "default"


class PackageError(ValueError):
    """A model package that cannot be used: missing files, bad checksums, or a newer format."""


def default_package() -> Path:
    """The folder of the default package bundled with ner-fast; PackageError when this install has none."""
    if not (DEFAULT_PACKAGE / MANIFEST_FILE).is_file():
        raise PackageError(
            f"no bundled default package in {DEFAULT_PACKAGE} (build it with ./dev.sh build-model, "
            "or give a package path)"
        )
    return DEFAULT_PACKAGE


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


def write_manifest(folder: Path, files: Iterable[str], versions: Mapping[str, str]) -> dict[str, Any]:
    """Checksum `files` (names inside `folder`) and write `folder/manifest.json`; return the manifest."""
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {name: sha256_file(folder / name) for name in sorted(files)},
        "versions": dict(versions),
    }
    atomic_write_text(folder / MANIFEST_FILE, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest


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


def load_package(path: str | os.PathLike[str], verify: bool = True) -> Package:
    """Read a package folder, checking its format version and (with `verify`) every file's sha256.

    Raises PackageError with the package path and the reason when it cannot be used.
    """
    folder = Path(path)
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise PackageError(f"{folder}: not a model package ({MANIFEST_FILE} is missing)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        version = int(manifest["format_version"])
        files: dict[str, str] = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PackageError(f"{manifest_path}: unreadable manifest ({exc})") from exc
    if version > FORMAT_VERSION:
        raise PackageError(
            f"{folder}: package format_version {version} is newer than this ner-fast understands "
            f"({FORMAT_VERSION}); upgrade ner-fast"
        )
    if MODEL_FILE not in files:
        raise PackageError(f"{manifest_path}: {MODEL_FILE} is not listed")
    for name, expected in files.items():
        file = folder / name
        if Path(name).name != name:
            raise PackageError(f"{manifest_path}: file name {name!r} points outside the package")
        if not file.is_file():
            raise PackageError(f"{folder}: {name} is listed in the manifest but missing")
        if verify and sha256_file(file) != expected:
            raise PackageError(f"{file}: sha256 does not match the manifest (corrupted or modified package)")
    try:
        model = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise PackageError(f"{folder / MODEL_FILE}: not valid JSON ({exc})") from exc
    return Package(folder, model, manifest)
