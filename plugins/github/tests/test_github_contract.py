"""The core's source contract suite, run against the fake GitHub."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from metrichub_plugin_github import GitHubSource

from metrichub_core.testing.source_contract import SourceContract

TOKEN = "ghp_ContractSuiteToken00000000000000000000"
SECRET = "contract-webhook-secret"
PUSH = Path(__file__).parent / "fixtures" / "webhooks" / "push.branch.json"


class TestGitHubSourceContract(SourceContract):
    source_class = GitHubSource

    @pytest.fixture
    def upstream(self, github: Any, history_factory: Any) -> Any:
        github.token = TOKEN
        history = history_factory().generate({"acme/api": 6})
        history.noise("acme/api")
        github.repo("Codertocat/Hello-World")  # the webhook examples' repository, empty upstream
        return SimpleNamespace(url=github.base_url)

    def source_table(self, base_url: str) -> dict[str, Any]:
        return {
            "kind": "github",
            "base_url": base_url,
            "token": TOKEN,
            "webhook_secret": SECRET,
            "repositories": ["acme/api", "Codertocat/Hello-World"],
            "policy": {"rate_limit_per_second": 1000},
        }

    def webhook_delivery(self, table: Mapping[str, Any]) -> tuple[dict[str, str], bytes] | None:
        body = PUSH.read_bytes()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return {"X-GitHub-Event": "push", "X-Hub-Signature-256": signature}, body
