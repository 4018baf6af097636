"""Source tokens, webhook secrets and API tokens appear in no response and no log line."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from api_helpers import API_TOKEN, SECRETS, SOURCE_TOKEN, WEBHOOK_SECRET, make_hub, sign


async def test_no_secret_in_any_response_or_log_line(
    make_app: Any, client_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hub = make_hub(
        tokens=[API_TOKEN],
        sources={
            "hooks": {"kind": "hooked", "token": SOURCE_TOKEN, "webhook_secret": WEBHOOK_SECRET},
            "failing": {"kind": "hooked", "token": SOURCE_TOKEN, "fail": True},
        },
    )
    app = make_app(hub, close_hub=False)
    client: httpx.AsyncClient = client_for(app)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    body = json.dumps({"event": "ping"}).encode()
    responses: list[httpx.Response] = []
    requests: list[tuple[str, str, dict[str, Any]]]
    with caplog.at_level(logging.DEBUG):
        async with app.router.lifespan_context(app):
            requests = [
                ("GET", "/", {}),
                ("GET", "/openapi.json", {}),
                ("GET", "/api/v1/health", {}),
                ("GET", "/api/v1/health/storage", {}),
                ("GET", "/api/v1/plugins", {}),
                ("GET", "/api/v1/sources", {}),
                ("GET", "/api/v1/sources/hooks/health", {}),
                ("GET", "/api/v1/sources/failing/health", {}),
                ("POST", "/api/v1/sources/failing/collect?wait=true", {"headers": auth}),
                ("POST", "/api/v1/sources/hooks/collect?wait=true", {"headers": auth}),
                ("GET", "/api/v1/sources", {}),
                ("GET", "/api/v1/sources/failing/health", {}),
                ("POST", "/api/v1/deployments", {"json": [], "headers": {"Authorization": f"Bearer {API_TOKEN}x"}}),
                ("POST", "/api/v1/deployments", {"json": {"token": SOURCE_TOKEN}, "headers": auth}),
                ("POST", "/api/v1/changes", {"json": [], "headers": auth}),
                ("POST", "/api/v1/webhooks/hooks", {"content": body, "headers": {"X-Signature": "sha256=0"}}),
                (
                    "POST",
                    "/api/v1/webhooks/hooks",
                    {"content": body, "headers": {"X-Signature": sign(body, WEBHOOK_SECRET)}},
                ),
                ("GET", f"/api/v1/deployments?service={SOURCE_TOKEN[:4]}", {}),
                ("GET", "/api/v1/metrics/dora", {}),
                ("GET", "/api/v1/metrics/dora/trend?bucket=month", {}),
                ("GET", "/metrics", {}),
            ]
            for method, path, options in requests:
                responses.append(await client.request(method, path, **options))
    assert [response.status_code for response in responses if response.status_code >= 500] == []
    assert any("RuntimeError" in response.text for response in responses), "the failing collection was reported"
    for response in responses:
        text = response.text + "\n".join(f"{name}: {value}" for name, value in response.headers.items())
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked by {response.request.method} {response.request.url}"
    log_text = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "GET /api/v1/sources" in log_text, "access lines were captured"
    for secret in SECRETS:
        assert secret not in log_text, f"{secret} leaked in the log"
    await hub.close()
