"""Auth fails closed: a blank token stops `metrichub serve` (exit 2, key named); writes take JSON only (415);
the OpenAPI document declares the bearer scheme on every route that needs a token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from api_helpers import API_TOKEN, assert_error, data, make_hub, sign
from click.testing import CliRunner

from metrichub_core.api.auth import OPEN_PATHS
from metrichub_core.api.routes import OPERATIONS
from metrichub_core.cli import main

CHANGE = {"id": "c1", "source": "ci", "service": "checkout", "committed_at": "2026-03-01T10:00:00Z"}
CHANGE_JSON = b'{"id": "c1", "source": "ci", "service": "checkout", "committed_at": "2026-03-01T10:00:00Z"}'


@pytest.mark.parametrize("value", ["", "  "])
def test_serve_refuses_a_blank_token(tmp_path: Path, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(self: uvicorn.Server) -> None:  # a regression must fail here, not serve an open API forever
        raise AssertionError("serve started with a blank token")

    monkeypatch.setattr(uvicorn.Server, "run", never)
    config = tmp_path / "metrichub.toml"
    config.write_text(f'storage = "sqlite:///{tmp_path / "m.db"}"\n[api]\ntokens = ["${{TOK}}"]\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--config", str(config), "--port", "0"], env={"TOK": value})
    assert result.exit_code == 2, result.output
    assert "api.tokens.0" in result.output and "empty" in result.output


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/json"],
)
async def test_a_write_body_must_be_json(client: httpx.AsyncClient, content_type: str | None) -> None:
    # A web page can make a browser send each of these cross-site without a preflight (but JSON).
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await client.post("/api/v1/changes", content=CHANGE_JSON, headers=headers)
    error = assert_error(response, 415, "unsupported_media_type")
    assert error["details"][0]["field"] == "header.content-type"
    assert data(await client.get("/api/v1/changes"))["items"] == []


async def test_json_with_parameters_is_accepted(client: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "Application/JSON; charset=utf-8"}
    assert data(await client.post("/api/v1/changes", content=CHANGE_JSON, headers=headers))["ingested"] == 1


async def test_resolve_takes_no_body_or_a_json_one(client: httpx.AsyncClient) -> None:
    incident = {"id": "i-1", "source": "pd", "service": "checkout", "started_at": "2026-03-01T10:00:00Z"}
    assert data(await client.post("/api/v1/incidents", json=incident))["ingested"] == 1
    body = b'{"resolved_at": "2026-03-01T11:00:00Z"}'
    refused = await client.post("/api/v1/incidents/i-1/resolve", content=body, headers={"Content-Type": "text/plain"})
    assert_error(refused, 415, "unsupported_media_type")
    empty_form = await client.post(
        "/api/v1/incidents/i-1/resolve", content=b"", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_error(empty_form, 415, "unsupported_media_type")
    assert data(await client.post("/api/v1/incidents/i-1/resolve"))["resolved_at"] is not None  # no body at all


async def test_collect_and_signed_webhooks_keep_their_media_types(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/sources/hooks/collect")).status_code == 202
    body = b'{"event": "ping"}'
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Signature": sign(body, "whsec-9b2e4d1a60")}
    assert data(await client.post("/api/v1/webhooks/hooks", content=body, headers=headers))["events"] == 0


async def test_authentication_comes_before_the_media_type(make_app: Any, client_for: Any) -> None:
    client = client_for(make_app(make_hub(tokens=[API_TOKEN])))
    response = await client.post("/api/v1/changes", content=CHANGE_JSON, headers={"Content-Type": "text/plain"})
    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("auth", ["writes", "all"])
async def test_openapi_declares_bearer_and_415_where_they_apply(make_app: Any, client_for: Any, auth: str) -> None:
    client = client_for(make_app(make_hub(tokens=[API_TOKEN], auth=auth)))
    response = await client.get("/openapi.json", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 200, response.text
    schema = response.json()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    for operation in OPERATIONS:
        if not operation.in_schema:
            continue
        item = schema["paths"][operation.path][operation.method.lower()]
        guarded = operation.path not in OPEN_PATHS and (operation.write or auth == "all")
        assert (item.get("security") == [{"bearerAuth": []}]) is guarded, operation.path
        takes_json = operation.write and operation.body is not None
        assert ("415" in item["responses"]) is takes_json, operation.path
        if takes_json:
            assert "unsupported_media_type" in item["responses"]["415"]["description"]


@pytest.mark.parametrize(("table", "warned"), [("", True), ('tokens = ["t-0e61"]\n', False)])
def test_serve_warns_when_the_api_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, warned: bool
) -> None:
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)
    config = tmp_path / "metrichub.toml"
    config.write_text(f'storage = "sqlite:///{tmp_path / "m.db"}"\n[api]\n{table}', encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--config", str(config), "--port", "0"])
    assert result.exit_code == 0, result.output
    assert ("anyone who reaches the port can write" in result.output) is warned
