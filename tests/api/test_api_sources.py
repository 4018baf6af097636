from __future__ import annotations

import asyncio
from typing import Any

import httpx
from api_helpers import SOURCE_TOKEN, assert_error, data, make_hub

from metrichub_core.storage.base import EventQuery


async def test_list_sources(client: httpx.AsyncClient) -> None:
    listing = data(await client.get("/api/v1/sources"))
    assert [source["id"] for source in listing] == ["demo", "hooks"]
    hooks = listing[1]
    assert hooks == {
        "id": "hooks",
        "kind": "hooked",
        "base_url": "http://127.0.0.1:9",
        "schedule_minutes": None,
        "webhooks": True,
        "fault": None,
        "ok": True,
        "running": False,
        "breaker": "closed",
        "last_success_at": None,
        "last_run": None,
    }
    assert listing[0]["webhooks"] is False


async def test_source_health(client: httpx.AsyncClient) -> None:
    health = data(await client.get("/api/v1/sources/hooks/health"))
    assert health["ok"] is True and health["breaker"]["state"] == "closed"
    assert {"requests", "retries", "rate_limit_waits"} <= set(health["stats"])
    assert health["last_api_collection"] is None
    assert_error(await client.get("/api/v1/sources/nope/health"), 404, "not_found")


async def test_collect_in_the_background(client: httpx.AsyncClient) -> None:
    started = data(await client.post("/api/v1/sources/hooks/collect"), 202)
    assert started == {
        "source": "hooks",
        "status": "started",
        "trigger": "api",
        "started_at": None,
        "finished_at": None,
        "events": None,
        "error": None,
    }
    ctx = client._transport.app.state.metrichub  # type: ignore[attr-defined]
    await asyncio.gather(*ctx.runner.running.values())
    health = data(await client.get("/api/v1/sources/hooks/health"))
    assert health["last_api_collection"]["status"] == "succeeded"
    assert health["last_api_collection"]["events"] == 2
    assert health["last_run"]["ok"] is True and health["last_success_at"] is not None
    assert len((await ctx.hub.storage.list_events(EventQuery(kind="deployment"))).items) == 2


async def test_collect_and_wait(client: httpx.AsyncClient) -> None:
    done = data(await client.post("/api/v1/sources/hooks/collect?wait=true&full=true"))
    assert done["status"] == "succeeded" and done["events"] == 2 and done["finished_at"] is not None


async def test_collect_conflicts_while_running(make_app: Any, client_for: Any) -> None:
    hub = make_hub(sources={"slow": {"kind": "hooked", "collect_delay": 0.2}})
    client = client_for(make_app(hub))
    data(await client.post("/api/v1/sources/slow/collect"), 202)
    assert_error(await client.post("/api/v1/sources/slow/collect"), 409, "conflict")
    ctx = client._transport.app.state.metrichub
    await asyncio.gather(*ctx.runner.running.values())


async def test_a_failed_collection_is_reported_with_secrets_redacted(make_app: Any, client_for: Any) -> None:
    hub = make_hub(sources={"bad": {"kind": "hooked", "fail": True, "token": SOURCE_TOKEN}})
    client = client_for(make_app(hub))
    response = await client.post("/api/v1/sources/bad/collect?wait=true")
    done = data(response)
    assert done["status"] == "failed" and "RuntimeError" in done["error"]
    assert SOURCE_TOKEN not in response.text
    listing = await client.get("/api/v1/sources")
    assert data(listing)[0]["last_run"]["ok"] is False and SOURCE_TOKEN not in listing.text


async def test_collect_errors(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/api/v1/sources/nope/collect"), 404, "not_found")
    assert_error(await client.post("/api/v1/sources/hooks/collect?wait=maybe"), 400, "validation_error")


async def test_a_source_whose_table_is_invalid_is_listed_with_its_fault(make_app: Any, client_for: Any) -> None:
    hub = make_hub(
        sources={"broken": {"kind": "hooked", "token": SOURCE_TOKEN, "retries": "x"}, "demo": {"kind": "demo"}}
    )
    client = client_for(make_app(hub))
    response = await client.get("/api/v1/sources")
    listing = {source["id"]: source for source in data(response)}
    assert listing["broken"]["ok"] is False and "sources.broken.retries" in listing["broken"]["fault"]
    assert listing["demo"]["ok"] is True and listing["demo"]["fault"] is None
    health = data(await client.get("/api/v1/sources/broken/health"))
    assert health["ok"] is False and health["fault"] == listing["broken"]["fault"]
    collected = data(await client.post("/api/v1/sources/broken/collect?wait=true"))
    assert collected["status"] == "failed" and collected["error"] == listing["broken"]["fault"]
    assert data(await client.post("/api/v1/sources/demo/collect?wait=true"))["status"] == "succeeded"
    assert SOURCE_TOKEN not in response.text


async def test_a_collection_empties_the_dora_cache_as_it_stores(client: httpx.AsyncClient) -> None:
    query = "/api/v1/metrics/dora?since=2026-03-01&until=2026-03-20"
    assert data(await client.get(query))["deployment_frequency"]["count"] == 0
    assert (await client.get(query)).headers["x-cache"] == "hit"
    hub = client._transport.app.state.metrichub.hub  # type: ignore[attr-defined]
    await hub.collect(["hooks"])  # not through the API: the observer hook empties the cache
    after = await client.get(query)
    assert after.headers["x-cache"] == "miss" and data(after)["deployment_frequency"]["count"] == 2
