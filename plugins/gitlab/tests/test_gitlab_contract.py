"""The core's source contract suite, run against the fake GitLab."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gitlab_fake import FakeGitLab
from metrichub_plugin_gitlab import GitLabSource

from metrichub_core.testing.source_contract import SourceContract

TOKEN = "glpat-ContractSuiteToken000000000000"
SECRET = "contract-webhook-secret"
SIGNING_KEY = b"contract-signing-key-32-bytes..."
DEPLOYMENT_HOOK = Path(__file__).parent / "fixtures" / "webhooks" / "deployment_hook.success.json"


class TestGitLabSourceContract(SourceContract):
    source_class = GitLabSource

    @pytest.fixture
    def upstream(self, gitlab: FakeGitLab, history_factory: Any) -> Any:
        gitlab.token = TOKEN
        history = history_factory().generate({"acme/platform/shop": 8})
        history.noise("acme/platform/shop")
        gitlab.project("root/test-deployment-webhooks")  # the webhook example's project, empty upstream
        return SimpleNamespace(url=gitlab.base_url)

    def source_table(self, base_url: str) -> dict[str, Any]:
        return {
            "kind": "gitlab",
            "base_url": base_url,
            "token": TOKEN,
            "webhook_secret": SECRET,
            "webhook_signing_token": "whsec_" + base64.b64encode(SIGNING_KEY).decode(),
            "projects": ["acme/platform/shop", "root/test-deployment-webhooks"],
            "incident_label": "outage",
            "policy": {"rate_limit_per_second": 1000},
        }

    def webhook_delivery(self, table: Mapping[str, Any]) -> tuple[dict[str, str], bytes] | None:
        """A signed delivery: a secret token alone does not authenticate the body, a signature does."""
        body = DEPLOYMENT_HOOK.read_bytes()
        stamp = str(int(time.time()))
        digest = hmac.new(SIGNING_KEY, f"msg-1.{stamp}.".encode() + body, hashlib.sha256).digest()
        headers = {
            "X-Gitlab-Event": "Deployment Hook",
            "webhook-id": "msg-1",
            "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }
        return headers, body
