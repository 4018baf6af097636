"""Request ids, error envelopes for every code, body limit, timeout, internal errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_helpers import assert_error, data, make_hub

from metrichub_core.api.envelope import error_response
from metrichub_core.api.errors import ERROR_STATUS


async def test_request_id_is_generated_or_taken_from_the_request(client: httpx.AsyncClient) -> None:
    generated = await client.get("/api/v1/health")
    assert len(generated.headers["x-request-id"]) == 32
    given = await client.get("/api/v1/health", headers={"X-Request-ID": "req-42.a:b"})
    assert given.headers["x-request-id"] == "req-42.a:b" and given.json()["trace_id"] == "req-42.a:b"
    hostile = await client.get("/api/v1/health", headers={"X-Request-ID": "x" * 500})
    assert hostile.headers["x-request-id"] != "x" * 500


async def test_every_kind_of_response_carries_the_request_id(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/api/v1/health"),
        await client.get("/nope"),
        await client.delete("/api/v1/health"),
        await client.get("/metrics"),
        await client.get("/"),
        await client.get("/openapi.json"),
        await client.post("/api/v1/deployments", content=b"{"),
    ):
        assert response.headers.get("x-request-id"), response.request.url


async def test_unknown_routes_are_not_found(client: httpx.AsyncClient) -> None:
    error = assert_error(await client.get("/api/v1/nothing/here"), 404, "not_found")
    assert error["details"] is None
    assert_error(await client.get("/api/v2/health"), 404, "not_found")


async def test_wrong_method_lists_the_allowed_ones(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/deployments")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, HEAD, POST"


async def test_internal_errors_are_logged_with_the_trace_id_and_hidden_from_clients(
    make_app: Any, client_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hub = make_hub()

    async def broken(**query: Any) -> Any:
        raise RuntimeError("engine exploded: internal detail")

    hub.dora = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="metrichub.api"):
        response = await client_for(make_app(hub)).get("/api/v1/metrics/dora")
    error = assert_error(response, 500, "internal_error")
    assert "internal detail" not in response.text
    assert error["trace_id"] in caplog.text and "engine exploded" in caplog.text


async def test_slow_requests_time_out_with_504(make_app: Any, client_for: Any) -> None:
    hub = make_hub(request_timeout_seconds=0.1)

    async def slow(**query: Any) -> Any:
        await asyncio.sleep(5)

    hub.dora = slow  # type: ignore[method-assign]
    client = client_for(make_app(hub))
    error = assert_error(await client.get("/api/v1/metrics/dora"), 504, "timeout")
    assert "0.1 seconds" in error["message"]
    assert data(await client.get("/api/v1/health"))["status"] == "ok"


async def test_a_declared_oversized_body_is_refused_before_it_is_read(make_app: Any, client_for: Any) -> None:
    client = client_for(make_app(make_hub(max_body_bytes=100)))
    json_type = {"Content-Type": "application/json"}
    response = await client.post("/api/v1/changes", content=b"[" + b" " * 200 + b"]", headers=json_type)
    error = assert_error(response, 413, "payload_too_large")
    assert error["details"] == {"max_body_bytes": 100}
    small = await client.post("/api/v1/changes", content=b"[" + b" " * 90 + b"]", headers=json_type)
    assert data(small)["ingested"] == 0


async def test_a_streamed_oversized_body_is_refused_then_drained(make_app: Any, client_for: Any) -> None:
    client = client_for(make_app(make_hub(max_body_bytes=100)))
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):
            sent += 1
            yield b"x" * 64

    response = await client.post("/api/v1/deployments", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large")
    # The rest is read and discarded (bounded), so a real client is not reset while it sends; see test_api_body_limit*.
    assert sent == 1000


async def test_webhook_bodies_are_limited_too(make_app: Any, client_for: Any) -> None:
    client = client_for(make_app(make_hub(max_body_bytes=10)))
    assert_error(await client.post("/api/v1/webhooks/hooks", content=b"x" * 11), 413, "payload_too_large")


def test_each_error_code_has_its_status() -> None:
    assert ERROR_STATUS == {
        "validation_error": 400,
        "unauthorized": 401,
        "forbidden": 403,
        "not_found": 404,
        "method_not_allowed": 405,
        "conflict": 409,
        "payload_too_large": 413,
        "unsupported_media_type": 415,
        "internal_error": 500,
        "timeout": 504,
    }
    for code, status in ERROR_STATUS.items():
        assert error_response(code, "m", trace_id="t").status_code == status


async def test_routes_without_parameters_refuse_a_query(client: httpx.AsyncClient) -> None:
    error = assert_error(await client.get("/api/v1/health?verbose=1"), 400, "validation_error")
    assert error["details"][0]["field"] == "query.verbose"
    assert (await client.get("/metrics?x=1")).status_code == 200, "outside /api/v1, queries are ignored"
