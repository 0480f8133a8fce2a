"""The `.pyi` stubs of the compiled kernels say what the compiled modules are: the same public names,
and for each function the same parameters (names, order, which have defaults, and the defaults).

The compiled side is read with `inspect.signature`, which works on Cython functions built with
`binding=True` (setup.py; `embedsignature` also writes each signature into its docstring); the stub
side is parsed with `ast`, never imported. A `cdef class` constructor (`__cinit__`) has no readable
signature: for a class the stub's members are checked, not its `__init__` parameters.
"""
from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import ner_fast

PACKAGE = Path(ner_fast.__file__).parent
KERNELS = ["ner_fast._kernels", "ner_fast._csv", "ner_fast._decode", "ner_fast.training._kernels"]


def _stub(module: ModuleType) -> ast.Module:
    path = PACKAGE.parent / (module.__name__.replace(".", "/") + ".pyi")
    return ast.parse(path.read_text(encoding="utf-8"))


def _stub_parameters(node: ast.FunctionDef) -> list[tuple[str, str, Any]]:
    """(name, kind, default or `inspect.Parameter.empty`) of each parameter a stub declares."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[Any] = [inspect.Parameter.empty] * (len(positional) - len(args.defaults))
    defaults += [ast.literal_eval(d) for d in args.defaults]
    found = [(a.arg, "POSITIONAL_ONLY" if a in args.posonlyargs else "POSITIONAL_OR_KEYWORD", d)
             for a, d in zip(positional, defaults)]
    if args.vararg:
        found.append((args.vararg.arg, "VAR_POSITIONAL", inspect.Parameter.empty))
    for a, d in zip(args.kwonlyargs, args.kw_defaults):
        found.append((a.arg, "KEYWORD_ONLY", inspect.Parameter.empty if d is None else ast.literal_eval(d)))
    if args.kwarg:
        found.append((args.kwarg.arg, "VAR_KEYWORD", inspect.Parameter.empty))
    return found


def _compiled_parameters(function: Any) -> list[tuple[str, str, Any]]:
    return [(p.name, p.kind.name, p.default) for p in inspect.signature(function).parameters.values()]


def mismatches(stub: ast.Module, module: Any) -> list[str]:
    """What differs between a stub and the module it describes (empty: they agree)."""
    found = []
    public = {name for name in vars(module) if not name.startswith("_") and name not in ("np", "numpy")}
    declared = set()
    for node in stub.body:
        if isinstance(node, ast.FunctionDef):
            declared.add(node.name)
            compiled = getattr(module, node.name, None)
            if compiled is None:
                found.append(f"{node.name}: in the stub, not compiled")
            elif _stub_parameters(node) != _compiled_parameters(compiled):
                found.append(f"{node.name}: stub {_stub_parameters(node)} != compiled {_compiled_parameters(compiled)}")
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            declared.add(node.target.id)
            if not hasattr(module, node.target.id):
                found.append(f"{node.target.id}: in the stub, not compiled")
        elif isinstance(node, ast.ClassDef):
            declared.add(node.name)
            cls = getattr(module, node.name, None)
            members = {m.name if isinstance(m, ast.FunctionDef) else m.target.id  # type: ignore[union-attr]
                       for m in node.body if isinstance(m, ast.FunctionDef)
                       or (isinstance(m, ast.AnnAssign) and isinstance(m.target, ast.Name))}
            if cls is None:
                found.append(f"{node.name}: in the stub, not compiled")
                continue
            found += [f"{node.name}.{m}: in the stub, not compiled" for m in sorted(members) if not hasattr(cls, m)]
            own = {m for m in vars(cls) if not m.startswith("_")}
            found += [f"{node.name}.{m}: compiled, not in the stub" for m in sorted(own - members)]
    found += [f"{name}: compiled, not in the stub" for name in sorted(public - declared)]
    return found


@pytest.mark.parametrize("name", KERNELS)
def test_each_stub_matches_its_compiled_module(name: str) -> None:
    module = importlib.import_module(name)
    stub = _stub(module)
    assert sum(isinstance(n, ast.FunctionDef) for n in stub.body) >= 1
    assert mismatches(stub, module) == []


def test_the_compiled_functions_expose_their_signatures() -> None:
    """Without `binding=True` Cython functions have no signature to compare with: the test above would
    have nothing to read."""
    from ner_fast import _decode

    assert list(inspect.signature(_decode.viterbi_path).parameters) == ["scores", "lengths", "trans", "start", "end",
                                                                        "from_proba"]
    assert _decode.viterbi_path.__doc__.startswith("viterbi_path(")  # embedsignature


def test_the_checker_sees_a_stub_that_differs() -> None:
    """The oracle itself, on a made-up module: a renamed parameter, a changed default, a missing function
    and an undeclared one are all reported."""

    module = type("M", (), {"f": staticmethod(lambda a, b=1: None), "g": staticmethod(lambda: None), "K": 1})
    good = ast.parse("K: int\ndef f(a, b=1): ...\ndef g(): ...\n")
    assert mismatches(good, module) == []
    assert any(m.startswith("f:") for m in mismatches(ast.parse("K: int\ndef f(a, c=1): ...\ndef g(): ...\n"), module))
    assert any(m.startswith("f:") for m in mismatches(ast.parse("K: int\ndef f(a, b=2): ...\ndef g(): ...\n"), module))
    assert mismatches(ast.parse("K: int\ndef f(a, b=1): ...\n"), module) == ["g: compiled, not in the stub"]
    assert mismatches(ast.parse("K: int\ndef f(a, b=1): ...\ndef g(): ...\ndef h(): ...\n"), module) == [
        "h: in the stub, not compiled"]
