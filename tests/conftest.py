"""Shared fixtures (the bundled corpus, read once per session, and small corpus files) and the one
Hypothesis profile of the suite. Data and helpers that test modules import live in helpers.py:
pytest imports this file itself, and a test module must not import it a second time."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

from helpers import CONLL_SAMPLE, GMB_SAMPLE
from ner_fast.corpus import Corpus, read_corpus

# Property tests with no @settings of their own: 150 examples (the kernels' inputs have many
# storage kinds of str to cover), and no deadline, since a shared 2-core machine stalls at random.
settings.register_profile("ner-fast", max_examples=150, deadline=None)
settings.load_profile("ner-fast")

# `ner-fast train` makes OpenMP's idle threads spin (`cpu.spin_openmp_threads`), a default for a
# process that only trains; the test process (where CliRunner runs the command) does everything
# else too, and so do the commands it starts: their threads sleep when idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def bundled() -> Corpus:
    """The full bundled GMB corpus."""
    return read_corpus()


@pytest.fixture
def gmb_file(tmp_path: Path) -> Path:
    path = tmp_path / "sample.csv"
    path.write_bytes(GMB_SAMPLE)
    return path


@pytest.fixture
def conll_file(tmp_path: Path) -> Path:
    path = tmp_path / "sample.conll"
    path.write_text(CONLL_SAMPLE, encoding="utf-8")
    return path


@pytest.fixture
def move_bundled(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, Path], None]:
    """A function that points the bundled package NAME at another folder for this test (as in an
    installation where the package lies elsewhere, or is missing)."""
    import dataclasses

    from ner_fast import package

    def move(name: str, folder: Path) -> None:
        monkeypatch.setitem(package.BUNDLED, name, dataclasses.replace(package.BUNDLED[name], folder=Path(folder)))

    return move
