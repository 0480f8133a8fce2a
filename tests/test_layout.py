"""The import boundary is the layout: every module that may import MXNet or onnx lives in
`ner_fast/training/`; the runtime and what it shares with training never import them, nor anything
from `training/`, at any depth (a function-level import counts too). `cli/` may, inside its commands.
Read from the source (the AST), so a module no test happens to import is checked as well."""
from __future__ import annotations

import ast
from pathlib import Path

import ner_fast

PACKAGE = Path(ner_fast.__file__).parent
HEAVY = ("mxnet", "onnx")


def _imports(path: Path) -> set[str]:
    """Every module name an `import` or `from ... import` in the file names (absolute form)."""
    return _names(path.read_text(encoding="utf-8"), path.relative_to(PACKAGE.parent).with_suffix("").parts)


def _names(source: str, module: tuple[str, ...]) -> set[str]:
    """The imports of `source`, the code of the module whose dotted name has the parts `module`."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = [*module[: len(module) - node.level], node.module] if node.level else [node.module]
            name = ".".join(part for part in base if part)
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and _dynamic_import(node.func) and node.args:
            # importlib.import_module("onnx") / __import__("mxnet"): a literal name is an import too.
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
    return found


def _dynamic_import(func: ast.expr) -> bool:
    """Whether a call's function is `importlib.import_module`, `import_module` or `__import__`."""
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in ("import_module", "__import__")


def _runtime_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in ("training", "cli"))


def test_the_runtime_imports_neither_training_nor_mxnet_nor_onnx() -> None:
    modules = _runtime_modules()
    names = {p.relative_to(PACKAGE).as_posix() for p in modules}
    assert {"tagger.py", "text.py", "features.py", "package.py", "decode.py", "serve/app.py", "dask.py"} <= names
    crossing = {
        p.relative_to(PACKAGE).as_posix(): sorted(
            m for m in _imports(p) if m.split(".")[0] in HEAVY or m == "ner_fast.training" or m.startswith("ner_fast.training.")
        )
        for p in modules
    }
    assert {k: v for k, v in crossing.items() if v} == {}


def test_what_imports_mxnet_or_onnx_lives_in_training() -> None:
    heavy = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
             if any(m.split(".")[0] in HEAVY for m in _imports(p)) and p.relative_to(PACKAGE).parts[0] != "cli"}
    assert {"training/model.py", "training/train.py", "training/export.py"} <= heavy  # the checker sees them
    assert all(name.startswith("training/") for name in heavy), heavy


def test_the_checker_sees_function_level_and_relative_imports() -> None:
    """The oracle itself: an import inside a function and relative ones are found, resolved."""
    source = "def f():\n    import mxnet.ndarray\n    from ..training import train\n    from . import batcher\n"
    found = _names(source, ("ner_fast", "serve", "annotate"))
    assert {"mxnet.ndarray", "ner_fast.training", "ner_fast.training.train", "ner_fast.serve.batcher"} <= found
    # Imports by name at run time count as well.
    source = ("import importlib\nfrom importlib import import_module\n"
              "def g():\n    importlib.import_module('onnx')\n    import_module('ner_fast.training.export')\n"
              "    __import__('mxnet')\n")
    assert {"onnx", "ner_fast.training.export", "mxnet"} <= _names(source, ("ner_fast", "text"))
