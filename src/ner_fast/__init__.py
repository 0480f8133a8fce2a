"""ner-fast: fast BiLSTM-CNN named-entity recognition.

`import ner_fast` is light: it never imports mxnet or onnx. The tagger runs on onnxruntime.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
