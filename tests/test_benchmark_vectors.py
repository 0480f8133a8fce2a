"""`benchmarks/vectors.py` taken a seed at a time: `--merge` makes one table of the parts (refusing parts
that measured other things), and `--reuse` trains on a run an earlier invocation left unfinished."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from helpers import benchmark_module

CPU = {"model": "Some CPU", "flags": {"avx2": True, "avx512f": False, "avx512_vnni": False, "amx": False}, "cores": 2}


def part(module: Any, seed: int, f1s: dict[str, float], cpu: dict[str, Any] = CPU, **settings: Any) -> dict[str, Any]:
    """A document as one invocation (`--seeds SEED`) writes it, with `write_json`'s "cpu"."""
    runs = [{"variant": v, "seed": seed, "gmb_valid_f1_as_written": f1, "package_bytes": 1e6 * (i + 1),
             "tag_batch_tokens_per_s": 1000.0 * (seed + 1), "mean_epoch_s": 10.0 + seed} for i, (v, f1) in enumerate(f1s.items())]
    doc = module.assemble({"vectors": "glove-6b-50d", "epochs": 15, "seeds": [seed], **settings}, list(f1s),
                          {v: v for v in f1s}, runs, {})
    return {**doc, "cpu": cpu}


def test_parts_merge_into_one_table_of_their_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    module = benchmark_module("vectors", monkeypatch)
    parts = [("b.json", part(module, 1, {"none": 0.84, "wide": 0.86})), ("a.json", part(module, 0, {"none": 0.80, "wide": 0.85}))]
    doc = module.merge(parts)
    assert doc["settings"]["seeds"] == [0, 1]
    assert [(r["seed"], r["variant"]) for r in doc["runs"]] == [(0, "none"), (0, "wide"), (1, "none"), (1, "wide")]
    f1 = doc["summary"]["none"]["gmb_valid_f1_as_written"]
    assert f1["mean"] == pytest.approx(0.82) and f1["spread"] == pytest.approx(0.04)
    # One CPU: the speed figures are kept, the mean of both parts'.
    assert doc["summary"]["wide"]["tag_batch_tokens_per_s"]["mean"] == pytest.approx(1500.0)
    assert [p["file"] for p in doc["settings"]["parts"]] == ["b.json", "a.json"] and doc["measured_on"] == CPU
    text = module.table(doc)
    assert text.startswith("| 2 seed(s) | none | wide |")
    assert "tag_batch tokens/s" in text and "0.8200 ± 0.0200" in text


def test_parts_of_other_cpus_keep_their_f1s_but_not_their_speeds(monkeypatch: pytest.MonkeyPatch) -> None:
    module = benchmark_module("vectors", monkeypatch)
    other = {**CPU, "model": "Another CPU"}
    doc = module.merge([("a.json", part(module, 0, {"none": 0.8})), ("b.json", part(module, 1, {"none": 0.9}, other))])
    assert doc["summary"]["none"]["gmb_valid_f1_as_written"]["mean"] == pytest.approx(0.85)
    assert all(k not in doc["summary"]["none"] for k in module.MACHINE_KEYS)
    assert doc["summary"]["none"]["package_bytes"]["mean"] == pytest.approx(1e6)  # a size is no machine's
    assert [p["cpu"]["model"] for p in doc["settings"]["parts"]] == ["Some CPU", "Another CPU"] and doc["measured_on"] is None
    text = module.table(doc)
    assert "tag_batch tokens/s" not in text and "mean epoch" not in text and "package size" in text


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: part(m, 0, {"none": 0.9}), "a seed is in more than one part"),
    (lambda m: part(m, 1, {"none": 0.9}, epochs=4), "only --seeds may differ"),
    (lambda m: part(m, 1, {"none": 0.9, "wide": 0.9}), "only --seeds may differ"),
    (lambda m: {**part(m, 1, {"none": 0.9}), "benchmark": "front"}, "not a JSON written by benchmarks/vectors.py"),
    (lambda m: {**part(m, 1, {"none": 0.9}), "summary": {"small": {"500": {"none": 0.5}}}}, "small-data runs"),
])
def test_parts_that_measured_other_things_are_refused(change: Any, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = benchmark_module("vectors", monkeypatch)
    with pytest.raises(SystemExit, match=message) as raised:
        module.merge([("a.json", part(module, 0, {"none": 0.8})), ("b.json", change(module))])
    assert "b.json" in str(raised.value) or "seed" in message


def test_reuse_trains_on_a_run_left_unfinished(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = benchmark_module("vectors", monkeypatch)
    none = module.Variant("none", "without vectors")
    out = tmp_path / "gmb-none-0"
    first = module.train_one(out, None, 0, none, argparse.Namespace(epochs=1, reuse=False), 60)
    assert json.loads((out / "state.json").read_text())["epoch"] == 1 and first["best_epoch"] == 1
    again = module.train_one(out, None, 0, none, argparse.Namespace(epochs=2, reuse=True), 60)
    assert json.loads((out / "state.json").read_text())["epoch"] == 2
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2 and again["best_epoch"] in (1, 2)
    # Finished: measured again, not trained again.
    before = (out / "metrics.jsonl").read_text()
    assert module.train_one(out, None, 0, none, argparse.Namespace(epochs=2, reuse=True), 60)["best_valid_f1"] == again["best_valid_f1"]
    assert (out / "metrics.jsonl").read_text() == before
