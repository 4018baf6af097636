"""URLs are shown without credentials or secret-looking query parameters: API, CLI, the git plugin; storage
details only to authenticated callers with ``auth = "all"``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from api_helpers import API_TOKEN, assert_error, data, make_hub
from click.testing import CliRunner

from metrichub_core.cli import main
from metrichub_core.redaction import is_secret_name, redact_data, redact_url

SECRET = "tok-7d1e9a0c55"
PASSWORD_TAIL = "tail-b3f2"  # after an "@" in the password: once leaked by the old mask
BASE_URL = f"https://ci:p@{PASSWORD_TAIL}@ci.example/api?access_token={SECRET}&page=2"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (BASE_URL, "https://***@ci.example/api?access_token=***&page=2"),
        ("fatal: 'https://u:p@h.example/x.git/' failed", "fatal: 'https://***@h.example/x.git/' failed"),
        ("ssh://git@h.example/x and http://TOKEN@h/", "ssh://***@h.example/x and http://***@h/"),
        ("postgresql://me:s3cr@t/x@db:5432/m?sslmode=require", "postgresql://***@db:5432/m?sslmode=require"),
        ("https://h/x?X-Amz-Signature=a&X-Amz-Credential=b&apiKey=c&sig=d&q=e", None),
        (
            "https://h/cb#access_token=a&token_type=bearer&state=s",
            "https://h/cb#access_token=***&token_type=***&state=s",
        ),
        ("https://h/p?password=&client_secret=x&key=y", "https://h/p?password=***&client_secret=***&key=***"),
        ("https://host:8443/@scope/pkg?page=2", "https://host:8443/@scope/pkg?page=2"),
        ("/srv/git/app.git and host:5432", "/srv/git/app.git and host:5432"),
    ],
)
def test_redact_url(text: str, shown: str | None) -> None:
    expected = shown or "https://h/x?X-Amz-Signature=***&X-Amz-Credential=***&apiKey=***&sig=***&q=e"
    assert redact_url(text) == expected


def test_secret_names_and_nested_data() -> None:
    assert all(is_secret_name(name) for name in ("token", "access_token", "API_KEY", "passwd", "access%5Ftoken"))
    assert not any(is_secret_name(name) for name in ("page", "per_page", "state", "ref", "q"))
    assert redact_data({"a": [f"http://x/?token={SECRET}"], "n": 1}) == {"a": ["http://x/?token=***"], "n": 1}


def test_the_git_plugin_uses_the_core_helper() -> None:
    runner = pytest.importorskip("metrichub_plugin_git._runner")
    assert runner.redact is redact_url


async def test_sources_base_url_is_masked(make_app: Any, client_for: Any) -> None:
    hub = make_hub(sources={"ci": {"kind": "hooked", "base_url": BASE_URL}})
    listing = data(await client_for(make_app(hub)).get("/api/v1/sources"))
    assert listing[0]["base_url"] == "https://***@ci.example/api?access_token=***&page=2"


@pytest.mark.parametrize("output", ["table", "json"])
def test_cli_sources_masks_urls(tmp_path: Path, output: str) -> None:
    config = tmp_path / "metrichub.toml"
    config.write_text(
        f'storage = "sqlite:///{tmp_path / "m.db"}"\n[sources.demo]\nkind = "demo"\nbase_url = "{BASE_URL}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["sources", "--config", str(config), "--format", output])
    assert SECRET not in result.output and PASSWORD_TAIL not in result.output, result.output
    assert "access_token=***" in result.output
    if output == "json":
        (row,) = json.loads(result.output)
        assert row["base_url"] == "https://***@ci.example/api?access_token=***&page=2"


async def test_storage_details_only_to_authenticated_callers_with_auth_all(
    tmp_path: Path, make_app: Any, client_for: Any
) -> None:
    path = tmp_path / "private-name.db"
    hub = make_hub(storage=f"sqlite:///{path}", tokens=[API_TOKEN], auth="all")
    client = client_for(make_app(hub))
    refused = await client.get("/api/v1/health/storage")
    assert_error(refused, 401, "unauthorized")
    assert "private-name" not in refused.text
    assert data(await client.get("/api/v1/health"))["status"] == "ok"  # liveness stays open
    shown = data(await client.get("/api/v1/health/storage", headers={"Authorization": f"Bearer {API_TOKEN}"}))
    assert shown["ok"] is True
