"""The learning-rate schedule: `--lr-decay` once an epoch, or once every `--lr-decay-sentences` training
sentences where an epoch holds fewer (`run_setup.decay_step`)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import mxnet as mx
import pytest

from ner_fast.config import TrainConfig, resume_config
from ner_fast.option_table import LR_DECAY_SENTENCES
from ner_fast.prepare import prepare
from ner_fast.training.run_setup import decay_step
from ner_fast.training.train import train

TINY = {"hidden": 8, "word_dim": 8, "filters": 4, "char_dim": 4}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("prepared")
    prepare(max_sentences=100, buckets=[12, 20, 30], batch_size=16).save(folder)
    return str(folder)


def test_the_decay_step_is_an_epoch_or_the_updates_of_so_many_sentences() -> None:
    assert decay_step(767, 38_367, LR_DECAY_SENTENCES) == 767  # the bundled corpus: once an epoch, as measured
    assert decay_step(2_000, 100_000, LR_DECAY_SENTENCES) == 2_000  # a larger corpus: once an epoch too
    assert decay_step(32, 500, LR_DECAY_SENTENCES) == 2_455  # 500 sentences: 32 updates x 38,367 / 500
    assert decay_step(5, 40, 1) == 5  # runs recorded before the option (`config.BEFORE_OPTION`)


def _run(prepared: str, out: Path, every: int, epochs: int = 4) -> tuple[list[float], int, list[Any]]:
    """Train, spying on the scheduler MXNet is given; (the epochs' logged rates, batches an epoch, steps given)."""
    said: list[str] = []
    cfg = TrainConfig(out=str(out), data=prepared, batch_size=16, epochs=epochs, patience=0, arch=TINY,
                      learning_rate=0.01, lr_decay=0.5, lr_decay_sentences=every)  # fmt: skip
    steps: list[Any] = []
    real = mx.lr_scheduler.FactorScheduler.__init__

    def spy(self: Any, *args: Any, **kw: Any) -> None:
        steps.append(kw["step"])
        real(self, *args, **kw)

    mx.lr_scheduler.FactorScheduler.__init__ = spy
    try:
        result = train(cfg, progress=False, echo=said.append)
    finally:
        mx.lr_scheduler.FactorScheduler.__init__ = real
    batches = int(re.search(r"in (\d+) batch(?:es)? per epoch", "\n".join(said)).group(1))
    return [h["learning_rate"] for h in result.history], batches, steps


def test_a_small_corpus_decays_per_sentences_and_the_log_shows_mxnets_rate(prepared: str, tmp_path: Path) -> None:
    # 80 training sentences; the rate halves once every 200 sentences seen, not every epoch.
    rates, batches, steps = _run(prepared, tmp_path / "small", every=200)
    assert steps == [round(batches * 200 / 80)] and steps[0] > batches
    oracle = mx.lr_scheduler.FactorScheduler(step=steps[0], factor=0.5, base_lr=0.01)
    expected = [oracle(epoch * batches + 1) for epoch in range(4)]  # each epoch's first update, in order
    assert len(rates) == 4 and rates == pytest.approx(expected, rel=1e-12)
    assert rates[1] == rates[0] and rates[-1] < rates[0]  # fewer decays than epochs
    # As large as an epoch or less: once an epoch, as before the option.
    rates, batches, steps = _run(prepared, tmp_path / "epoch", every=80, epochs=3)
    assert steps == [batches] and rates == pytest.approx([0.01, 0.005, 0.0025], rel=1e-12)


def test_a_run_recorded_before_the_option_resumes_decaying_every_epoch(prepared: str, tmp_path: Path) -> None:
    import json

    _run(prepared, tmp_path / "old", every=200, epochs=1)
    path = tmp_path / "old" / "config.json"
    doc = json.loads(path.read_text())
    del doc["train"]["lr_decay_sentences"]
    path.write_text(json.dumps(doc))
    assert resume_config(tmp_path / "old", epochs=2).lr_decay_sentences == 1
