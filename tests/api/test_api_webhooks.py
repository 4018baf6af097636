from __future__ import annotations

import json
from typing import Any

import httpx
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
