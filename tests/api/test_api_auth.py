from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_helpers import assert_error, data, make_hub

from metrichub_core.api.auth import BearerAuth

TOKEN = "s3cret-api-token"
WRITES: list[tuple[str, Any]] = [
    ("/api/v1/deployments", []),
    ("/api/v1/changes", []),
    ("/api/v1/incidents", []),
    ("/api/v1/incidents/x/resolve", None),
    ("/api/v1/sources/hooks/collect", None),
]


@pytest.fixture
def guarded(make_app: Any, client_for: Any) -> httpx.AsyncClient:
    return client_for(make_app(make_hub(tokens=["other-token", TOKEN])))  # type: ignore[no-any-return]


@pytest.mark.parametrize(("path", "body"), WRITES)
async def test_write_routes_need_a_token(guarded: httpx.AsyncClient, path: str, body: Any) -> None:
    response = await guarded.post(path, json=body)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_error(await guarded.post(path, json=body, headers={"Authorization": "Basic abc"}), 401, "unauthorized")
    assert_error(await guarded.post(path, json=body, headers={"Authorization": "Bearer"}), 401, "unauthorized")
    wrong = await guarded.post(path, json=body, headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 403, "forbidden")
    assert "nope" not in wrong.text


async def test_a_configured_token_is_accepted(guarded: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert data(await guarded.post("/api/v1/changes", json=[], headers=headers)) == {"kind": "change", "ingested": 0}
    assert data(await guarded.post("/api/v1/changes", json=[], headers={"authorization": f"bearer  {TOKEN} "}))


async def test_read_routes_stay_open(guarded: httpx.AsyncClient) -> None:
    for path in ("/api/v1/health", "/api/v1/deployments", "/api/v1/metrics/dora", "/api/v1/sources", "/metrics"):
        assert (await guarded.get(path)).status_code == 200, path


async def test_no_tokens_means_open(client: httpx.AsyncClient) -> None:
    assert data(await client.post("/api/v1/changes", json=[]))["ingested"] == 0


def test_comparison_is_exact() -> None:
    from pydantic import SecretStr

    auth = BearerAuth([SecretStr("abc"), SecretStr("")])
    assert auth.enabled
    assert auth.accepts("abc")
    assert not auth.accepts("ab") and not auth.accepts("abcd") and not auth.accepts("")
    assert not BearerAuth([SecretStr("")]).enabled
