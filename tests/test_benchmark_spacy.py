"""`benchmarks/spacy.py` runs end to end on the bundled default (a format-2 package) and records its CPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_the_spacy_benchmark_runs_and_records_its_cpu(tmp_path: Path) -> None:
    pytest.importorskip("spacy")
    out = tmp_path / "spacy.json"
    run = subprocess.run([sys.executable, str(BENCHMARKS / "spacy.py"), "--package", "default", "--sentences", "20",
                          "--latency-sentences", "5", "--no-spacy-model", "--json", str(out)],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("CPU: ")
    doc = json.loads(out.read_text())
    assert doc["cpu"]["model"] and doc["throughput_tokens_per_s"]["tagger_pipe"] > 0
