"""Every bucket's graph lists the same parameters in the same order (BucketingModule's shared optimizer
keys its states by position), and training runs on a corpus with one-token sentences (issue 8, defect 1)."""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import pytest

from ner_fast.checkpoint import load_params
from ner_fast.config import ModelConfig, TrainConfig, options
from ner_fast.training.model import check_bucket_params, make_sym_gen
from ner_fast.training.train import train
from helpers import POS, SENTENCES, TAGS

# Every on/off architecture option of the table (a new one is covered as soon as it is a row), with
# one and two LSTM layers of one or two directions; POS is fed (n_pos 5) exactly when use_pos is on.
SWITCHES = [o.name for o in options("model") if o.kind == "bool"]
VARIANTS = [dict(zip(SWITCHES, values)) for values in itertools.product([True, False], repeat=len(SWITCHES))]


def _config(switches: dict[str, bool], layers: int, pos_head: bool = False, directions: int = 2) -> ModelConfig:
    # The corpus has POS (n_pos 5) when the model reads it or predicts it with its auxiliary head.
    return ModelConfig(
        n_words=20, n_chars=15, n_tags=5, max_token_chars=4, n_pos=5 if switches["use_pos"] or pos_head else 0,
        num_layers=layers, char_dim=3, filters=2, word_dim=4, hidden=3, casing_dim=2, filter_widths=[1, 2],
        pos_aux_weight=1.0 if pos_head else 0.0, directions=directions, **switches,
    )  # fmt: skip


# The auxiliary POS head too, where the model does not read POS (the two exclude each other).
WITH_HEAD = [(v, head) for v in VARIANTS for head in (False, True) if not (head and v["use_pos"])]


@pytest.mark.parametrize("directions", [2, 1])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize(
    ("switches", "pos_head"), WITH_HEAD,
    ids=[",".join([k for k, on in v.items() if on] + ["pos_head"] * head) or "none" for v, head in WITH_HEAD],
)
def test_every_bucket_lists_the_same_parameters_in_the_same_order(
    switches: dict[str, bool], pos_head: bool, layers: int, directions: int
) -> None:
    assert {"crf", "use_pos", "use_casing"} <= set(SWITCHES)
    config = _config(switches, layers, pos_head, directions)
    sym_gen = make_sym_gen(config)
    lists = {n: [a for a in sym_gen(n)[0].list_arguments() if a not in ("data", "softmax_label")] for n in range(1, 7)}
    reference = lists[6]
    assert reference and ("crf_transitions" in reference) == config.crf
    assert any("_bwd_" in a for a in reference) == (directions == 2)
    for length, names in lists.items():
        assert names == reference, f"bucket {length}"


def test_the_training_guard_sees_a_bucket_that_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    import ner_fast.training.model as model

    config = _config({name: False for name in SWITCHES} | {"crf": True}, 1)
    check_bucket_params(config, [1, 2, 7])  # the fixed graph passes
    check_bucket_params(dataclasses.replace(config, directions=1), [1, 2, 7])  # and so does a forward-only one
    real = model.make_sym_gen

    def one_token_without_transitions(cfg: ModelConfig, distill: object = None):  # type: ignore[no-untyped-def]
        gen = real(cfg)
        # The graph as it was before the fix: a one-token bucket without crf_transitions.
        return lambda n: gen(n) if n > 1 else real(dataclasses.replace(cfg, crf=False))(n)

    monkeypatch.setattr(model, "make_sym_gen", one_token_without_transitions)
    with pytest.raises(RuntimeError, match="bucket 1"):
        check_bucket_params(config, [1, 2, 7])


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
@pytest.mark.parametrize("directions", [2, 1])
@pytest.mark.parametrize("crf", [True, False])
def test_training_runs_with_a_one_token_bucket(tmp_path: Path, crf: bool, directions: int) -> None:
    corpus = _write_conll(tmp_path / "short.conll")
    arch = {"hidden": 6, "word_dim": 6, "filters": 3, "char_dim": 4, "crf": crf, "directions": directions}
    cfg = TrainConfig(out=str(tmp_path / "run"), data=str(corpus), buckets=[1, 4, 8], batch_size=4, epochs=2,
                      split=(0.75, 0.25), arch=arch)  # fmt: skip
    result = train(cfg, progress=False, echo=lambda _: None)
    assert len(result.history) == 2
    doc = json.loads((tmp_path / "run" / "config.json").read_text())
    # Lengths 1 and 7: buckets 1 and 8 hold the training sentences, so the one-token bucket was trained on.
    assert doc["data"]["buckets"] == [1, 4, 8] and doc["data"]["summary"]["splits"]["train"]["buckets"] == 2
    for epoch in result.history:
        assert math.isfinite(epoch["train"]["loss"]) and math.isfinite(epoch["valid"]["loss"])
    # The checkpoint holds the LSTM directions it was trained with, and says how many.
    lstm = [n for n in load_params(tmp_path / "run" / "last.params.npz") if n.startswith("lstm")]
    assert lstm and any("_bwd_" in n for n in lstm) == (directions == 2)
    assert doc["model"]["directions"] == directions
