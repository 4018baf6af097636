"""Odd input is ``400 validation_error`` naming the parameter or field, never a 500; one event's lists are bounded."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import WEBHOOK_SECRET, assert_error, data, make_hub, sign

from metrichub_core.filters import MAX_LABEL_FILTERS
from metrichub_core.models import MAX_CHANGE_IDS, MAX_LABELS

DEPLOYMENT = {
    "id": "d1",
    "source": "ci",
    "service": "checkout",
    "status": "success",
    "started_at": "2026-03-01T10:00:00Z",
    "finished_at": "2026-03-01T10:05:00Z",
}
LISTS = ["/api/v1/metrics/dora", "/api/v1/metrics/dora/trend", "/api/v1/deployments"]


@pytest.fixture
async def client(tmp_path: Path, make_app: Any, client_for: Any) -> httpx.AsyncClient:
    # SQLite: the backend whose JSON paths and integer columns the odd input used to reach.
    app = make_app(make_hub(storage=f"sqlite:///{tmp_path / 'odd.db'}"))
    client: httpx.AsyncClient = client_for(app)
    assert data(await client.post("/api/v1/deployments", json={**DEPLOYMENT, "labels": {"team": "x"}}))["ingested"]
    return client


def fields(response: httpx.Response) -> set[str]:
    return {detail["field"] for detail in assert_error(response, 400, "validation_error")["details"]}


async def test_a_huge_change_ids_list_is_refused(client: httpx.AsyncClient) -> None:
    # The write: 120,000 change ids in 969 KB, under the body limit; it made every later report slow.
    huge = {**DEPLOYMENT, "id": "huge", "change_ids": [str(number) for number in range(120_000)]}
    body = json.dumps(huge, separators=(",", ":")).encode()
    assert len(body) < 1_048_576
    response = await client.post("/api/v1/deployments", content=body, headers={"Content-Type": "application/json"})
    assert fields(response) == {"change_ids"}
    ids = [item["id"] for item in data(await client.get("/api/v1/deployments"))["items"]]
    assert ids == ["d1"]


async def test_list_limits_name_the_field_in_a_batch(client: httpx.AsyncClient) -> None:
    batch = [
        {**DEPLOYMENT, "id": "ok", "change_ids": ["c"] * MAX_CHANGE_IDS},
        {**DEPLOYMENT, "id": "many", "labels": {f"k{index}": "v" for index in range(MAX_LABELS + 1)}},
    ]
    assert fields(await client.post("/api/v1/deployments", json=batch)) == {"[1].labels"}


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("label", ['te"am x=1', "team x=1", "=1", "$.x=1", "team=a\tb", "k" * 129 + "=v"])
async def test_odd_label_filters(client: httpx.AsyncClient, path: str, label: str) -> None:
    assert fields(await client.get(path, params={"label": label})) == {"query.label[0]"}


@pytest.mark.parametrize("path", LISTS)
async def test_label_filters_are_bounded_in_number(client: httpx.AsyncClient, path: str) -> None:
    at_limit = httpx.QueryParams([("label", f"k{index}=v") for index in range(MAX_LABEL_FILTERS)])
    assert (await client.get(path, params=at_limit)).status_code == 200
    for count in (MAX_LABEL_FILTERS + 1, 1000):  # 1,000 was "Expression tree is too large" (500)
        params = httpx.QueryParams([("label", f"k{index}=v") for index in range(count)])
        assert fields(await client.get(path, params=params)) == {"query.label"}


@pytest.mark.parametrize("path", LISTS)
async def test_label_grammar_accepts_what_plugins_write(client: httpx.AsyncClient, path: str) -> None:
    for label in ("team=x", " team = x ", "app.kubernetes.io/name=checkout", "job=folder/deploy prod", "k_1:a-b="):
        assert (await client.get(path, params={"label": label})).status_code == 200, label


@pytest.mark.parametrize("number", [2**63, 2**64 + 1, -(2**70)])
async def test_a_forged_cursor_beyond_64_bits(client: httpx.AsyncClient, number: int) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps([number, "ci", "d1"]).encode()).decode()
    assert fields(await client.get("/api/v1/deployments", params={"cursor": cursor})) == {"query.cursor"}
    nested = base64.urlsafe_b64encode(b"[" * 1500).decode()  # deeper than json's recursion limit
    assert fields(await client.get("/api/v1/deployments", params={"cursor": nested})) == {"query.cursor"}


@pytest.mark.parametrize("bucket", ["day", "week", "month"])
async def test_a_trend_ending_in_year_9999(client: httpx.AsyncClient, bucket: str) -> None:
    params = {"until": "9999-12-31", "days": "30", "bucket": bucket}
    assert fields(await client.get("/api/v1/metrics/dora/trend", params=params)) == {"query.until"}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/metrics/dora", {"service": "check\x00out"}, "query.service"),
        ("/api/v1/metrics/dora/trend", {"environment": "prod\x00"}, "query.environment"),
        ("/api/v1/deployments", {"source": "\x00"}, "query.source"),
        ("/api/v1/incidents", {"until": "2026-03-01\x00"}, "query.until"),
    ],
)
async def test_nul_in_a_query(client: httpx.AsyncClient, path: str, params: dict[str, str], field: str) -> None:
    assert fields(await client.get(path, params=params)) == {field}


async def test_nul_in_a_body_or_path(client: httpx.AsyncClient) -> None:
    one = {**DEPLOYMENT, "id": "n1", "service": "check\u0000out"}
    assert fields(await client.post("/api/v1/deployments", json=one)) == {"service"}
    batch = [DEPLOYMENT, {**DEPLOYMENT, "id": "n2", "labels": {"team": "a\u0000", "ok": "b"}, "change_ids": ["\u0000"]}]
    assert fields(await client.post("/api/v1/deployments", json=batch)) == {"[1].labels.team", "[1].change_ids[0]"}
    assert [item["id"] for item in data(await client.get("/api/v1/deployments"))["items"]] == ["d1"]
    response = await client.post("/api/v1/incidents/a%00b/resolve")
    assert fields(response) == {"path.id"}


async def test_a_literal_backslash_u0000_is_text_not_nul(client: httpx.AsyncClient) -> None:
    title = "see \\u0000 in the docs"  # JSON "\\u0000": a backslash and five characters
    incident = {"id": "i1", "source": "pd", "service": "checkout", "started_at": "2026-03-01T10:00:00Z"}
    stored = await client.post("/api/v1/incidents", json={**incident, "title": title})
    assert data(stored)["ingested"] == 1


async def test_nul_in_a_signed_webhook_delivery(client: httpx.AsyncClient) -> None:
    payload = {"event": "deployment", "deployment": {**DEPLOYMENT, "id": "w1", "environment": "prod\u0000"}}
    body = json.dumps(payload).encode()
    headers = {"X-Signature": sign(body, WEBHOOK_SECRET), "Content-Type": "application/json"}
    response = await client.post("/api/v1/webhooks/hooks", content=body, headers=headers)
    assert fields(response) == {"[0].environment"}
    assert [item["id"] for item in data(await client.get("/api/v1/deployments"))["items"]] == ["d1"]
