"""The runtime never imports mxnet, onnx or pandas: `import ner_fast`, tagging with `ner_fast.Tagger`
and the `ner-fast tag` command, each checked in a fresh process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import POS, SENTENCES, TAGS, make_checkpoint
from ner_fast.training.export import export_model

HEAVY = ("mxnet", "onnx", "pandas")

SCRIPT = """
import json, sys
import ner_fast
light = sorted(m for m in ("mxnet", "onnx", "onnxruntime", "pandas") if m in sys.modules)
from ner_fast import Tagger
tags = Tagger.load(sys.argv[1], device="cpu").tag(["Angela", "Merkel", "visited", "Paris"], pos=["NNP", "NNP", "VBD", "NNP"])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("mxnet", "onnx", "pandas"))
print(json.dumps({"after_import": light, "heavy": heavy, "tags": tags}))
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("light")
    make_checkpoint(folder / "m")
    return export_model(folder / "m", folder / "pkg", quantize=None)


def test_tagging_imports_neither_mxnet_nor_onnx(package: Path) -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(package)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["after_import"] == []  # not even onnxruntime until the tagger is used
    assert report["heavy"] == []
    assert len(report["tags"]) == 4


def _imported(stderr: str) -> set[str]:
    """Top-level names of the modules that `-X importtime` (PYTHONPROFILEIMPORTTIME) reports."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                names.add(name.split(".")[0])
    return names


def test_the_tag_command_imports_neither_mxnet_nor_onnx_nor_pandas(package: Path, tmp_path: Path) -> None:
    # The console script's own code (`ner_fast.cli:main`), run in a fresh interpreter. The profile of
    # imports is switched on through the environment, so every Python process the command starts
    # reports too, and it lists imports however deep they happen.
    conll = "".join("".join(f"{w} {p} {t}\n" for w, p, t in zip(*cols)) + "\n" for cols in zip(SENTENCES, POS, TAGS))
    (tmp_path / "in.conll").write_text(conll)
    out = tmp_path / "out.conll"
    command = "import sys; from ner_fast.cli import main; sys.argv[0] = 'ner-fast'; main()"
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    run = subprocess.run(
        [sys.executable, "-c", command, "tag", str(package), str(tmp_path / "in.conll"), "--output", str(out), "--workers", "2"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert len([s for s in out.read_text().split("\n\n") if s.strip()]) == len(SENTENCES)
    imported = _imported(run.stderr)
    assert {"ner_fast", "onnxruntime", "click", "numpy"} <= imported  # the report is complete enough to trust
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))
