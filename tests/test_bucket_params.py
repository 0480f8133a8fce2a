"""Every bucket's graph lists the same parameters in the same order (BucketingModule's shared optimizer
keys its states by position), and training runs on a corpus with one-token sentences (issue 8, defect 1)."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from ner_fast.config import ModelConfig, TrainConfig
from ner_fast.model import make_sym_gen
from ner_fast.train import train
from helpers import POS, SENTENCES, TAGS

VARIANTS = list(itertools.product([True, False], [1, 2], [0, 5], [True, False], [True, False]))


@pytest.mark.parametrize("crf,layers,n_pos,casing,fused", VARIANTS)
def test_every_bucket_lists_the_same_parameters_in_the_same_order(
    crf: bool, layers: int, n_pos: int, casing: bool, fused: bool
) -> None:
    config = ModelConfig(
        n_words=20, n_chars=15, n_tags=5, max_token_chars=4, n_pos=n_pos, use_pos=n_pos > 0, use_casing=casing,
        num_layers=layers, crf=crf, fused=fused, char_dim=3, filters=2, word_dim=4, hidden=3, casing_dim=2,
        filter_widths=[1, 2],
    )  # fmt: skip
    sym_gen = make_sym_gen(config)
    lists = {n: [a for a in sym_gen(n)[0].list_arguments() if a not in ("data", "softmax_label")] for n in range(1, 7)}
    reference = lists[6]
    assert reference and ("crf_transitions" in reference) == crf
    for length, names in lists.items():
        assert names == reference, f"bucket {length}"


def _write_conll(path: Path) -> Path:
    # Many one-token sentences (headlines, "-DOCSTART-"-like lines of other corpora) beside longer ones.
    rows = []
    for i in range(24):
        rows.append([("Reuters" if i % 2 else "Monday", "NNP", "B-org" if i % 2 else "B-tim")])
        s = i % len(SENTENCES)
        rows.append(list(zip(SENTENCES[s], POS[s], TAGS[s])))
    path.write_text("\n\n".join("\n".join("\t".join(t) for t in sent) for sent in rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("crf", [True, False])
def test_training_runs_with_a_one_token_bucket(tmp_path: Path, crf: bool) -> None:
    corpus = _write_conll(tmp_path / "short.conll")
    arch = {"hidden": 6, "word_dim": 6, "filters": 3, "char_dim": 4, "crf": crf}
    cfg = TrainConfig(out=str(tmp_path / "run"), data=str(corpus), buckets=[1, 4, 8], batch_size=4, epochs=2,
                      split=(0.75, 0.25), arch=arch)  # fmt: skip
    result = train(cfg, progress=False, echo=lambda _: None)
    assert len(result.history) == 2
    doc = json.loads((tmp_path / "run" / "config.json").read_text())
    # Lengths 1 and 7: buckets 1 and 8 hold the training sentences, so the one-token bucket was trained on.
    assert doc["data"]["buckets"] == [1, 4, 8] and doc["data"]["summary"]["splits"]["train"]["buckets"] == 2
    for epoch in result.history:
        assert math.isfinite(epoch["train"]["loss"]) and math.isfinite(epoch["valid"]["loss"])
