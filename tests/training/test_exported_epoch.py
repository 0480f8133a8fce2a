"""`export` and `bundle` record the validation F1 logged in training for the parameters they export: with
`--checkpoint last`, last.params.npz's epoch (the live parameters: with --average, the F1 of the live ones),
or none where none was logged for them (an interrupted run's partly trained epoch; an epoch that validated
the average alone), never the best epoch's.

Real tiny runs with scripted validation F1s (the training itself is real; `run_epoch`'s validation scores
are replaced), so that the best epoch is not the last one, whatever the data gives."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import ner_fast.training.train as train_module
from ner_fast.cli import cli
from ner_fast.cli.info import format_card, model_card
from ner_fast.config import TrainConfig, resume_config
from ner_fast.package import load_package
from ner_fast.training.bundle import build_default_package
from ner_fast.training.run_dir import logged_validation
from ner_fast.training.train import train

TINY = {"hidden": 12, "word_dim": 12, "filters": 6, "char_dim": 8}


def _logged(run: Path, which: str) -> dict:
    """`logged_validation` without its per-type scores, which the last epoch of an averaging run has not (checked),
    and the run's best epoch (state.json's, checked)."""
    logged = logged_validation(run, which)
    assert (logged["per_type"] is None) == (logged["f1"] is None or (which == "last" and _averaging(run))), logged
    assert logged["best_epoch"] == json.loads((run / "state.json").read_text()).get("best_epoch")
    return {k: v for k, v in logged.items() if k not in ("per_type", "best_epoch")}


def _averaging(run: Path) -> bool:
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1]).get("average") is not None


def _quiet(msg: str) -> None:
    pass


def _cfg(out: Path, **kw: Any) -> TrainConfig:
    # The bundled corpus (data None), so that `bundle` can rebuild the validation split and score it.
    options: dict[str, Any] = dict(out=str(out), data=None, max_sentences=160, buckets=[12, 20, 30], batch_size=16,
                                   epochs=2, patience=0, arch=TINY, average=0.0)
    return TrainConfig(**{**options, **kw})


def _script(monkeypatch: pytest.MonkeyPatch, scripted: dict[str, list[float]], stop_at: int | None = None) -> None:
    """`run_epoch` as it is, but validation reports scripted F1s (by epoch: "live" or, with --average,
    "average"), and with `stop_at` Ctrl-C in that epoch's training pass."""
    real = train_module.run_epoch

    def run_epoch(module: Any, data_iter: Any, scheme: Any, **kw: Any) -> Any:
        epoch = int(kw["desc"].split()[1])
        if kw["train"] and epoch == stop_at:
            raise KeyboardInterrupt
        scores, speed = real(module, data_iter, scheme, **kw)
        if kw["train"]:
            return scores, speed
        which = "average" if kw["desc"].endswith("(average)") else "live"
        return dataclasses.replace(scores, f1=scripted[which][epoch - 1]), speed

    monkeypatch.setattr(train_module, "run_epoch", run_epoch)


def _exported(run: Path, tmp_path: Path, which: str) -> tuple[dict[str, Any] | None, dict[str, Any], str]:
    """(export's `source` `validation`, bundle's provenance, `ner-fast info`'s text of the bundled package)
    of `run`'s checkpoint `which`."""
    result = CliRunner().invoke(cli, ["export", str(run), "--out", str(tmp_path / f"export-{which}"), "--checkpoint",
                                      which, "--quantize", "none", "--json"])
    assert result.exit_code == 0, result.output
    source = load_package(Path(json.loads(result.output)["package"])).model["source"]
    assert source["checkpoint"] == which
    out, provenance = build_default_package(run, tmp_path / f"bundle-{which}", command="x", which=which, quantize=None)
    return source["validation"], provenance, format_card(model_card(out))


