"""benchmarks/gpu_check.sh without a GPU: its `--cpu-only` dry run goes through every step and
writes its JSON, and where MXNet cannot use the GPU the check says so and still runs onnxruntime."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import float_tol

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
DATA = ["--sentences", "120", "--tag-sentences", "60"]
# The serving step on the bundled model: a few clients and requests, one open-loop rate.
SERVE = ["--serve-sentences", "24", "--serve-clients", "4", "--serve-requests", "20", "--serve-rates", "0.5",
         "--serve-open-requests", "40"]
TINY = [*DATA, *SERVE, "--train-args", "--hidden 8 --word-dim 8 --filters 4 --char-dim 4"]


def _check(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "gpu_check.json"
    run = subprocess.run(
        ["bash", str(SCRIPT), "--venv", sys.prefix, *options, "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.exists(), run.stdout + run.stderr
    return run, json.loads(out.read_text())


def test_the_script_parses_and_refuses_unknown_options() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    run = subprocess.run(["bash", str(SCRIPT), "--no-such-option"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "--no-such-option" in run.stderr


@pytest.mark.slow
def test_cpu_only_dry_run_goes_through_every_step(tmp_path: Path) -> None:
    run, report = _check(tmp_path, "--cpu-only", "--", *TINY)
    assert run.returncode == 0, run.stdout + run.stderr
    assert report["mode"].startswith("cpu-only") and report["failures"] == []
    mx = report["mxnet"]
    # The probe's float32 dot products of 4 terms (products up to 2.5, sums up to 10) against NumPy's.
    assert mx["probe"]["ok"] and mx["probe"]["result"]["max_abs_diff"] <= float_tol(4, 10.0)
    for name in ("cpu", "gpu"):
        assert mx[name]["ok"] and mx[name]["context"] == "cpu" and mx[name]["train_loss"] > 0
        assert mx[name]["train_tokens_per_s"] > 0
    # The same seed and data on the same device: the comparison must find no difference at all.
    compared = mx["compared"]
    assert compared["ok"] and compared["train_loss_rel_diff"] == compared["valid_loss_rel_diff"] == 0
    assert compared["max_param_abs_diff"] == 0
    rt = report["onnxruntime"]
    assert rt["ok"] and rt["model"].startswith("trained") and rt["sentences"] == 60 and rt["tokens"] > 60
    assert rt["max_proba_abs_diff"] == 0 and rt["proba_ok"]
    assert rt["cpu_tokens_per_s"] > 0 and rt["device_tokens_per_s"] > 0
    assert "tagger tokens/s" in run.stdout
    serving = report["serving"]
    assert serving["ok"], serving
    assert serving["providers"] == {name: ["CPUExecutionProvider"] for name in ("batching_threads1", "batching_off_threads1")}
    assert serving["requests_per_s"]["batching"] > 0 and serving["requests_per_s"]["batching_off"] > 0
    assert serving["speedup"] == round(serving["requests_per_s"]["batching"] / serving["requests_per_s"]["batching_off"], 2)
    assert serving["target_met"] == (serving["speedup"] >= 2.0)
    assert serving["benchmark"]["device"] == "cpu" and serving["benchmark"]["sentences"] == 24
    assert len(serving["open_loop"]) == 1 and serving["open_loop"][0]["batching"]["p50_ms"] > 0
    assert "dynamic batching" in run.stdout and "target 2x" in run.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU: MXNet may well use it")
def test_without_a_usable_gpu_mxnet_is_marked_failed_and_onnxruntime_still_runs(tmp_path: Path) -> None:
    # Not --cpu-only, on a machine whose MXNet has no GPU: the probe fails, GPU training is not run.
    # Training on the CPU is made to fail too (an option `ner-fast train` refuses), so the onnxruntime
    # part falls back to a model with random weights; it runs, and fails only for want of CUDA.
    run, report = _check(tmp_path, "--skip-install", "--", *DATA, *SERVE, "--train-args=--no-such-option")
    assert run.returncode == 1, run.stdout + run.stderr
    mx = report["mxnet"]
    assert not mx["probe"]["ok"] and mx["probe"]["error"]
    assert not mx["gpu"]["ok"] and mx["gpu"]["error"].startswith("not run: the probe failed")
    assert not mx["cpu"]["ok"] and "--no-such-option" in mx["cpu"]["error"] and "compared" not in mx
    assert mx["gpu"]["error"] in run.stdout  # printed, not only recorded
    rt = report["onnxruntime"]
    assert rt["model"].startswith("random weights") and "CPUExecutionProvider" in rt["available_providers"]
    assert not rt["ok"] and rt["device_provider"] == "CPUExecutionProvider"
    # The servers asked for CUDA ran on the CPU (with a warning): a failure of the serving step.
    serving = report["serving"]
    assert not serving["ok"] and "CUDAExecutionProvider" in serving["error"]
    assert serving["providers"]["batching_threads1"] == ["CPUExecutionProvider"]
    assert len(report["failures"]) == 3 and "serving FAILED" not in run.stdout and "serving on CPUExecutionProvider" in run.stdout
