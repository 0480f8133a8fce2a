"""`import ner_fast` and tagging with `ner_fast.Tagger` never import mxnet or onnx (checked in a fresh process)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ner_fast.onnx_export import export_model
from helpers import make_checkpoint

SCRIPT = """
import json, sys
import ner_fast
light = sorted(m for m in ("mxnet", "onnx", "onnxruntime") if m in sys.modules)
from ner_fast import Tagger
tags = Tagger.load(sys.argv[1], device="cpu").tag(["Angela", "Merkel", "visited", "Paris"], pos=["NNP", "NNP", "VBD", "NNP"])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("mxnet", "onnx"))
print(json.dumps({"after_import": light, "heavy": heavy, "tags": tags}))
"""


def test_tagging_imports_neither_mxnet_nor_onnx(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "m")
    package = export_model(tmp_path / "m", tmp_path / "pkg")
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(package)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["after_import"] == []  # not even onnxruntime until the tagger is used
    assert report["heavy"] == []
    assert len(report["tags"]) == 4
