from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import WEBHOOK_SECRET, assert_error, data, make_hub, sign

from metrichub_core.storage.base import EventQuery

PAYLOAD = {
    "event": "deployment",
    "deployment": {
        "id": "wh-1",
        "service": "checkout",
        "status": "success",
        "started_at": "2026-03-10T10:00:00Z",
        "finished_at": "2026-03-10T10:05:00Z",
    },
}


def signed(payload: dict[str, Any], secret: str = WEBHOOK_SECRET, **headers: str) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    return {"content": body, "headers": {"X-Signature": sign(body, secret), **headers}}


async def deployments(client: httpx.AsyncClient) -> list[Any]:
    hub = client._transport.app.state.metrichub.hub  # type: ignore[attr-defined]
    return (await hub.storage.list_events(EventQuery(kind="deployment"))).items  # type: ignore[no-any-return]


async def test_a_signed_delivery_is_stored_under_the_source(client: httpx.AsyncClient) -> None:
    ack = data(await client.post("/api/v1/webhooks/hooks", **signed(PAYLOAD, **{"X-GitHub-Delivery": "abc"})))
    assert ack == {"source": "hooks", "delivery": "abc", "duplicate": False, "events": 1}
    (stored,) = await deployments(client)
    assert (stored.source, stored.id) == ("hooks", "wh-1")


async def test_a_redelivery_is_acknowledged_and_stored_once(client: httpx.AsyncClient) -> None:
    request = signed(PAYLOAD, **{"X-GitHub-Delivery": "same"})
    data(await client.post("/api/v1/webhooks/hooks", **request))
    again = data(await client.post("/api/v1/webhooks/hooks", **request))
    assert again == {"source": "hooks", "delivery": "same", "duplicate": True, "events": 0}
    assert len(await deployments(client)) == 1
    # Without a delivery id, the (source, id) upsert still stores it once.
    data(await client.post("/api/v1/webhooks/hooks", **signed(PAYLOAD)))
    data(await client.post("/api/v1/webhooks/hooks", **signed(PAYLOAD)))
    assert len(await deployments(client)) == 1


