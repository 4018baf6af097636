from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import assert_error, data, deployment, make_hub
from starlette.applications import Starlette

from metrichub_core.api import create_app
from metrichub_core.models import EventKind, Incident
from metrichub_core.storage.base import EventQuery


@pytest.fixture(params=["memory", "sqlite"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Starlette]:
    """Every ingest and listing test runs on both built-in backends."""
    storage = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'api.db'}"
    hub = make_hub(storage=storage)
    yield create_app(hub)
    await hub.close()


DEPLOYMENT = {
    "id": "d-1",
    "source": "ci",
    "service": "checkout",
    "status": "success",
    "started_at": "2026-03-10T10:00:00Z",
    "finished_at": "2026-03-10T10:05:00+01:00",
    "change_ids": ["c-1"],
    "labels": {"team": "payments"},
}
CHANGE = {"id": "c-1", "source": "git", "service": "checkout", "committed_at": "2026-03-09T08:00:00Z"}
INCIDENT = {"id": "i-1", "source": "pager", "service": "checkout", "started_at": "2026-03-10T11:00:00Z"}


async def stored(app_client: httpx.AsyncClient, kind: EventKind) -> list[Any]:
    hub = app_client._transport.app.state.metrichub.hub  # type: ignore[attr-defined]
    await hub.open()
    return (await hub.storage.list_events(EventQuery(kind=kind))).items  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("path", "kind", "payload"),
    [
        ("/api/v1/deployments", "deployment", DEPLOYMENT),
        ("/api/v1/changes", "change", CHANGE),
        ("/api/v1/incidents", "incident", INCIDENT),
    ],
)
async def test_ingest_one_or_a_list(
    client: httpx.AsyncClient, path: str, kind: EventKind, payload: dict[str, Any]
) -> None:
    assert data(await client.post(path, json=payload)) == {"kind": kind, "ingested": 1}
    second = {**payload, "id": payload["id"] + "b"}
    assert data(await client.post(path, json=[payload, second])) == {"kind": kind, "ingested": 2}
    assert sorted(event.id for event in await stored(client, kind)) == [payload["id"], second["id"]]


