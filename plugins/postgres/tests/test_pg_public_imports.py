"""The plugin stands on the core's public surface only: no ``_``-prefixed core module is imported."""

from __future__ import annotations

import ast
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[1]


def _core_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every ``metrichub_core`` module (and imported name) in a file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "metrichub_core"]


def _sources() -> list[Path]:
    return sorted(
        path
        for folder in ("metrichub_plugin_postgres", "benchmarks", "tests")
        for path in (PLUGIN / folder).rglob("*.py")
    )


def test_the_plugin_imports_no_private_core_module() -> None:
    private = [
        f"{path.relative_to(PLUGIN)}:{line}: {name}"
        for path in _sources()
        for line, name in _core_imports(path)
        if any(part.startswith("_") for part in name.split("."))
    ]
    assert private == []


def test_the_scan_sees_imports_of_every_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import metrichub_core.storage._paging\n"
        "from metrichub_core.dora import _stats\n"
        "from metrichub_core.storage.sql import rollups\n"
        "def late():\n    from metrichub_core.dora._stats import bucket_of\n"
    )
    names = [name for _, name in _core_imports(sample)]
    assert names == [
        "metrichub_core.storage._paging",
        "metrichub_core.dora._stats",
        "metrichub_core.storage.sql.rollups",
        "metrichub_core.dora._stats.bucket_of",
    ]
    assert len(_sources()) > 10
