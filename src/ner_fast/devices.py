"""The devices a tagger runs on: the one list, read by `Tagger.load(device=...)` and by the `--device`
option of `ner-fast tag` and `ner-fast serve`. Imports nothing (the command line reads it without
starting onnxruntime); `sessions.providers_for` turns a device into onnxruntime's providers."""
from __future__ import annotations

from typing import Literal

#: "auto": CUDA where this onnxruntime has it, else the CPU; "cpu"; "cuda" (with a warning and the
#: CPU where CUDA is missing).
DEVICES = ("auto", "cpu", "cuda")
Device = Literal["auto", "cpu", "cuda"]
DEFAULT_DEVICE: Device = "auto"
