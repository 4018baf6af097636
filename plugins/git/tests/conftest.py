"""Fixtures: a fresh repository per test, and a fake upstream to serve one over dumb HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from git_repos import GitRepo

from metrichub_core.testing import FakeUpstream


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "app")


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server
