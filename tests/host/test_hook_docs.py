"""Every hook is documented in docs/plugins.md and has a ``test_hook_<name>`` test (Datasette's rule)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from metrichub_core.plugins import PluginHost

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def hook_signatures() -> list[tuple[str, str]]:
    manager = PluginHost(strict=True).manager
    hooks = []
    for name in sorted(vars(manager.hook)):
        caller = getattr(manager.hook, name)
        if caller.spec is not None:
            hooks.append((name, f"{name}({', '.join(caller.spec.argnames)})"))
    return hooks


HOOKS = hook_signatures()


def test_there_are_hooks() -> None:
    assert {name for name, _ in HOOKS} >= {"register_sources", "register_storage", "on_events_ingested"}


@pytest.mark.parametrize(("name", "signature"), HOOKS)
def test_plugin_hooks_are_documented(name: str, signature: str) -> None:
    assert re.search(rf"^### {re.escape(signature)}$", DOCS, re.MULTILINE), f"docs/plugins.md needs '### {signature}'"


@pytest.mark.parametrize(("name", "signature"), HOOKS)
def test_plugin_hooks_have_tests(name: str, signature: str) -> None:
    tests = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        tests |= {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert any(test.startswith(f"test_hook_{name}") for test in tests), f"no test_hook_{name} test"


def test_hookspecs_are_documented_where_declared() -> None:
    from metrichub_core import hookspecs

    for name, _ in HOOKS:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert len(doc.split()) >= 15, f"hookspecs.{name} needs a docstring saying what it returns and when"
