"""`[api] auth = "all"`: every route but health, webhooks and the dashboard page needs a token; read tokens read."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import API_TOKEN, WEBHOOK_SECRET, assert_error, data, make_hub, sign
from pydantic import SecretStr
from real_server import METRICHUB, serve

from metrichub_core.api import create_app
from metrichub_core.api.auth import BearerAuth
from metrichub_core.api.routes import OPERATIONS
from metrichub_core.config import ApiSettings, ConfigError, load_settings

READ_TOKEN = "read-token-51be0c9d"
UNKNOWN_TOKEN = "unknown-token-0a7f"

# Every GET that needs a token with auth = "all", with a path that exists (so a good token gets 200).
READS = [
    "/api/v1/health/storage",
    "/api/v1/plugins",
    "/api/v1/sources",
    "/api/v1/sources/hooks/health",
    "/api/v1/metrics/dora",
    "/api/v1/metrics/dora/trend",
    "/api/v1/metrics/dora/deployments",
    "/api/v1/metrics/dora/failures",
    "/api/v1/metrics/dora/changes",
    "/api/v1/metrics/dora/incidents",
    "/api/v1/metrics/dora/services",
    "/api/v1/metrics/dora/profiles",
    "/api/v1/deployments",
    "/api/v1/changes",
    "/api/v1/incidents",
    "/openapi.json",
    "/metrics",
]
WRITES: list[tuple[str, Any]] = [
    ("/api/v1/sources/hooks/collect", None),
    ("/api/v1/deployments", []),
    ("/api/v1/changes", []),
    ("/api/v1/incidents", []),
    ("/api/v1/incidents/x/resolve", None),
]
OPEN = ["/api/v1/health", "/api/v1/webhooks/{source_id}", "/", "/assets/dashboard.js", "/assets/dashboard.css"]
WEBHOOK = {"event": "deployment", "deployment": {"id": "wh-1", "service": "checkout", "status": "success",
           "started_at": "2026-03-10T10:00:00Z", "finished_at": "2026-03-10T10:05:00Z"}}  # fmt: skip


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def closed(client_for: Any) -> httpx.AsyncClient:
    hub = make_hub(tokens=[API_TOKEN], read_tokens=[READ_TOKEN], auth="all")
    return client_for(create_app(hub, schedule=False))  # type: ignore[no-any-return]


def test_every_route_is_classified() -> None:
    templated = {"/api/v1/sources/hooks/health": "/api/v1/sources/{id}/health"}
    reads = {templated.get(path, path) for path in READS}
    writes = {path.replace("/hooks/", "/{id}/").replace("/x/", "/{id}/") for path, _ in WRITES}
    assert reads | writes | set(OPEN) == {operation.path for operation in OPERATIONS}
    assert {op.path for op in OPERATIONS if op.write} == writes


@pytest.mark.parametrize("path", READS)
async def test_reads_need_a_token(closed: httpx.AsyncClient, path: str) -> None:
    missing = await closed.get(path)
    assert_error(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == 'Bearer realm="metrichub"'
    assert_error(await closed.get(path, headers={"Authorization": "Basic abc"}), 401, "unauthorized")
    unknown = await closed.get(path, headers=_bearer(UNKNOWN_TOKEN))
    assert_error(unknown, 403, "forbidden")
    assert UNKNOWN_TOKEN not in unknown.text
    assert (await closed.get(path, headers=_bearer(READ_TOKEN))).status_code == 200
    assert (await closed.get(path, headers=_bearer(API_TOKEN))).status_code == 200


@pytest.mark.parametrize(("path", "body"), WRITES)
async def test_writes_need_a_read_and_write_token(closed: httpx.AsyncClient, path: str, body: Any) -> None:
    missing = await closed.post(path, json=body)
    assert_error(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == 'Bearer realm="metrichub"'
    read_only = await closed.post(path, json=body, headers=_bearer(READ_TOKEN))
    assert "may only read" in assert_error(read_only, 403, "forbidden")["message"]
    assert READ_TOKEN not in read_only.text
    assert (await closed.post(path, json=body, headers=_bearer(API_TOKEN))).status_code not in (401, 403)


async def test_health_stays_open(closed: httpx.AsyncClient) -> None:
    assert data(await closed.get("/api/v1/health"))["status"] == "ok"


async def test_webhooks_keep_their_signature_check_and_need_no_bearer(closed: httpx.AsyncClient) -> None:
    body = json.dumps(WEBHOOK).encode()
    ack = data(
        await closed.post("/api/v1/webhooks/hooks", content=body, headers={"X-Signature": sign(body, WEBHOOK_SECRET)})
    )
    assert ack["events"] == 1
    assert_error(await closed.post("/api/v1/webhooks/hooks", content=body), 401, "unauthorized")


async def test_the_dashboard_page_is_served_empty_and_asks_for_a_token(
    closed: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    page = await closed.get("/")
    assert page.status_code == 200 and '<meta name="metrichub-auth" content="all">' in page.text
    assert '<meta name="metrichub-auth" content="writes">' in (await client.get("/")).text
    # The page is the static file, whatever is stored: no data in it.
    assert page.text.count("checkout") == 0
    script = await closed.get("/assets/dashboard.js")  # open too: code, no data
    assert script.status_code == 200 and script.text.count("checkout") == 0
    assert "sessionStorage.setItem" in script.text and "localStorage." not in script.text
    assert '"Bearer " + token' in script.text


async def test_openapi_marks_every_guarded_route(closed: httpx.AsyncClient) -> None:
    schema = (await closed.get("/openapi.json", headers=_bearer(READ_TOKEN))).json()
    assert schema["components"]["securitySchemes"] == {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if path in OPEN:
                assert "security" not in operation, (method, path)
                if path != "/api/v1/webhooks/{source_id}":  # its 401 is the signature's
                    assert "401" not in operation["responses"], (method, path)
            else:
                assert operation["security"] == [{"bearerAuth": []}], (method, path)
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


async def test_with_only_read_tokens_nobody_writes(client_for: Any) -> None:
    client = client_for(create_app(make_hub(read_tokens=[READ_TOKEN], auth="all"), schedule=False))
    assert (await client.get("/api/v1/deployments", headers=_bearer(READ_TOKEN))).status_code == 200
    assert_error(await client.post("/api/v1/changes", json=[], headers=_bearer(READ_TOKEN)), 403, "forbidden")
    assert_error(await client.post("/api/v1/changes", json=[]), 401, "unauthorized")


async def test_writes_mode_keeps_reads_open(client_for: Any) -> None:
    client = client_for(create_app(make_hub(tokens=[API_TOKEN]), schedule=False))
    assert (await client.get("/api/v1/deployments")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200
    assert_error(await client.post("/api/v1/changes", json=[]), 401, "unauthorized")


def test_auth_all_without_a_token_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "metrichub.toml"
    for table in ('auth = "all"\n', 'auth = "all"\ntokens = []\nread_tokens = []\n'):
        config.write_text(f"[api]\n{table}", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"api\.auth = \"all\" needs at least one token"):
            load_settings(config, environ={})
    config.write_text('[api]\nauth = "all"\ntokens = [""]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"api\.tokens\.0: .*empty"):  # a blank token is refused first
        load_settings(config, environ={})


def test_read_tokens_without_auth_all_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "metrichub.toml"
    config.write_text(f'[api]\ntokens = ["{API_TOKEN}"]\nread_tokens = ["{READ_TOKEN}"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"api\.read_tokens only apply with api\.auth = \"all\"") as raised:
        load_settings(config, environ={})
    assert READ_TOKEN not in str(raised.value) and API_TOKEN not in str(raised.value)


def test_an_unknown_auth_mode_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "metrichub.toml"
    config.write_text('[api]\nauth = "reads"\ntokens = ["t"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"api\.auth: Input should be 'writes' or 'all'"):
        load_settings(config, environ={})


def test_serve_refuses_auth_all_without_a_token(tmp_path: Path) -> None:
    config = tmp_path / "metrichub.toml"
    config.write_text('storage = "memory://"\n[api]\nauth = "all"\n', encoding="utf-8")
    result = subprocess.run(
        [*METRICHUB, "serve", "--config", str(config), "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "api.auth" in result.stderr


def test_settings_never_show_tokens() -> None:
    settings = ApiSettings(auth="all", tokens=[SecretStr(API_TOKEN)], read_tokens=[SecretStr(READ_TOKEN)])
    assert API_TOKEN not in repr(settings) and READ_TOKEN not in repr(settings)
    assert API_TOKEN not in settings.model_dump_json() and READ_TOKEN not in settings.model_dump_json()


def test_scopes_are_exact() -> None:
    auth = BearerAuth([SecretStr("rw")], [SecretStr("ro"), SecretStr("")], reads=True)
    assert auth.scope_of("rw") == "write" and auth.scope_of("ro") == "read"
    assert auth.scope_of("r") is None and auth.scope_of("") is None and auth.scope_of("rox") is None
    # A token listed in both lists may write: the broader scope wins.
    assert BearerAuth([SecretStr("both")], [SecretStr("both")], reads=True).scope_of("both") == "write"
    # Fail closed: reads guarded with no token at all refuses every token.
    assert BearerAuth([], reads=True).enabled and BearerAuth([], reads=True).scope_of("anything") is None


@pytest.mark.slow
def test_a_stdlib_client_against_a_real_server(tmp_path: Path) -> None:
    config = '[api]\nauth = "all"\ntokens = ["${RW_TOKEN}"]\nread_tokens = ["${RO_TOKEN}"]\n'
    env = {"RW_TOKEN": API_TOKEN, "RO_TOKEN": READ_TOKEN}
    with serve(tmp_path, config, env, demo_days=10) as base_url:

        def call(method: str, path: str, token: str | None = None, body: bytes | None = None) -> tuple[int, Any, Any]:
            headers = {"Content-Type": "application/json", **(_bearer(token) if token else {})}
            request = urllib.request.Request(base_url + path, data=body, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, response.headers, response.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.headers, exc.read()

        status, _, _ = call("GET", "/api/v1/health")
        assert status == 200
        status, headers, body = call("GET", "/api/v1/metrics/dora?days=10")
        assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="metrichub"'
        assert json.loads(body)["error"]["code"] == "unauthorized"
        status, _, body = call("GET", "/api/v1/metrics/dora?days=10", READ_TOKEN)
        assert status == 200 and json.loads(body)["data"]["deployment_frequency"]["count"] > 0
        assert call("GET", "/metrics", READ_TOKEN)[0] == 200 and call("GET", "/metrics")[0] == 401
        assert call("GET", "/openapi.json", API_TOKEN)[0] == 200 and call("GET", "/openapi.json")[0] == 401
        status, _, body = call("POST", "/api/v1/changes", READ_TOKEN, b"[]")
        assert status == 403 and json.loads(body)["error"]["code"] == "forbidden"
        status, _, body = call("POST", "/api/v1/changes", API_TOKEN, b"[]")
        assert status == 200 and json.loads(body)["data"]["ingested"] == 0
        assert call("GET", "/")[0] == 200
    log = (tmp_path / "serve.log").read_text()
    assert API_TOKEN not in log and READ_TOKEN not in log
