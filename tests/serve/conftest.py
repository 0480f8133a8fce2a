"""Fixtures of the server tests: a small model package exported from random weights (no POS), its
tagger, and an app with small limits served on an ephemeral port of 127.0.0.1."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import make_checkpoint
from ner_fast.atomic import atomic_write_json
from ner_fast.training.export import export_model
from ner_fast.package import MANIFEST_FILE, MODEL_FILE, write_manifest
from ner_fast.serve.app import create_app
from ner_fast.serve.settings import Settings
from ner_fast.tagger import Tagger
from serve.serving import LIMITS, PROVENANCE, running


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serve-model")
    # Seed 4 with the IOB2 Viterbi tags the page's sample text with three entity types (geo, tim, org).
    make_checkpoint(folder / "model", buckets=[4, 9], with_pos=False, seed=4, decode="bio")
    package = export_model(folder / "model", folder / "pkg", quantize=None)
    # A provenance record as the bundled package has one (the server passes it on, and its F1).
    model = json.loads((package / MODEL_FILE).read_text())
    model["provenance"] = PROVENANCE
    atomic_write_json(package / MODEL_FILE, model)
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    write_manifest(package, manifest["files"], {"made_by": "tests"}, manifest["format_version"])
    return package


@pytest.fixture(scope="session")
def tagger(package: Path) -> Tagger:
    return Tagger.load(package, device="cpu", threads=1)


@pytest.fixture(scope="module")
def app(tagger: Tagger):  # type: ignore[no-untyped-def]
    return create_app(tagger, Settings(max_wait_ms=5, limits=LIMITS))


@pytest.fixture(scope="module")
def url(app: object) -> Iterator[str]:
    with running(app) as base:
        yield base
