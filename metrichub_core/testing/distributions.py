"""Fake installed distributions: entry-point discovery without building or installing anything."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

__all__ = ["fake_distribution"]


def fake_distribution(
    root: Path,
    name: str,
    entry_points: Mapping[str, str],
    *,
    version: str = "1.0",
    modules: Mapping[str, str] | None = None,
    group: str = "metrichub",
) -> Path:
    """Write what ``pip install`` leaves in site-packages: ``<name>-<version>.dist-info`` with
    ``METADATA`` and ``entry_points.txt`` (plus optional top-level modules) under ``root``.

    Put ``root`` on ``sys.path`` (or ``PYTHONPATH`` for a subprocess) and
    ``importlib.metadata.entry_points(group="metrichub")`` lists the entry points.
    """
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    lines = [f"[{group}]", *(f"{entry} = {target}" for entry, target in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(source, encoding="utf-8")
    importlib.invalidate_caches()
    return root