async def test_a_bad_signature_is_401_and_stores_nothing(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/webhooks/hooks", **signed(PAYLOAD, secret="wrong"))
    error = assert_error(response, 401, "unauthorized")
    assert "signature" in error["message"]
    unsigned = await client.post("/api/v1/webhooks/hooks", json=PAYLOAD)
    assert_error(unsigned, 401, "unauthorized")
    assert await deployments(client) == []


async def test_unrelated_deliveries_are_acknowledged_without_events(client: httpx.AsyncClient) -> None:
    ack = data(await client.post("/api/v1/webhooks/hooks", **signed({"event": "ping"})))
    assert ack["events"] == 0


async def test_unusable_deliveries_are_400(client: httpx.AsyncClient) -> None:
    missing = await client.post("/api/v1/webhooks/hooks", **signed({"event": "deployment"}))
    assert_error(missing, 400, "validation_error")
    naive = {"event": "deployment", "deployment": {**PAYLOAD["deployment"], "started_at": "2026-03-10T10:00:00"}}  # type: ignore[dict-item]
    error = assert_error(await client.post("/api/v1/webhooks/hooks", **signed(naive)), 400, "validation_error")
    assert error["details"][0]["field"] == "started_at"
    assert await deployments(client) == []


async def test_unknown_source_and_source_without_webhooks_are_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/api/v1/webhooks/nope", json={}), 404, "not_found")
    error = assert_error(await client.post("/api/v1/webhooks/demo", json={}), 404, "not_found")
    assert "takes no webhooks" in error["message"]


async def test_webhooks_need_no_bearer_token(make_app: Any, client_for: Any) -> None:
    client = client_for(make_app(make_hub(tokens=["t0ken-for-writes"])))
    data(await client.post("/api/v1/webhooks/hooks", **signed(PAYLOAD)))


async def test_a_plugin_that_raises_in_verify_fails_closed(make_app: Any, client_for: Any) -> None:
    from api_helpers import HookedSource

    def broken(self: Any, headers: Any, body: bytes) -> None:
        raise ValueError("plugin bug")

    client = client_for(make_app())
    original = HookedSource.verify_webhook
    HookedSource.verify_webhook = broken  # type: ignore[method-assign]
    try:
        assert_error(await client.post("/api/v1/webhooks/hooks", **signed(PAYLOAD)), 401, "unauthorized")
    finally:
        HookedSource.verify_webhook = original  # type: ignore[method-assign]
    assert await deployments(client) == []


async def test_github_deliveries_through_the_real_plugin(make_app: Any, client_for: Any) -> None:
    github = pytest.importorskip("metrichub_plugin_github")
    hub = make_hub(
        sources={
            "gh": {"kind": "github", "repositories": ["acme/api"], "token": "gh-t0ken", "webhook_secret": "gh-secret"}
        }
    )
    hub.plugins.register(github, "github")
    client = client_for(make_app(hub))
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    signature = "sha256=" + hmac.new(b"gh-secret", body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": signature}
    ack = data(await client.post("/api/v1/webhooks/gh", content=body, headers=headers))
    assert ack == {"source": "gh", "delivery": "d-1", "duplicate": False, "events": 0}
    forged = {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    response = await client.post("/api/v1/webhooks/gh", content=body, headers=forged)
    assert_error(response, 401, "unauthorized")
    assert "gh-secret" not in response.text and "gh-t0ken" not in response.text


async def test_webhooks_are_parsed_with_the_state_of_the_last_collection(client: httpx.AsyncClient) -> None:
    hub = client._transport.app.state.metrichub.hub  # type: ignore[attr-defined]
    incident = {
        "event": "incident",
        "incident": {"id": "inc-1", "service": "checkout", "started_at": "2026-03-10T11:00:00Z"},
    }
    data(await client.post("/api/v1/webhooks/hooks", **signed(incident)))
    (before,) = (await hub.storage.list_events(EventQuery(kind="incident"))).items
    assert before.caused_by is None  # nothing collected yet: no state

    [result] = await hub.collect(["hooks"])
    assert result.ok, result.error
    data(await client.post("/api/v1/webhooks/hooks", **signed(incident)))
    (after,) = (await hub.storage.list_events(EventQuery(kind="incident"))).items
    assert after.caused_by == "collected-1"  # read from the state the collection saved
    stored = await hub.storage.get_state("hooks")
    assert stored["source"] == {"last_deployment": "collected-1"}  # what parse_webhook changed is not saved


async def test_delivery_ids_are_remembered_up_to_the_configured_bound(make_app: Any, client_for: Any) -> None:
    client = client_for(make_app(make_hub(webhook_delivery_max_ids=2)))

    async def deliver(delivery: str) -> bool:
        ack = data(await client.post("/api/v1/webhooks/hooks", **signed(PAYLOAD, **{"X-GitHub-Delivery": delivery})))
        return bool(ack["duplicate"])

    assert [await deliver(name) for name in ("a", "b", "a", "c")] == [False, False, True, False]
    # Two ids at most, the newest: "c" pushed out "a" (the oldest), so "a" is processed again.
    assert [await deliver(name) for name in ("b", "c", "a")] == [True, True, False]


async def test_concurrent_redeliveries_are_processed_once(make_app: Any, client_for: Any, tmp_path: Path) -> None:
    """The id is claimed before the events are stored (on SQLite's writer thread, so the requests
    interleave): a redelivery arriving meanwhile is a duplicate."""
    client = client_for(make_app(make_hub(storage=f"sqlite:///{tmp_path}/hooks.db")))
    request = signed(PAYLOAD, **{"X-GitHub-Delivery": "racing"})
    acks = await asyncio.gather(*(client.post("/api/v1/webhooks/hooks", **request) for _ in range(6)))
    assert sorted(data(ack)["duplicate"] for ack in acks) == [False] + [True] * 5


async def test_a_delivery_that_fails_is_not_remembered(client: httpx.AsyncClient) -> None:
    """An unusable delivery (400) leaves its id free: the sender's redelivery is processed."""
    broken = signed({"event": "deployment"}, **{"X-GitHub-Delivery": "retry-me"})
    assert_error(await client.post("/api/v1/webhooks/hooks", **broken), 400, "validation_error")
    fixed = signed(PAYLOAD, **{"X-GitHub-Delivery": "retry-me"})
    assert data(await client.post("/api/v1/webhooks/hooks", **fixed))["duplicate"] is False
    assert len(await deployments(client)) == 1
