"""Sizes a newcomer can read: no module of the package over 600 lines, no function over 80 (issue 22).

Read from the source (the AST), as `test_layout.py` and `test_import_graph.py` read it: every `.py` under
`src/ner_fast`, imported by a test or not. A function's length is `end_lineno - lineno + 1`: its
signature, docstring and body, decorators not counted; a nested function counts on its own and in
the function that holds it. The compiled kernels (`cython/*.pyx`) are not Python sources and are
not measured.
"""
from __future__ import annotations

import ast
from pathlib import Path

import ner_fast

PACKAGE = Path(ner_fast.__file__).parent
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def module_lines(source: str) -> int:
    """Lines in a module's source, as an editor counts them."""
    return len(source.splitlines())


def function_lengths(source: str) -> dict[str, int]:
    """`qualified name: lines` of every function and method in `source` (nested ones as `outer.inner`)."""
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                found[name] = child.end_lineno - child.lineno + 1  # type: ignore[operator]
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def _sources() -> dict[str, str]:
    return {p.relative_to(PACKAGE).as_posix(): p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_is_over_600_lines() -> None:
    sources = _sources()
    assert {"__init__.py", "tagger.py", "training/train.py", "cli/tag.py", "serve/app.py"} <= set(sources)
    long = {name: module_lines(code) for name, code in sources.items() if module_lines(code) > MAX_MODULE_LINES}
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_over_80_lines() -> None:
    lengths = {f"{name}:{func}": n for name, code in _sources().items() for func, n in function_lengths(code).items()}
    assert len(lengths) > 100 and "training/train.py:train" in lengths and "prepare.py:prepare" in lengths
    long = {where: n for where, n in sorted(lengths.items()) if n > MAX_FUNCTION_LINES}
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_measures_on_made_up_code() -> None:
    """The oracle itself: lines counted by hand, methods and nested functions found, decorators left out."""
    source = (
        "import functools\n"                   # 1
        "\n"                                   # 2
        "@functools.cache\n"                   # 3
        "def f(x):\n"                          # 4
        "    '''Doc.'''\n"                     # 5
        "    def g():\n"                       # 6
        "        return x\n"                   # 7
        "    return g\n"                       # 8
        "\n"                                   # 9
        "class C:\n"                           # 10
        "    async def m(self):\n"             # 11
        "        pass\n"                       # 12
    )  # fmt: skip
    assert module_lines(source) == 12
    assert function_lengths(source) == {"f": 5, "f.g": 2, "C.m": 2}
