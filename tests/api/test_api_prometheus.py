from __future__ import annotations

from typing import Any

import httpx
from api_helpers import data, make_hub
from prometheus_client.parser import text_string_to_metric_families

from metrichub_core.demo import demo_events


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_http_counters_and_latency(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/health")
    await client.get("/api/v1/sources/nope/health")
    await client.get("/no/such/route")
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = samples(response.text)
    ok = ("metrichub_http_requests_total", (("method", "GET"), ("route", "/api/v1/health"), ("status", "200")))
    assert values[ok] == 1
    by_template = (("method", "GET"), ("route", "/api/v1/sources/{id}/health"), ("status", "404"))
    assert values[("metrichub_http_requests_total", by_template)] == 1
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert values[("metrichub_http_requests_total", unmatched)] == 1
    count = ("metrichub_http_request_duration_seconds_count", (("method", "GET"), ("route", "/api/v1/health")))
    assert values[count] == 1


async def test_dora_gauges_per_service_and_environment(make_app: Any, client_for: Any) -> None:
    hub = make_hub()
    await hub.ingest(list(demo_events(days=40, seed=3)))
    client = client_for(make_app(hub))
    values = samples((await client.get("/metrics")).text)
    checkout = (("environment", "production"), ("service", "checkout"))
    assert values[("metrichub_dora_deployments", checkout)] > 0
    assert 0 <= values[("metrichub_dora_change_failure_ratio", checkout)] <= 1
    assert values[("metrichub_dora_lead_time_median_seconds", checkout)] > 0
    assert ("metrichub_dora_deployments", (("environment", "staging"), ("service", "checkout"))) in values
    assert values[("metrichub_dora_window_seconds", ())] == 30 * 86_400
    levels = {labels for name, labels in values if name == "metrichub_dora_level"}
    assert (("environment", "production"), ("metric", "overall"), ("service", "checkout")) in levels


async def test_collector_counters_and_breaker_per_source(client: httpx.AsyncClient) -> None:
    data(await client.post("/api/v1/sources/hooks/collect?wait=true"))
    values = samples((await client.get("/metrics")).text)
    hooks = (("kind", "hooked"), ("source", "hooks"))
    assert values[("metrichub_collector_breaker_state", hooks)] == 0
    assert ("metrichub_collector_requests_total", hooks) in values
    assert ("metrichub_collector_retries_total", hooks) in values
    assert ("metrichub_collector_rate_limit_waits_total", hooks) in values
    assert values[("metrichub_collections_total", (("outcome", "succeeded"), ("source", "hooks")))] == 1


async def test_ingest_and_cache_counters(client: httpx.AsyncClient) -> None:
    change = {"id": "c", "source": "s", "service": "x", "committed_at": "2026-03-01T00:00:00Z"}
    await client.post("/api/v1/changes", json=[change, {**change, "id": "d"}])
    await client.get("/api/v1/metrics/dora?since=2026-03-01&until=2026-03-02")
    await client.get("/api/v1/metrics/dora?since=2026-03-01&until=2026-03-02")
    values = samples((await client.get("/metrics")).text)
    assert values[("metrichub_events_ingested_total", (("kind", "change"), ("via", "api")))] == 2
    assert values[("metrichub_dora_cache_lookups_total", (("result", "hit"),))] == 1
    assert values[("metrichub_dora_cache_lookups_total", (("result", "miss"),))] == 1
