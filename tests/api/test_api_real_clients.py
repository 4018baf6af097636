"""Checked by tools nobody here wrote: ``promtool check metrics`` on /metrics, openapi-spec-validator on /openapi.json.

Under ``CI`` a missing tool is a failure, not a skip (``.ci/run`` installs Debian's ``prometheus`` for promtool;
the dev extra installs openapi-spec-validator).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import API_TOKEN, WEBHOOK_SECRET, data, make_hub, sign
from prometheus_client.parser import text_string_to_metric_families
from real_server import serve

from metrichub_core.api import create_app
from metrichub_core.demo import demo_events

if os.environ.get("CI"):
    import openapi_spec_validator  # CI installs the dev extra: a missing validator must fail, not skip
else:
    openapi_spec_validator = pytest.importorskip("openapi_spec_validator")

PROMTOOL = shutil.which("promtool")
WEBHOOK = {"event": "deployment", "deployment": {"id": "wh-1", "service": "checkout", "status": "success",
           "started_at": "2026-03-10T10:00:00Z", "finished_at": "2026-03-10T10:05:00Z"}}  # fmt: skip


def promtool() -> str:
    if PROMTOOL is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set, so promtool must run, but it is not on PATH (Debian package: prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return PROMTOOL


def check_metrics(exposition: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=60
    )


async def _served_metrics(client: httpx.AsyncClient) -> str:
    """/metrics with every family filled: DORA for the demo data, HTTP, collector, webhook, ingest and cache."""
    data(await client.post("/api/v1/sources/hooks/collect?wait=true"))
    body = json.dumps(WEBHOOK).encode()
    await client.post("/api/v1/webhooks/hooks", content=body, headers={"X-Signature": sign(body, WEBHOOK_SECRET)})
    await client.post("/api/v1/changes", json=[])
    await client.get("/api/v1/metrics/dora")
    await client.get("/api/v1/metrics/dora")
    await client.get("/no/such/route")
    response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


@pytest.fixture
async def demo_client(client_for: Any) -> httpx.AsyncClient:
    hub = make_hub()
    await hub.ingest(list(demo_events(days=40, seed=3)))
    return client_for(create_app(hub, schedule=False))  # type: ignore[no-any-return]


async def test_promtool_accepts_the_exposition_of_the_demo_data(demo_client: httpx.AsyncClient) -> None:
    exposition = await _served_metrics(demo_client)
    families = {family.name for family in text_string_to_metric_families(exposition)}
    assert {"metrichub_dora_deployments", "metrichub_collector_requests", "metrichub_webhook_deliveries"} <= families
    result = check_metrics(exposition)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_promtool_is_not_a_rubber_stamp() -> None:
    # The name the issue reported: if this passed, the check above would prove nothing.
    result = check_metrics("# HELP metrichub_dora_window_days Window.\n# TYPE metrichub_dora_window_days gauge\n"
                           "metrichub_dora_window_days 30\n")  # fmt: skip
    assert result.returncode != 0 and 'use base unit "seconds" instead of "days"' in result.stdout + result.stderr


async def test_names_follow_the_conventions_promtool_does_not_check(demo_client: httpx.AsyncClient) -> None:
    exposition = await _served_metrics(demo_client)
    for family in text_string_to_metric_families(exposition):
        name, kind = family.name, family.type
        assert name.startswith("metrichub_"), name
        words = name.split("_")
        # Base units only: no days/hours/minutes/milliseconds/percent anywhere in a name.
        assert not {"days", "day", "hours", "minutes", "milliseconds", "percent"} & set(words), name
        if "(0-1)" in family.documentation:
            assert name.endswith("_ratio"), name
        if kind == "counter":  # the parser drops _total from the family name: the samples carry it
            assert all(sample.name in (f"{name}_total", f"{name}_created") for sample in family.samples), name
        if kind == "info":
            assert name.endswith("_info") or all(s.name.endswith("_info") for s in family.samples), name
    assert "metrichub_build_info{" in exposition
    assert "metrichub_dora_window_seconds 2.592e+06" in exposition


@pytest.mark.parametrize(
    "api",
    [{}, {"tokens": [API_TOKEN]}, {"tokens": [API_TOKEN], "read_tokens": ["read-only"], "auth": "all"}],
    ids=["open", "writes", "all"],
)
async def test_the_openapi_document_is_valid(client_for: Any, api: dict[str, Any]) -> None:
    client = client_for(create_app(make_hub(**api), schedule=False))
    response = await client.get("/openapi.json", headers={"Authorization": f"Bearer {API_TOKEN}"})
    document = response.json()
    assert document["openapi"].startswith("3.1")
    openapi_spec_validator.validate(document)  # raises on the first problem


def test_openapi_spec_validator_is_not_a_rubber_stamp() -> None:
    broken = {"openapi": "3.1.0", "info": {"title": "x", "version": "1"}, "paths": {"/x": {"get": {"responses": 1}}}}
    with pytest.raises(Exception, match="responses"):
        openapi_spec_validator.validate(broken)


@pytest.mark.slow
def test_a_real_server_passes_both_tools(tmp_path: Path) -> None:
    tool = promtool()
    with serve(tmp_path, '[sources.demo-src]\nkind = "demo"\ndays = 10\n', demo_days=40) as base_url:
        with urllib.request.urlopen(f"{base_url}/api/v1/metrics/dora", timeout=30) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"{base_url}/metrics", timeout=30) as response:
            exposition = response.read().decode()
        with urllib.request.urlopen(f"{base_url}/openapi.json", timeout=30) as response:
            document = json.load(response)
    assert 'metrichub_dora_deployments{environment="production",service="checkout"}' in exposition
    result = subprocess.run([tool, "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    openapi_spec_validator.validate(document)
