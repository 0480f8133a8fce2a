"""The onnxruntime side of a package: execution providers for a device, CUDA's libraries, session options,
and the sessions of a package's graphs, checked against its model.json (`Tagger.load` opens them here).

Like the tagger, it never imports mxnet or onnx (onnxruntime, and ner_fast's runtime modules).
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnxruntime as ort

from ner_fast.char_cache import CharCache
from ner_fast.cores import check_threads
from ner_fast.devices import DEVICES, Device
from ner_fast.errors import CacheSizeError, PackageError
from ner_fast.package import CHAR_GRAPH_FILE, WEIGHTS_FILE, Package, onnxruntime_can_open

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def providers_for(device: Device) -> list[str]:
    """onnxruntime execution providers for a device name (CUDA falls back to CPU when absent)."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(map(repr, DEVICES))}, got {device!r}")
    if device == "cpu":
        return [CPU]
    available = ort.get_available_providers()
    if device == "cuda" and CUDA not in available:
        warnings.warn(
            "device='cuda' but this onnxruntime has no CUDA provider (install onnxruntime-gpu); running on CPU",
            RuntimeWarning,
            stacklevel=3,
        )
    return [CUDA, CPU] if CUDA in available else [CPU]


def preload_cuda_libraries() -> str | None:
    """Load CUDA and cuDNN from their pip packages before the first CUDA session (`Tagger.load` calls it
    where the providers hold CUDA's; once a process, even when several threads load taggers at once).

    The `gpu` extra installs them with onnxruntime-gpu (`[cuda,cudnn]`), but onnxruntime's CUDA provider
    finds them there only after `onnxruntime.preload_dlls()`; otherwise only on the system's library
    path, and a session that cannot start CUDA runs on the CPU. Returns None, or why the preload failed
    (the system's libraries are then tried as before), in one line: `Tagger.load` says it when the
    sessions run on the CPU."""
    with _PRELOAD_LOCK:
        return _preload_cuda_libraries()


_PRELOAD_LOCK = threading.Lock()
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


@functools.cache
def _preload_cuda_libraries() -> str | None:
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:  # onnxruntime < 1.21, or a build without CUDA
        return None
    # preload_dlls reports each library it cannot load with print(): on stdout, where `ner-fast tag`
    # writes its documents. Kept here (the process's stdout is swapped only for this once-a-process call).
    printed = io.StringIO()
    failed = ""
    try:
        with contextlib.redirect_stdout(printed):
            preload()
    except Exception as err:  # whatever the loader raised: CUDA may still come from the system
        failed = f"{type(err).__name__}: {err}"
    why = " ".join(_COLOUR.sub("", f"{printed.getvalue()} {failed}").split())
    return why or None


def make_session_options(threads: int | None = None) -> ort.SessionOptions:
    """Options for one tagger session: `threads` intra-op threads (None: onnxruntime's default)."""
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = check_threads("threads", threads)
        # The graphs are a chain of ops: a second pool for parallel branches would only add threads.
        options.inter_op_num_threads = 1
    # Each bucket graph has its own session and thread pool. Workers spin after a run by default, so a
    # tagger cycling through buckets had dozens of idle pools spinning on 2 cores (28 ms instead of
    # 1.6 ms a call, measured): spin inside a run, stop when it ends.
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def check_session_options(options: ort.SessionOptions | None) -> None:
    """ValueError for a caller's `session_options` under which the tags' probabilities would depend on the batch:
    graph optimisation off (ORT_DISABLE_ALL) leaves the int8 weights' dequantization unfolded, and the LSTM
    then runs on a path whose sums change with the batch's rows (measured: 1e-5 to 1e-3 apart, batch 1
    against 64; every level from ORT_ENABLE_BASIC on gives the same answer whatever the batch)."""
    if options is not None and options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL:
        raise ValueError("session_options: graph_optimization_level ORT_DISABLE_ALL makes the probabilities depend on"
                         " the batch; give ORT_ENABLE_BASIC or more (ORT_ENABLE_ALL, the tagger's own)")


