"""The model package writer: graphs and their weights, stored once, as the folder `ner_fast.package` reads.

`write_package` takes the dynamic graph (and a format-2 package's character graph) as `export.export_model`
builds them; the bucket graphs are copies of the dynamic one with a fixed sequence length (`with_seq_len`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, numpy_helper

from ner_fast.atomic import OutputDir, atomic_dir
from ner_fast.buckets import checked_bucket_lengths
from ner_fast.package import CHAR_GRAPH_FILE, MODEL_FILE, WEIGHTS_FILE, claim_folder, format_version, graph_file, package_files, write_manifest

# Beside model.json in a package trained with --vectors: their attribution and licence (`vectors_notice`).
NOTICE_FILE = "ATTRIBUTION.md"
# Initializers at least this large go to the shared weights file; the small shape constants stay inline.
EXTERNAL_MIN_BYTES = 256
# Offsets in the weights file are multiples of this, so a runtime may map tensors straight from the file.
ALIGNMENT = 4096


def with_seq_len(model: onnx.ModelProto, seq_len: int) -> onnx.ModelProto:
    """A copy of a (dynamic) model whose input and output declare sequence length `seq_len`."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    fixed.graph.input[0].type.tensor_type.shape.dim[2].dim_value = int(seq_len)
    for extra in fixed.graph.input[1:]:  # the character features (batch, seq_len, F)
        extra.type.tensor_type.shape.dim[1].dim_value = int(seq_len)
    for output in fixed.graph.output:
        output.type.tensor_type.shape.dim[1].dim_value = int(seq_len)
    fixed.metadata_props.add(key="ner_fast.seq_len", value=str(int(seq_len)))
    return fixed


def _externalize(models: Sequence[onnx.ModelProto], weights_path: Path) -> list[onnx.ModelProto]:
    """Copies of `models` whose large initializers live in `weights_path` (written here, one after the
    other), each at an offset aligned to `ALIGNMENT` so onnxruntime can map it from the file instead of
    copying it."""
    copies = []
    for model in models:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        copies.append(copy)
    with open(weights_path, "wb") as data:
        for tensor in (t for copy in copies for t in copy.graph.initializer):
            if not tensor.HasField("raw_data"):  # some writers store small tensors as typed fields
                tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))
            raw = tensor.raw_data
            if len(raw) < EXTERNAL_MIN_BYTES:
                continue
            data.write(b"\0" * (-data.tell() % ALIGNMENT))
            offset = data.tell()
            data.write(raw)
            tensor.ClearField("raw_data")
            tensor.data_location = TensorProto.EXTERNAL
            for key, value in (("location", weights_path.name), ("offset", str(offset)), ("length", str(len(raw)))):
                tensor.external_data.add(key=key, value=value)
    return copies


def write_package(
    out: str | os.PathLike[str] | OutputDir,
    model: onnx.ModelProto,
    buckets: Sequence[int],
    model_info: Mapping[str, Any],
    versions: Mapping[str, str],
    force: bool = False,
    char_model: onnx.ModelProto | None = None,
) -> Path:
    """Write a model package folder from the dynamic `model` (weights embedded).

    The weights go once into `weights.onnx.data`; `dynamic.onnx` and one `bucket_<L>.onnx` per bucket
    length are small graphs that all point into it. `char_model`: the character graph (`build_char_graph`)
    of a `model` that takes the character features as an input: written as `package.CHAR_GRAPH_FILE`
    (its tables in the same weights file), recorded as model.json `char_graph`, format version 2. `model.json` is `model_info` plus the format
    version, buckets and versions; `manifest.json` checksums every file. Everything is written to a
    temporary folder beside `out`, which then replaces `out` by renames, so an existing package is
    never left half-overwritten. `out` must be new, empty or an earlier package; a folder with other
    files is refused unless `force` (then they are kept: `atomic.atomic_dir`).
    """
    # The tagger's rule (`sessions.char_features`): graphs with a second input take the character features,
    # which only a character graph computes; refused here, before a package that cannot load is written.
    if (len(model.graph.input) > 1) != (char_model is not None):
        raise ValueError("the graph takes the character features as an input but no character graph was given"
                         if char_model is None else "a character graph was given, but the graph computes its own character features")
    claim = out if isinstance(out, OutputDir) else claim_folder(out, "package", package_files, force=force)
    buckets = checked_bucket_lengths(buckets)
    with atomic_dir(claim) as tmp:
        shared, *chars = _externalize([model, *([char_model] if char_model is not None else [])], tmp / WEIGHTS_FILE)
        graphs = {graph_file(None): shared, **{graph_file(b): with_seq_len(shared, b) for b in buckets}}
        if chars:
            graphs[CHAR_GRAPH_FILE] = chars[0]
        for name, graph in graphs.items():
            (tmp / name).write_bytes(graph.SerializeToString())
        version = format_version(bool(chars))
        info = {**model_info, "format_version": version, "buckets": buckets, "versions": dict(versions),
                "char_graph": _char_graph_record(chars[0]) if chars else None}
        (tmp / MODEL_FILE).write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        notice = vectors_notice(info.get("vectors"))
        if notice is not None:
            (tmp / NOTICE_FILE).write_text(notice, encoding="utf-8")
        write_manifest(tmp, [MODEL_FILE, WEIGHTS_FILE, *graphs, *([NOTICE_FILE] if notice is not None else [])], versions, version)
    return claim.path


def _char_graph_record(char_model: onnx.ModelProto) -> dict[str, Any]:
    """model.json `char_graph`: the character graph's file, input and output (F: its width)."""
    width = char_model.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    return {
        "file": CHAR_GRAPH_FILE,
        "input": {"name": char_model.graph.input[0].name, "dtype": "int32", "shape": ["rows", "max_token_chars"]},
        "output": {"name": char_model.graph.output[0].name, "dtype": "float32", "shape": ["rows", width]},
        "width": width,
    }


def vectors_notice(vectors: Mapping[str, Any] | None) -> str | None:
    """The text of `NOTICE_FILE` for a package whose rows started from pretrained vectors (model.json
    `vectors`, and those under its `also`: `run_vectors.package_vectors`): their names, licences and
    attributions, which must travel with the package (GloVe's PDDL asks for none, but the package
    redistributes derived rows and says whose they are). None without vectors. The file is listed in the
    manifest (checksummed like the rest), never read by the tagger."""
    if not vectors:
        return None
    also = list(vectors.get("also") or [])
    names = " and ".join(str(v.get("name")) for v in [vectors, *also])
    text = (
        f"# Word vectors in this package: {names}\n\n"
        "The word embedding rows of this model package started from pretrained word vectors (`ner-fast train"
        f" --vectors {vectors.get('source')}`{', then ' + vectors['through'] if vectors.get('through') else ''});"
        f" model.json `vectors` records them ({vectors.get('words')} words x"
        f" {vectors.get('dim')}, sha256 {vectors.get('sha256')}).\n\n"
        f"- Attribution: {vectors.get('attribution') or 'not recorded'}\n"
        f"- Licence: {vectors.get('licence') or 'not recorded'}\n"
    )
    for other in also:  # carried by --init SOURCE: the rows SOURCE gave
        text += (f"\nOther rows came from {other.get('name')} {other.get('through') or ''} ({other.get('words')} words"
                 f" x {other.get('dim')}, sha256 {other.get('sha256')}).\n\n- Attribution:"
                 f" {other.get('attribution') or 'not recorded'}\n- Licence: {other.get('licence') or 'not recorded'}\n")
    return text
