"""Model packages are refused when a file was changed, is missing, or the format is newer."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ner_fast.onnx_export import export_model
from ner_fast.package import FORMAT_VERSION, MANIFEST_FILE, WEIGHTS_FILE, PackageError, load_package, sha256_file
from helpers import make_checkpoint


@pytest.fixture()
def package(tmp_path: Path) -> Path:
    make_checkpoint(tmp_path / "model")
    return export_model(tmp_path / "model", tmp_path / "pkg", buckets="4")


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


def test_a_newer_format_is_refused(package: Path) -> None:
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (package / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="newer than this ner-fast understands"):
        load_package(package)


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
    with pytest.raises(PackageError, match="unreadable manifest"):
        load_package(tmp_path)
