from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from metrichub_core.plugins import PluginHost
from metrichub_core.testing import sample

InstallPlugin = Callable[..., Path]


def write_distribution(
    root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str] | None = None, version: str = "1.0"
) -> Path:
    """What ``pip install`` leaves behind: a ``.dist-info`` with metadata and ``entry_points.txt``, plus modules."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[metrichub]"] + [f"{name} = {target}" for name, target in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(source)
    return root


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallPlugin]:
    """Install a fake distribution on ``sys.path`` so ``importlib.metadata`` finds its entry points."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    added: list[str] = []

    def install(dist: str, entry_points: dict[str, str], modules: dict[str, str] | None = None, version: str = "1.0"):
        write_distribution(site, dist, entry_points, modules, version)
        added.extend(modules or {})
        importlib.invalidate_caches()
        return site

    yield install
    for module in added:
        sys.modules.pop(module, None)


@pytest.fixture
def sample_host() -> PluginHost:
    """Built-ins plus the kit's ``sample`` source, without installed entry points."""
    host = PluginHost.load(entry_point_group=None)
    host.register(sample, "sample")
    return host
