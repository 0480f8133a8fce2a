"""`benchmarks/row_scales.py` rebuilds a package with one scale per table from the float32 one: for a format-2
package (the export default) its character graph, where the character table lives, comes along."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from helpers import benchmark_module, make_checkpoint
from ner_fast import Tagger
from ner_fast.package import load_package
from ner_fast.training.export import export_model

@pytest.mark.parametrize("char_graph", [True, False])
def test_per_table_package_keeps_the_package_format(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, char_graph: bool) -> None:
    make_checkpoint(tmp_path / "run", with_pos=False)
    fp32 = export_model(tmp_path / "run", tmp_path / "fp32", quantize="none", char_graph=char_graph)
    out = benchmark_module("row_scales", monkeypatch).per_table_package(fp32, tmp_path / "per-table")
    pkg = load_package(out)
    assert pkg.manifest["format_version"] == (2 if char_graph else 1) and pkg.model["quantization"] == "int8"
    graphs = [pkg.graph_path(None), *([pkg.char_graph_path] if char_graph else [])]
    # The character tables (in chars.onnx for format 2) are stored quantized, one scale for each table.
    inits = {t.name: t for g in graphs for t in onnx.load(str(g)).graph.initializer}
    tables = [n for n in inits if n.startswith("char_") and n.endswith("_quantized")]
    assert tables and all(list(inits[n.replace("_quantized", "_scale")].dims) == [] for n in tables)
    sentences = [["Angela", "Merkel", "visited", "Paris", "."], ["Zyxwv", "straße", "Ω"]]
    tagger = Tagger.load(out, threads=1)
    probs = tagger.tag_batch(sentences, proba=True)[1]
    assert all(p.shape == (len(s), len(tagger.tags)) and np.allclose(p.sum(1), 1, atol=1e-5) for p, s in zip(probs, sentences))