def test_the_last_checkpoint_records_the_last_epochs_f1_not_the_best(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _script(monkeypatch, {"live": [0.5, 0.3]})  # epoch 1 is the best, epoch 2 the last
    run = tmp_path / "run"
    result = train(_cfg(run), progress=False, echo=_quiet)
    assert (result.best_epoch, len(result.history)) == (1, 2)
    assert (run / "best.params.npz").read_bytes() != (run / "last.params.npz").read_bytes()
    assert _logged(run, "last") == {"epoch": 2, "epochs_trained": 2, "f1": 0.3}
    assert _logged(run, "best") == {"epoch": 1, "epochs_trained": 2, "f1": 0.5}
    recorded, provenance, text = _exported(run, tmp_path, "last")
    assert (recorded["epoch"], recorded["f1"]) == (2, 0.3)
    assert (provenance["checkpoint"], provenance["checkpoint_epoch"], provenance["training_valid_f1"]) == ("last", 2, 0.3)
    assert (provenance["best_epoch"], provenance["epochs_trained"]) == (1, 2)
    assert "the last parameters, epoch 2 of 2, best epoch 1" in text and "exported parameters: 0.3000" in text
    recorded, provenance, text = _exported(run, tmp_path, "best")
    assert (recorded["epoch"], recorded["f1"]) == (1, 0.5)
    assert (provenance["checkpoint_epoch"], provenance["training_valid_f1"]) == (1, 0.5)
    assert "best epoch 1 of 2 (validation F1 in training 0.5000)" in text


def test_an_averaged_runs_last_checkpoint_records_the_live_parameters_f1(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Epoch 1 keeps the live parameters, 2 and 3 the average (best: 2); from epoch 4 the average alone is
    # validated. last.params.npz holds the live parameters: their F1 is `live_f1`, not the kept average's.
    _script(monkeypatch, {"average": [0.1, 0.3, 0.2, 0.25], "live": [0.2, 0.25, 0.15]})
    run = tmp_path / "run"
    train(_cfg(run, epochs=3, average=0.9), progress=False, echo=_quiet)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["valid"]["f1"] for m in metrics] == [0.2, 0.3, 0.2]  # the kept ones': not the live one of epoch 3
    assert _logged(run, "last") == {"epoch": 3, "epochs_trained": 3, "f1": 0.15}
    assert _logged(run, "best") == {"epoch": 2, "epochs_trained": 3, "f1": 0.3}
    recorded, provenance, _ = _exported(run, tmp_path / "3", "last")
    assert (recorded["epoch"], recorded["f1"]) == (3, 0.15)
    assert (provenance["checkpoint_epoch"], provenance["training_valid_f1"], provenance["best_epoch"]) == (3, 0.15, 2)
    train(resume_config(run, epochs=4), resume=True, progress=False, echo=_quiet)
    assert _logged(run, "last") == {"epoch": 4, "epochs_trained": 4, "f1": None}  # the average alone
    recorded, provenance, text = _exported(run, tmp_path / "4", "last")
    assert recorded is not None and (recorded["f1"], recorded["epochs_trained"], recorded["best_epoch"]) == (None, 4, 2)
    assert (provenance["checkpoint_epoch"], provenance["training_valid_f1"], provenance["best_epoch"]) == (4, None, 2)
    assert "none logged for them" in text and "no validation F1 logged in training" not in text


def test_an_interrupted_runs_last_checkpoint_records_no_f1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _script(monkeypatch, {"live": [0.5, 0.6]}, stop_at=2)  # Ctrl-C in epoch 2's training pass
    run = tmp_path / "run"
    result = train(_cfg(run), progress=False, echo=_quiet)
    assert result.stopped == "interrupted"
    state = json.loads((run / "state.json").read_text())
    assert state["interrupted"] and state["epoch"] == 1
    # last.params.npz holds epoch 2's partly trained parameters, for which nothing was logged.
    assert _logged(run, "last") == {"epoch": None, "epochs_trained": 1, "f1": None}
    recorded, provenance, text = _exported(run, tmp_path, "last")
    # No F1, but its epochs: the card of an exported package showed "after None finished, no best epoch".
    assert recorded is not None and (recorded["f1"], recorded["epochs_trained"], recorded["best_epoch"]) == (None, 1, 1)
    assert (provenance["checkpoint_epoch"], provenance["training_valid_f1"], provenance["best_epoch"]) == (None, None, 1)
    assert "a partly trained epoch (interrupted)" in text and "none logged for them" in text
    # Its best checkpoint is epoch 1's, with the F1 logged for it.
    assert _logged(run, "best") == {"epoch": 1, "epochs_trained": 1, "f1": 0.5}


def test_a_run_interrupted_in_its_first_epoch_has_no_best_epoch_on_the_card(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in epoch 1: no epoch finished, none was best; the card said 'of 0, best epoch None'."""
    _script(monkeypatch, {"live": [0.5]}, stop_at=1)
    run = tmp_path / "run"
    assert train(_cfg(run), progress=False, echo=_quiet).stopped == "interrupted"
    recorded, provenance, text = _exported(run, tmp_path, "last")
    assert recorded is not None and (recorded["f1"], recorded["epochs_trained"], recorded["best_epoch"]) == (None, 0, None)
    assert provenance["best_epoch"] is None and provenance["checkpoint_epoch"] is None
    [line] = [line for line in text.splitlines() if "the last parameters" in line]
    assert "None" not in line, line
    assert "a partly trained epoch (interrupted) after 0 finished, no best epoch" in line, line
