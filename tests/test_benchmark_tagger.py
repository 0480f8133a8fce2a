"""`benchmarks/tagger.py`'s onnxruntime passes feed each graph every input it takes (`Tagger.feeds`): a
format-2 package's graphs (the export default, the bundled `default`) refuse `features` alone."""
from __future__ import annotations

import os

import numpy as np
import pytest

from helpers import benchmark_module
from ner_fast import Tagger
from ner_fast.features import featurize

def _tagger_module(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    # tagger.py sets OMP_NUM_THREADS on import (for MXNet): kept to this test.
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    return benchmark_module("tagger", monkeypatch)


@pytest.mark.parametrize("dynamic", [False, True])
def test_session_pass_runs_a_format_2_package(monkeypatch: pytest.MonkeyPatch, dynamic: bool) -> None:
    bench = _tagger_module(monkeypatch)
    tagger = Tagger.load("default", device="cpu", threads=1)
    assert tagger._chars is not None  # format 2: the graphs take the character features
    sentences = [["Angela", "Merkel", "visited", "Paris", "."], ["The", "U.N.", "met", "in", "Geneva", "on", "Monday", "."]]
    words = [w for s in sentences for w in s]
    matrix = featurize(words, None, tagger.vocabs, tagger.max_token_chars).matrix
    offsets = np.cumsum([0, *map(len, sentences)]).astype(np.int64)
    batches = bench.bucket_batches(matrix, offsets, tagger.buckets, 2)
    assert batches
    bench.session_pass(tagger, dynamic=dynamic)(batches)
    assert len(tagger._chars) > 0  # the character features were computed and fed
