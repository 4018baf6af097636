"""Fixtures for API tests: the app on a test hub, and httpx clients over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from api_helpers import make_hub
from starlette.applications import Starlette

from metrichub_core import MetricHub
from metrichub_core.api import create_app

AppFactory = Callable[..., Starlette]


@pytest.fixture
def make_app() -> AppFactory:
    def factory(hub: MetricHub | None = None, **options: Any) -> Starlette:
        hub_options = {
            key: options.pop(key)
            for key in ("sources", "tokens", "max_body_bytes", "request_timeout_seconds")
            if key in options
        }
        return create_app(hub or make_hub(**hub_options), **options)

    return factory


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[Starlette], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def factory(app: Starlette) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
async def app(make_app: AppFactory) -> Starlette:
    return make_app()


@pytest.fixture
async def client(app: Starlette, client_for: Callable[[Starlette], httpx.AsyncClient]) -> httpx.AsyncClient:
    return client_for(app)
