"""The core's source contract suite, run against a repository served over dumb HTTP by ``FakeUpstream``.

``base_url`` maps: ``repository = "acme.git"`` is relative, so the source clones ``<base_url>/acme.git``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from git_repos import GitRepo, hours, serve_dumb_http
from metrichub_plugin_git import GitSource

from metrichub_core.testing import FakeUpstream
from metrichub_core.testing.source_contract import SourceContract

TOKEN = "contract-git-token-0000"


class TestGitSourceContract(SourceContract):
    source_class = GitSource
    expected_keys: ClassVar[set[tuple[str, str]] | None] = None  # set per test by the upstream fixture

    @pytest.fixture
    def upstream(self, tmp_path: Path) -> Iterator[FakeUpstream]:
        repo = GitRepo(tmp_path / "acme")
        repo.commit("c1", hours(0))
        repo.tag("v1.0", hours(1))
        changes = [repo.commit("c2", hours(2))]
        repo.tag("v1.1", hours(3))
        changes.append(repo.commit("c3", hours(4)))
        repo.tag("v1.2", hours(5))
        deployments = {("deployment", name) for name in ("v1.0", "v1.1", "v1.2")}
        type(self).expected_keys = deployments | {("change", sha) for sha in changes}
        self.cache = tmp_path / "cache"
        with FakeUpstream() as server:
            serve_dumb_http(server, repo.path, tmp_path / "served.git")
            yield server

    def source_table(self, base_url: str) -> dict[str, Any]:
        return {
            "kind": "git",
            "base_url": base_url,
            "repository": "acme.git",
            "cache_dir": str(self.cache),
            "token": TOKEN,
            "git_timeout_seconds": 30,
        }
