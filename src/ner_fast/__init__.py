"""ner-fast: fast BiLSTM-CNN named-entity recognition.

`import ner_fast` is light: it never imports mxnet or onnx. The tagger runs on onnxruntime and is
imported on first use of `ner_fast.Tagger`, so importing the package costs nothing more.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Doc", "Entity", "Sentence", "Tagger", "Token", "__version__"]

if TYPE_CHECKING:
    from ner_fast.tagger import Tagger
    from ner_fast.doc import Doc, Entity, Sentence, Token


def __getattr__(name: str) -> Any:
    # Lazy: `from ner_fast import Tagger` imports onnxruntime only when someone asks for the tagger.
    if name == "Tagger":
        from ner_fast import tagger

        return tagger.Tagger
    if name in ("Doc", "Entity", "Sentence", "Token"):
        from ner_fast import doc

        return getattr(doc, name)
    raise AttributeError(f"module 'ner_fast' has no attribute {name!r}")
