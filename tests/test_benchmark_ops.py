"""`benchmarks/ops.py` splits a graph's nodes into the LSTM, the character path and the rest by the graph's
structure: checked on both bundled packages against what their exporter is known to emit."""
from __future__ import annotations

import onnx
import pytest

from helpers import benchmark_module
from ner_fast.package import package_path

@pytest.mark.parametrize(("name", "members"), [("default", 1), ("ensemble", 2)])
def test_the_parts_of_each_bundled_graph(name: str, members: int, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = package_path(name)
    graph = onnx.load(str(folder / "dynamic.onnx"), load_external_data=False).graph
    kind = benchmark_module("ops", monkeypatch).parts(graph, graph.input[0].name)
    assert set(kind) == {n.name for n in graph.node}
    producers = {out: n for n in graph.node for out in n.output}
    lstms = [n for n in graph.node if n.op_type in ("LSTM", "DynamicQuantizeLSTM")]
    assert len(lstms) == members and all(kind[n.name] == "lstm" for n in lstms)
    # The character CNN's taps: a Sum of rows gathered from its tables (dequantized, in the ensemble), a filter
    # width of each member at least; a format-2 package's (`default`) are in its character graph, and its
    # main graph takes their output as its second input, so no node of it is on the character path.
    gathered = ("Gather", "DequantizeLinear")
    chars = folder / "chars.onnx"
    cnn = onnx.load(str(chars), load_external_data=False).graph if chars.exists() else graph
    cnn_producers = {out: n for n in cnn.node for out in n.output}
    taps = [n for n in cnn.node if n.op_type == "Sum" and all(cnn_producers[i].op_type in gathered for i in n.input)]
    assert len(taps) >= members
    if chars.exists():
        assert [i.name for i in graph.input][1:] == ["char_features"]
        assert "characters" not in kind.values()
    else:
        assert all(kind[n.name] == "characters" for n in taps)
    # What feeds each LSTM (the join of words, casing and characters, transposed) waits on the word look-up
    # too, so it is not the character path; nor are the output heads.
    fed = [producers[n.input[0]] for n in lstms]
    assert all(kind[n.name] == "rest" and kind[producers[n.input[0]].name] == "rest" for n in fed)
    assert all(kind[n.name] == "rest" for n in graph.node if n.op_type == "Softmax")
