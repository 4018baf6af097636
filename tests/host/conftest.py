from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from metrichub_core.plugins import PluginHost
from metrichub_core.testing import sample
from metrichub_core.testing.distributions import fake_distribution

InstallPlugin = Callable[..., Path]


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallPlugin]:
    """Install a fake distribution on ``sys.path`` so ``importlib.metadata`` finds its entry points."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    added: list[str] = []

    def install(
        dist: str, entry_points: dict[str, str], modules: dict[str, str] | None = None, version: str = "1.0"
    ) -> Path:
        fake_distribution(site, dist, entry_points, version=version, modules=modules)
        added.extend(modules or {})
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
