"""Rules of the test suite itself: one Hypothesis profile, registered in conftest.py, and no test
module importing conftest (pytest imports it; a second import makes a second copy of its state)."""
from __future__ import annotations

import ast
from pathlib import Path

from hypothesis import settings

TESTS = Path(__file__).parent


def test_the_suite_profile_is_loaded_from_conftest_only() -> None:
    assert settings.get_profile("ner-fast") == settings.default
    assert settings.default.deadline is None
    modules = sorted(TESTS.rglob("*.py"))
    assert len(modules) > 10
    offenders = []
    for path in modules:
        if path.name == "conftest.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            imported = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                imported = [node.module or ""]
            called = node.func.attr if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else ""
            if "conftest" in imported or called in ("register_profile", "load_profile"):
                offenders.append(f"{path.relative_to(TESTS)}:{node.lineno}")
    assert offenders == []
