"""No import circles: the package's modules form a graph that only ever points down (`errors.py` at the
bottom, imported by all and importing nothing of ner_fast; the commands at the top).

The graph is read from the source (the AST), as `test_layout.py` reads it, so a module no test happens
to import is checked as well. Every import counts, wherever it is written:
- module-level imports;
- imports inside functions: they run whenever the function does, so they are dependencies that only
  run late. Deferring an import is the usual way to hide a circle from the interpreter
  (`atomic.py` once imported `OptionError` from the option table inside its functions, because the
  option table reads files through `atomic.py`); a reader following the code still walks the circle;
- imports under `if TYPE_CHECKING:`: only the type checker runs them, but a module that names another
  in its annotations depends on it as much as a reader is concerned (`text.py` knows nothing of the
  tagger, not even its type).
`from ner_fast import _kernels` names the submodule (an edge to `ner_fast._kernels`), not the package;
`from ner_fast import __version__` names the package's `__init__`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ner_fast

PACKAGE = Path(ner_fast.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name: Python sources, and compiled ones by their stubs."""
    return {_module_name(p): p for p in PACKAGE.rglob("*.py*") if p.suffix in (".py", ".pyi")}


def _edges(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The package modules that `source` (the code of `module`) imports, anywhere in it."""
    parts = module.split(".") + (["__init__"] if is_package else [])
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = [*parts[: len(parts) - node.level], node.module] if node.level else [node.module]
            name = ".".join(p for p in base if p)
            # `from X import y`: the submodule X.y where there is one, else X itself.
            names = [f"{name}.{a.name}" if f"{name}.{a.name}" in known else name for a in node.names]
        else:
            continue
        for name in names:
            # `import a.b.c` of the package depends on the deepest of a.b.c, a.b, a that is a module.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """module -> the package modules it imports, for `sources` (module -> (its code, whether it is a
    package's `__init__`))."""
    known = set(sources)
    return {m: _edges(code, m, is_package, known) for m, (code, is_package) in sources.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative): each
    holds at least one circle. Sorted, for a readable failure."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _package_graph() -> dict[str, set[str]]:
    return import_graph({m: (p.read_text(encoding="utf-8"), p.name == "__init__.py") for m, p in _modules().items()})


def test_the_package_has_no_import_circles() -> None:
    graph = _package_graph()
    # The checker sees the whole package, compiled kernels and the modules that once made circles included.
    assert {"ner_fast.errors", "ner_fast.atomic", "ner_fast.config", "ner_fast.tagger", "ner_fast.text",
            "ner_fast._kernels", "ner_fast.cli.tag", "ner_fast.training.train"} <= set(graph)
    assert "ner_fast.atomic" in graph["ner_fast.vocab"] and "ner_fast._kernels" in graph["ner_fast.tagger"]
    assert cycles(graph) == []


def test_errors_is_a_leaf_that_the_writers_import() -> None:
    graph = _package_graph()
    assert graph["ner_fast.errors"] == set()
    assert "ner_fast.errors" in graph["ner_fast.atomic"] and "ner_fast.config" not in graph["ner_fast.atomic"]


@pytest.mark.parametrize("stage", ["ner_fast.text", "ner_fast.doc"])
def test_text_and_doc_know_nothing_of_the_tagger(stage: str) -> None:
    """The raw-text stages call down: the tokenizer and splitter (`text`) and the Doc (`doc`) never reach the
    tagger, at any depth, nor each other."""
    graph = _package_graph()
    reached, todo = set(), [stage]
    while todo:
        for child in graph[todo.pop()] - reached:
            reached.add(child)
            todo.append(child)
    assert not reached & {"ner_fast.tagger", "ner_fast.engine", "ner_fast.text", "ner_fast.doc"}, sorted(reached)


def test_the_checker_finds_circles_through_function_level_and_type_checking_imports() -> None:
    """The oracle itself, on made-up modules: each kind of import that counts closes a circle."""
    sources = {
        "p": ("", True),
        "p.a": ("from p.b import x\n", False),
        "p.b": ("def f():\n    from . import c\n", False),
        "p.c": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.a import y\n", False),
        "p.d": ("import p.a.missing\nfrom p import e\n", False),
        "p.e": ("from p import __version__\n", False),
    }
    graph = import_graph(sources)
    assert graph == {"p": set(), "p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a", "p.e"}, "p.e": {"p"}}
    assert cycles(graph) == [["p.a", "p.b", "p.c"]]
    graph["p.c"] = set()
    assert cycles(graph) == []