async def test_ingest_normalises_times_to_utc(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/deployments", json=DEPLOYMENT)
    listed = data(await client.get("/api/v1/deployments"))["items"]
    assert listed[0]["finished_at"] == "2026-03-10T09:05:00Z"


async def test_a_list_is_all_or_nothing_with_field_paths(client: httpx.AsyncClient) -> None:
    bad = {**DEPLOYMENT, "id": "d-2", "started_at": "2026-03-10T10:00:00", "colour": "red"}
    error = assert_error(await client.post("/api/v1/deployments", json=[DEPLOYMENT, bad]), 400, "validation_error")
    fields = {detail["field"]: detail for detail in error["details"]}
    assert set(fields) == {"[1].started_at", "[1].colour"}
    assert fields["[1].started_at"]["loc"] == [1, "started_at"]
    assert fields["[1].started_at"]["type"] == "timezone_aware"
    assert fields["[1].colour"]["type"] == "extra_forbidden"
    assert "nothing was stored" in error["message"]
    assert await stored(client, "deployment") == []


async def test_a_single_invalid_object_names_its_fields(client: httpx.AsyncClient) -> None:
    error = assert_error(await client.post("/api/v1/incidents", json={"id": "x"}), 400, "validation_error")
    assert {detail["field"] for detail in error["details"]} == {"source", "service", "started_at"}


@pytest.mark.parametrize("body", [b"", b"{", b"42", b'"x"', b"null", b"[" * 10_000 + b"]" * 10_000])
async def test_ingest_refuses_what_is_not_an_object_or_a_list(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/api/v1/changes", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "validation_error")


async def test_ingest_does_not_echo_input_values(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/changes", json={**CHANGE, "committed_at": "not-a-time-SECRETISH"})
    assert_error(response, 400, "validation_error")
    assert "SECRETISH" not in response.text


async def test_list_filters_and_cursor_paging(client: httpx.AsyncClient) -> None:
    hub = client._transport.app.state.metrichub.hub  # type: ignore[attr-defined]
    await hub.ingest([deployment(f"d{index:02}", service="checkout" if index % 2 else "search") for index in range(7)])
    await hub.ingest([deployment("labelled", service="search", labels={"team": "payments"}, environment="staging")])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"service": "checkout", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = data(await client.get("/api/v1/deployments", params=params))
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["d01", "d03", "d05"]
    labelled = data(
        await client.get("/api/v1/deployments", params={"label": "team=payments", "environment": "staging"})
    )
    assert [item["id"] for item in labelled["items"]] == ["labelled"]
    assert data(await client.get("/api/v1/changes"))["items"] == []
    assert data(await client.get("/api/v1/incidents", params={"since": "2026-01-01"}))["items"] == []


@pytest.mark.parametrize(
    "query",
    [
        "cursor=garbage",
        "limit=0",
        "limit=1001",
        "limit=x",
        "since=yesterday",
        "until=2026-03-01T00:00:00",
        "colour=red",
        "service=a&service=b",
    ],
)
async def test_list_query_validation(client: httpx.AsyncClient, query: str) -> None:
    error = assert_error(await client.get(f"/api/v1/deployments?{query}"), 400, "validation_error")
    assert error["details"][0]["field"].startswith("query.")


async def test_changes_take_no_environment_filter(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/changes?environment=production"), 400, "validation_error")


async def test_resolve_an_incident(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/incidents", json=INCIDENT)
    resolved = data(
        await client.post("/api/v1/incidents/i-1/resolve", json={"resolved_at": "2026-03-10T12:30:00+01:00"})
    )
    assert resolved["resolved_at"] == "2026-03-10T11:30:00Z"
    (incident,) = await stored(client, "incident")
    assert isinstance(incident, Incident) and incident.resolved_at is not None
    # Again at the same moment, or without a moment: a no-op.
    assert (
        data(await client.post("/api/v1/incidents/i-1/resolve", json={"resolved_at": "2026-03-10T11:30:00Z"}))
        == resolved
    )
    assert data(await client.post("/api/v1/incidents/i-1/resolve")) == resolved
    # At another moment: a conflict.
    error = assert_error(
        await client.post("/api/v1/incidents/i-1/resolve", json={"resolved_at": "2026-03-10T13:00:00Z"}),
        409,
        "conflict",
    )
    assert error["details"] == {"resolved_at": "2026-03-10T11:30:00+00:00"}


async def test_resolve_defaults_to_now(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/incidents", json=INCIDENT)
    assert data(await client.post("/api/v1/incidents/i-1/resolve", content=b""))["resolved_at"] is not None


async def test_resolve_errors(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/api/v1/incidents/nope/resolve"), 404, "not_found")
    await client.post("/api/v1/incidents", json=[INCIDENT, {**INCIDENT, "source": "other"}])
    error = assert_error(await client.post("/api/v1/incidents/i-1/resolve"), 409, "conflict")
    assert error["details"] == {"sources": ["other", "pager"]}
    assert data(await client.post("/api/v1/incidents/i-1/resolve?source=other"))["source"] == "other"
    early = await client.post(
        "/api/v1/incidents/i-1/resolve?source=pager", json={"resolved_at": "2026-03-10T10:00:00Z"}
    )
    assert assert_error(early, 400, "validation_error")["details"][0]["field"] == "resolved_at"
    naive = await client.post("/api/v1/incidents/i-1/resolve?source=pager", json={"resolved_at": "2026-03-10T12:00:00"})
    assert_error(naive, 400, "validation_error")
    unknown = await client.post("/api/v1/incidents/i-1/resolve?source=pager", json={"resolved": "now"})
    assert assert_error(unknown, 400, "validation_error")["details"][0]["field"] == "resolved"


async def test_ingest_invalidates_the_dora_cache(client: httpx.AsyncClient) -> None:
    query = {"since": "2026-03-01", "until": "2026-03-16"}
    first = await client.get("/api/v1/metrics/dora", params=query)
    assert first.headers["x-cache"] == "miss" and data(first)["deployment_frequency"]["count"] == 0
    assert (await client.get("/api/v1/metrics/dora", params=query)).headers["x-cache"] == "hit"
    await client.post("/api/v1/deployments", json=DEPLOYMENT)
    after = await client.get("/api/v1/metrics/dora", params=query)
    assert after.headers["x-cache"] == "miss" and data(after)["deployment_frequency"]["count"] == 1


async def test_hub_fixture_is_isolated() -> None:
    assert make_hub().settings.api.tokens == []


async def test_numbers_are_not_timestamps(client: httpx.AsyncClient) -> None:
    error = assert_error(
        await client.post("/api/v1/changes", json={**CHANGE, "committed_at": 1767225600}), 400, "validation_error"
    )
    assert error["details"][0]["field"] == "committed_at"
