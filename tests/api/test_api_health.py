from __future__ import annotations

from typing import Any

import httpx
from api_helpers import data, make_hub

from metrichub_core import __version__
from metrichub_core.storage.base import StorageHealth


async def test_health(client: httpx.AsyncClient) -> None:
    assert data(await client.get("/api/v1/health")) == {"status": "ok", "version": __version__}


async def test_storage_health(client: httpx.AsyncClient) -> None:
    health = data(await client.get("/api/v1/health/storage"))
    assert health == {"ok": True, "backend": "memory", "schema_version": None, "detail": None}


async def test_storage_health_is_503_with_the_report_when_storage_is_down(make_app: Any, client_for: Any) -> None:
    hub = make_hub()

    async def broken() -> StorageHealth:
        raise ConnectionError("postgresql://admin:hunter2@db/metrichub refused")

    hub.storage.health = broken  # type: ignore[method-assign]
    response = await client_for(make_app(hub)).get("/api/v1/health/storage")
    health = data(response, 503)
    assert health["ok"] is False and health["detail"] == "ConnectionError"
    assert "hunter2" not in response.text


async def test_storage_health_detail_drops_url_credentials(make_app: Any, client_for: Any) -> None:
    hub = make_hub()

    async def degraded() -> StorageHealth:
        return StorageHealth(ok=False, backend="postgresql", detail="cannot reach postgresql://admin:hunter2@db:5432/x")

    hub.storage.health = degraded  # type: ignore[method-assign]
    health = data(await client_for(make_app(hub)).get("/api/v1/health/storage"), 503)
    assert health["detail"] == "cannot reach postgresql://***@db:5432/x"


async def test_plugins_lists_builtins_and_registered_plugins(client: httpx.AsyncClient) -> None:
    listing = data(await client.get("/api/v1/plugins"))
    by_name = {plugin["name"]: plugin for plugin in listing["plugins"]}
    assert by_name["metrichub_core.builtins.storage"]["storage"] == ["memory", "sqlite"]
    assert by_name["metrichub_core.builtins.demo"] | {"version": None} == {
        "name": "metrichub_core.builtins.demo",
        "distribution": "metrichub-core",
        "version": None,
        "builtin": True,
        "status": "active",
        "hooks": ["register_sources"],
        "sources": ["demo"],
        "storage": [],
        "error": None,
    }
    assert by_name["tests.hooked"]["sources"] == ["hooked"]
    assert listing["failed"] == []
    assert not any(name.startswith("metrichub.api") for name in by_name), "the API's own observer is not a plugin"


async def test_plugins_reports_a_failed_plugin(make_app: Any, client_for: Any) -> None:
    class Broken:
        from metrichub_core import hookimpl

        @hookimpl
        def register_sources(self) -> list[Any]:
            raise RuntimeError("boom")

    hub = make_hub()
    hub.plugins.register(Broken(), "tests.broken")
    listing = data(await client_for(make_app(hub)).get("/api/v1/plugins"))
    broken = next(plugin for plugin in listing["plugins"] if plugin["name"] == "tests.broken")
    assert broken["status"] == "failed" and "boom" in broken["error"]
    assert listing["failed"] == ["tests.broken"]