def open_session(path: Any, options: ort.SessionOptions, providers: list[Any]) -> ort.InferenceSession:
    """An onnxruntime session of one graph of a package; PackageError when onnxruntime cannot load it."""
    if not onnxruntime_can_open(path):
        raise PackageError(f"{path}: the package's path is not valid UTF-8, which onnxruntime cannot open: rename the"
                           " folder")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception classes
        weights = Path(path).parent / WEIGHTS_FILE
        if "escapes model directory" in str(exc) and weights.is_symlink():
            # git-annex, DVC and the like link the large file out of the folder; onnxruntime reads no such link.
            raise PackageError(f"{weights}: a link out of the package folder (to {os.path.realpath(weights)}), which"
                               " onnxruntime refuses to read weights through: put the file itself in the folder"
                               " (git annex unlock, dvc checkout --relink)") from None
        raise PackageError(f"{path}: onnxruntime cannot load it ({exc})") from exc


def check_graphs(package: Package, sessions: Mapping[int | None, ort.InferenceSession], n_tags: int,
                  pos_tags: list[str] | None) -> None:
    """PackageError naming the graph whose inputs or outputs disagree with model.json: its features per token,
    its bucket length, its tag or POS tag count (onnxruntime's own error came at the first call, or no error:
    a swapped bucket graph, a model.json edited and checksummed again, sessions of another package)."""
    for key, session in sessions.items():
        graph = package.graph_path(key)
        wanted = {"features a token": (session.get_inputs()[0].shape, 1, package.model["n_features"]),
                  "tags": (session.get_outputs()[0].shape, -1, n_tags)}
        if key is not None:
            wanted["tokens (its bucket length)"] = (session.get_inputs()[0].shape, 2, key)
        if pos_tags is not None:
            outputs = session.get_outputs()
            wanted["POS tags (model.json pos_tags)"] = (outputs[1].shape if len(outputs) > 1 else [0], -1, len(pos_tags))
        for what, (shape, axis, expected) in wanted.items():
            size = shape[axis] if -len(shape) <= axis < len(shape) else None
            if isinstance(size, int) and size != expected:
                raise PackageError(f"{graph}: the graph has {size} {what}, model.json says {expected}")


def char_features(
    package: Package, dynamic: ort.InferenceSession, char_session: ort.InferenceSession | None, capacity: int
) -> tuple[CharCache | None, str | None]:
    """The character cache and the graphs' character-features input name of a package whose graphs take
    them (a second input), (None, None) for one whose graphs compute them. Without `char_session`, the
    package's character graph is opened with the dynamic session's providers (onnxruntime's default
    options). PackageError (a ValueError) naming the package's files when the character graph and the
    graphs do not fit together (files swapped or edited in a package loaded with `verify=False`, or
    sessions of another package)."""
    inputs = dynamic.get_inputs()
    graph = package.graph_path(None)
    chars = package.char_graph_path or package.path / CHAR_GRAPH_FILE
    if len(inputs) == 1:
        if char_session is not None:
            raise PackageError(f"{graph}: the graphs compute their own character features, but a character"
                               f" session was given ({chars}, or char_session)")
        return None, None
    if char_session is None:
        if package.char_graph_path is None:
            raise PackageError(f"{graph}: the graphs take the character features ({inputs[1].name}) but the"
                               " package has no character graph (model.json char_graph)")
        char_session = open_session(package.char_graph_path, None, list(dynamic.get_providers()))
    try:
        cache = CharCache(char_session, int(package.model["max_token_chars"]), capacity,
                          len(package.model["vocab"]["chars"]))
    except CacheSizeError:  # the caller's number of rows, not the package's files
        raise
    except ValueError as exc:
        raise PackageError(f"{chars}: {exc}") from None
    record = package.model.get("char_graph")
    if isinstance(record, dict) and record["width"] != cache.width:
        raise PackageError(f"{chars}: makes {cache.width} character features a token, model.json char_graph says"
                           f" {record['width']}")
    if inputs[1].shape[2] != cache.width:
        raise PackageError(f"{graph}: the graphs take {inputs[1].shape[2]} character features a token, the"
                           f" character graph ({chars}) makes {cache.width}")
    return cache, inputs[1].name
