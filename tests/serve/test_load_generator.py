"""The load generator of `benchmarks/serve.py` against a test server: every request is sent and
answered, at the offered schedule (open loop) or one after another (closed loop)."""
from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

TEXTS = ["Angela Merkel visited Paris on Monday .", "The UN met in New York .", "Prices rose in 2009 ."]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "serve.py"
    spec = importlib.util.spec_from_file_location("bench_serve", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_serve"] = module
    sys.path.insert(0, str(path.parent))  # as `python benchmarks/serve.py` has it: its sibling _machine.py
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_open_loop_sends_every_request_at_its_rate(bench: ModuleType, url: str) -> None:
    requests = [bench.request_bytes(t) for t in TEXTS]
    rate, n = 400.0, 60
    seconds, latencies, lags = asyncio.run(bench.open_load(port_of(url), requests, 4, rate, n, seed=1))
    assert len(latencies) == len(lags) == n
    assert min(latencies) > 0 and min(lags) >= 0
    assert all(lat >= lag for lat, lag in zip(latencies, lags))  # an answer comes after its send
    # The schedule's last arrival is near n / rate (Poisson: mean n / rate, sd sqrt(n) / rate), so the run
    # lasts about that long: neither sent all at once nor held back.
    expected = n / rate
    assert expected - 4 * np.sqrt(n) / rate < seconds < expected + 4 * np.sqrt(n) / rate + 2.0


def test_closed_loop_times_every_request_after_the_warm_up(bench: ModuleType, url: str) -> None:
    requests = [bench.request_bytes(t) for t in TEXTS]
    seconds, latencies = bench.run_load(port_of(url), requests, 3, 2, 5)
    assert len(latencies) == 3 * 5 and min(latencies) > 0 and seconds > 0


@pytest.mark.slow
def test_servers_not_on_the_asked_device_are_said_in_the_output(tmp_path: Path) -> None:
    """`benchmarks/serve.py --device cuda` where onnxruntime cannot use CUDA measures the CPU: it says so in
    its output (it printed only Python's warnings before, then CPU figures for a run asked for CUDA)."""
    import json
    import subprocess

    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the servers may well run on it")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "serve.py"
    out = tmp_path / "serve.json"
    run = subprocess.run([sys.executable, str(script), "--device", "cuda", "--sentences", "8", "--clients", "2",
                          "--requests", "6", "--warmup", "2", "--rounds", "1", "--alone-requests", "4", "--rates",
                          "--threads", "1", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    providers = json.loads(out.read_text())["providers"]
    assert providers and all(found[0] == "CPUExecutionProvider" for found in providers.values())
    assert "NOTE: the servers run on CPUExecutionProvider, not CUDAExecutionProvider (--device cuda)" in run.stdout
