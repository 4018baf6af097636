"""The example plugin's tests: the host's source contract plus its own cases, against a fake Shipit."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from metrichub_plugin_example import ShipitSource

from metrichub_core import MetricHub
from metrichub_core.config import Settings
from metrichub_core.plugins import PluginHost
from metrichub_core.testing import FakeUpstream, Reply
from metrichub_core.testing.source_contract import SourceContract

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
DEPLOYS = [
    {"id": n, "app": "checkout", "env": "production", "state": "failed" if n % 5 == 0 else "succeeded",
     "started_at": (T0 + timedelta(hours=n)).isoformat(),
     "finished_at": (T0 + timedelta(hours=n, minutes=6)).isoformat(),
     "updated_at": (T0 + timedelta(hours=n, minutes=6)).isoformat(), "sha": f"{n:040x}", "commits": [f"{n:040x}"]}
    for n in range(1, 31)
]  # fmt: skip
INCIDENTS = [
    {"id": "inc-1", "app": "checkout", "opened_at": (T0 + timedelta(hours=5, minutes=20)).isoformat(),
     "resolved_at": (T0 + timedelta(hours=6)).isoformat(), "deploy_id": "5", "severity": "sev2",
     "updated_at": (T0 + timedelta(hours=6)).isoformat(), "title": "payments failing"},
]  # fmt: skip


def serve(upstream: FakeUpstream) -> FakeUpstream:
    upstream.pages("/api/v1/deploys", DEPLOYS, page_size=10, since_field="updated_at", since_param="updated_since")
    upstream.pages("/api/v1/incidents", INCIDENTS, since_field="updated_at", since_param="updated_since")
    return upstream


def table(base_url: str) -> dict[str, Any]:
    return {"kind": "shipit", "base_url": f"{base_url}/api/v1/", "token": "shipit-token", "webhook_secret": "whsec",
            "policy": {"retries": 2, "backoff_initial_seconds": 0.01}}  # fmt: skip


def signed(secret: str, payload: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    return {"X-Shipit-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}, body


class TestShipitContract(SourceContract):
    source_class = ShipitSource
    expected_keys: ClassVar[set[tuple[str, str]] | None] = {("deployment", str(d["id"])) for d in DEPLOYS} | {
        ("incident", "inc-1")
    }

    @pytest.fixture
    def upstream(self) -> Iterator[FakeUpstream]:
        with FakeUpstream() as upstream:
            yield serve(upstream)

    def source_table(self, base_url: str) -> dict[str, Any]:
        return table(base_url)

    def webhook_delivery(self, table: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
        return signed(table["webhook_secret"], {"type": "deploy", "deploy": DEPLOYS[0]})


def test_the_plugin_is_discovered_through_its_entry_point() -> None:
    host = PluginHost.load()
    plugin = next(p for p in host.describe() if p["name"] == "example")
    assert plugin["distribution"] == "metrichub-plugin-example"
    assert plugin["status"] == "active" and plugin["sources"] == ["shipit"]
    assert host.source_kinds()["shipit"] is ShipitSource


async def test_collects_through_the_hosts_policies_without_a_retry_loop_of_its_own() -> None:
    with FakeUpstream() as upstream:
        serve(upstream)
        upstream.script("/api/v1/incidents", Reply(503), Reply(429, headers={"Retry-After": "0"}),
                        Reply(200, json=INCIDENTS))  # fmt: skip
        async with MetricHub("memory://", settings=Settings(sources={"shipit": table(upstream.url)})) as hub:
            (result,) = await hub.collect()
            incident = await hub.storage.get("incident", "shipit", "inc-1")
        assert result.ok, result.error
        assert result.events == len(DEPLOYS) + 1
        assert incident is not None and incident.updated_at == T0 + timedelta(hours=6)  # the item's updated_at
        assert all(r.headers["authorization"] == "Bearer shipit-token" for r in upstream.requests)
        assert len(upstream.requests_for("/api/v1/incidents")) == 3
