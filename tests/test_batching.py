"""Inference batching (`buckets.plan_batches`): every sentence once, in the smallest bucket that fits,
and long sentences grouped by length under a padded-token cap (one long sentence never pads short ones)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from hypothesis import given, settings
from hypothesis import strategies as st

from ner_fast import Tagger
from ner_fast.buckets import MAX_BATCH_TOKENS, plan_batches
from ner_fast.training.export import export_model
from ner_fast.package import load_package
from helpers import make_checkpoint


@settings(max_examples=200)
@given(
    st.lists(st.integers(0, 60), min_size=0, max_size=80),
    st.lists(st.integers(1, 30), max_size=5).map(lambda b: sorted(set(b))),
    st.integers(1, 9),
    st.integers(1, 120),
)
def test_plan_batches_against_a_plain_reference(lengths: list[int], buckets: list[int], batch_size: int, max_tokens: int) -> None:
    batches = plan_batches(np.array(lengths, dtype=np.int64), buckets, batch_size, max_tokens)
    seen = [i for _, members in batches for i in members.tolist()]
    assert sorted(seen) == [i for i, n in enumerate(lengths) if n > 0]  # every non-empty sentence, once
    for key, members in batches:
        assert 1 <= len(members) <= batch_size and members.dtype == np.int64
        sizes = [lengths[i] for i in members.tolist()]
        if key is not None:
            # The smallest bucket that fits, written out plainly; input order inside a bucket.
            assert all(key == min(b for b in buckets if b >= n) for n in sizes)
            assert members.tolist() == sorted(members.tolist())
        else:
            assert all(n > max(buckets, default=0) for n in sizes)
            assert len(members) == 1 or len(members) * max(sizes) <= max_tokens
    # Long sentences come sorted by length across their batches, so padding stays small.
    longer = [lengths[i] for key, members in batches if key is None for i in members.tolist()]
    assert longer == sorted(longer)
    # And each such batch is as full as the limits allow: the next sentence would break one of them.
    dynamic = [members.tolist() for key, members in batches if key is None]
    for batch, following in zip(dynamic, dynamic[1:]):
        assert len(batch) == batch_size or (len(batch) + 1) * lengths[following[0]] > max_tokens


class Recording:
    """An onnxruntime session that records the shape of every batch it runs."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.shapes: list[tuple[int, ...]] = []

    def get_inputs(self):  # noqa: ANN201
        return self.session.get_inputs()

    def get_outputs(self):  # noqa: ANN201
        return self.session.get_outputs()

    def run(self, names, feeds):  # noqa: ANN001, ANN201
        self.shapes.append(next(iter(feeds.values())).shape)
        return self.session.run(names, feeds)


def test_one_long_sentence_does_not_pad_a_batch(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "m", with_pos=False)
    pkg = load_package(export_model(tmp_path / "m", tmp_path / "pkg", buckets="dynamic", quantize=None))
    dynamic = Recording(ort.InferenceSession(str(pkg.graph_path(None)), providers=["CPUExecutionProvider"]))
    chars = ort.InferenceSession(str(pkg.char_graph_path), providers=["CPUExecutionProvider"])  # format 2: the character graph
    tagger = Tagger(pkg, {None: dynamic}, char_session=chars)
    rng = np.random.default_rng(0)
    sentences = [["word"] * 30 for _ in range(63)] + [["long"] * 2000]
    order = rng.permutation(len(sentences)).tolist()
    sentences = [sentences[i] for i in order]
    tags = tagger.tag_batch(sentences, batch_size=64)
    assert [len(t) for t in tags] == [len(s) for s in sentences]
    padded = [b * n for b, _, n in dynamic.shapes]
    assert dynamic.shapes and max(padded) <= max(MAX_BATCH_TOKENS, 2000)
    assert sum(padded) == 63 * 30 + 2000  # sorted by length: no padding at all here
    single = Tagger(pkg, {None: ort.InferenceSession(str(pkg.graph_path(None)), providers=["CPUExecutionProvider"])})
    assert tags == [single.tag(s) for s in sentences]
