from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import NOW, assert_error, data, deployment, make_hub
from starlette.applications import Starlette

from metrichub_core.api import create_app
from metrichub_core.api.params import resolve_window


@pytest.fixture(params=["memory", "sqlite"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Starlette]:
    """Reports come from each built-in backend's DORA queries."""
    storage = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'api.db'}"
    hub = make_hub(storage=storage)
    yield create_app(hub)
    await hub.close()


@pytest.fixture
async def loaded(client: httpx.AsyncClient) -> httpx.AsyncClient:
    hub = client._transport.app.state.metrichub.hub  # type: ignore[attr-defined]
    await hub.ingest(
        [
            deployment(
                "a", finished_at=datetime(2026, 3, 3, 10, tzinfo=UTC), started_at=datetime(2026, 3, 3, 9, tzinfo=UTC)
            ),
            deployment(
                "b", finished_at=datetime(2026, 3, 10, 10, tzinfo=UTC), started_at=datetime(2026, 3, 10, 9, tzinfo=UTC)
            ),
            deployment(
                "c",
                service="search",
                labels={"team": "discovery"},
                finished_at=datetime(2026, 3, 11, tzinfo=UTC),
                started_at=datetime(2026, 3, 10, 23, tzinfo=UTC),
            ),
        ]
    )
    return client


async def test_report_for_a_window(loaded: httpx.AsyncClient) -> None:
    response = await loaded.get("/api/v1/metrics/dora", params={"since": "2026-03-02", "until": "2026-03-16"})
    report = data(response)
    assert report["window"] == {"since": "2026-03-02T00:00:00Z", "until": "2026-03-16T00:00:00Z"}
    assert report["filters"] == {"service": None, "environment": "production", "labels": {}}
    assert report["profile"] == "dora-2024"
    assert report["deployment_frequency"]["count"] == 3
    assert set(report) >= {"lead_time", "change_failure_rate", "failed_deployment_recovery_time", "time_to_restore"}
    assert response.headers["x-cache"] == "miss"


async def test_filters_profile_and_datetimes(loaded: httpx.AsyncClient) -> None:
    params: dict[str, Any] = {
        "since": "2026-03-02T00:00:00+01:00",
        "until": "2026-03-16T00:00:00Z",
        "service": "search",
        "label": "team=discovery",
        "profile": "dora-2021",
    }
    report = data(await loaded.get("/api/v1/metrics/dora", params=params))
    assert report["window"]["since"] == "2026-03-01T23:00:00Z"
    assert report["filters"] == {"service": "search", "environment": "production", "labels": {"team": "discovery"}}
    assert report["profile"] == "dora-2021"
    assert report["deployment_frequency"]["count"] == 1


async def test_unencoded_plus_in_an_offset_is_understood(loaded: httpx.AsyncClient) -> None:
    report = data(await loaded.get("/api/v1/metrics/dora?since=2026-03-02T00:00:00+01:00&until=2026-03-16"))
    assert report["window"]["since"] == "2026-03-01T23:00:00Z"


async def test_days_counts_back_from_until(loaded: httpx.AsyncClient) -> None:
    report = data(await loaded.get("/api/v1/metrics/dora", params={"until": "2026-03-16", "days": 7}))
    assert report["window"] == {"since": "2026-03-09T00:00:00Z", "until": "2026-03-16T00:00:00Z"}
    assert report["deployment_frequency"]["count"] == 2


def test_default_window_is_30_days_to_the_next_minute() -> None:
    window = resolve_window(None, None, None, now=datetime(2026, 3, 16, 12, 30, 15, tzinfo=UTC))
    assert window.until == datetime(2026, 3, 16, 12, 31, tzinfo=UTC)
    assert window.since == window.until - timedelta(days=30)


async def test_the_cache_is_per_window_filters_and_profile(loaded: httpx.AsyncClient) -> None:
    base = {"since": "2026-03-02", "until": "2026-03-16"}
    assert (await loaded.get("/api/v1/metrics/dora", params=base)).headers["x-cache"] == "miss"
    assert (await loaded.get("/api/v1/metrics/dora", params=base)).headers["x-cache"] == "hit"
    for change in ({"service": "search"}, {"profile": "dora-2023"}, {"until": "2026-03-15"}, {"label": "team=x"}):
        assert (await loaded.get("/api/v1/metrics/dora", params=base | change)).headers["x-cache"] == "miss"


async def test_trend(loaded: httpx.AsyncClient) -> None:
    params = {"since": "2026-03-02", "until": "2026-03-16", "bucket": "week"}
    trend = data(await loaded.get("/api/v1/metrics/dora/trend", params=params))
    assert trend["bucket"] == "week"
    assert [point["window"]["since"] for point in trend["points"]] == ["2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z"]
    assert [point["deployment_frequency"]["count"] for point in trend["points"]] == [1, 2]
    days = data(await loaded.get("/api/v1/metrics/dora/trend", params=params | {"bucket": "day"}))
    assert len(days["points"]) == 14


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=not-a-date", "query.since"),
        ("until=2026-03-16T10:00:00", "query.until"),
        ("since=2026-03-16&until=2026-03-02", "query.since"),
        ("since=2026-03-01&days=3", "query.since"),
        ("days=0", "query.days"),
        ("days=100000", "query.days"),
        ("since=0001-01-01&until=2026-01-01", "query.since"),
        ("until=0001-01-02", "query.days"),
        ("since=999999999d", "query.since"),
        ("profile=dora-1999", "query.profile"),
        ("environment=", "query.environment"),
        ("label=team", "query.label[0]"),
        ("bucket=year", "query.bucket"),
        ("colour=red", "query.colour"),
        ("service=a&service=b", "query.service"),
    ],
)
async def test_query_validation(client: httpx.AsyncClient, query: str, field: str) -> None:
    path = "/api/v1/metrics/dora/trend" if "bucket" in query else "/api/v1/metrics/dora"
    error = assert_error(await client.get(f"{path}?{query}"), 400, "validation_error")
    assert [detail["field"] for detail in error["details"]] == [field], error


async def test_trend_refuses_unknown_bucket_but_report_refuses_bucket_at_all(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/metrics/dora?bucket=week"), 400, "validation_error")


def test_now_fixture_is_aware() -> None:
    assert NOW.tzinfo is UTC


class _Clock:
    moment = datetime(2026, 3, 16, 12, 0, 30, tzinfo=UTC)

    @classmethod
    def now(cls, tz: Any = None) -> datetime:
        return cls.moment


async def test_a_new_minute_serves_last_minutes_report_while_computing(
    loaded: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from metrichub_core.api.routes import dora

    monkeypatch.setattr(dora, "datetime", _Clock)
    monkeypatch.setattr(_Clock, "moment", datetime(2026, 3, 16, 12, 0, 30, tzinfo=UTC))
    first = await loaded.get("/api/v1/metrics/dora?days=7")
    assert first.headers["x-cache"] == "miss" and data(first)["window"]["until"] == "2026-03-16T12:01:00Z"
    _Clock.moment = datetime(2026, 3, 16, 12, 1, 10, tzinfo=UTC)
    stale = await loaded.get("/api/v1/metrics/dora?days=7")
    assert stale.headers["x-cache"] == "stale" and data(stale)["window"]["until"] == "2026-03-16T12:01:00Z"
    await asyncio.sleep(0.05)
    fresh = await loaded.get("/api/v1/metrics/dora?days=7")
    assert fresh.headers["x-cache"] == "hit" and data(fresh)["window"]["until"] == "2026-03-16T12:02:00Z"
    # After an ingest, last minute's report is no longer good enough.
    await loaded.post("/api/v1/changes", json=[])
    hub = loaded._transport.app.state.metrichub  # type: ignore[attr-defined]
    hub.data_changed()
    _Clock.moment = datetime(2026, 3, 16, 12, 2, 10, tzinfo=UTC)
    after = await loaded.get("/api/v1/metrics/dora?days=7")
    assert after.headers["x-cache"] == "miss" and data(after)["window"]["until"] == "2026-03-16T12:03:00Z"


async def test_report_and_trend_carry_the_lead_time_breakdown(client: httpx.AsyncClient) -> None:
    # Ingested through the API. c1 committed Tue 3 March 08:00, merged 09:00; c2 committed 06:00,
    # merged 09:30 (both from git); d1 finishes 10:00 and ships both.
    # Commit to merge [3,600, 12,600]: median 8,100, p90 3,600 + 0.9 x 9,000 = 11,700.
    # Merge to deploy [3,600, 1,800] -> sorted [1,800, 3,600]: median 2,700, p90 1,800 + 0.9 x 1,800 = 3,420.
    changes = [
        {"id": "c1", "source": "git", "service": "api", "committed_at": "2026-03-03T08:00:00Z",
         "merged_at": "2026-03-03T09:00:00Z"},
        {"id": "c2", "source": "git", "service": "api", "committed_at": "2026-03-03T06:00:00Z",
         "merged_at": "2026-03-03T09:30:00Z"},
    ]  # fmt: skip
    assert data(await client.post("/api/v1/changes", json=changes))["ingested"] == 2
    shipped = {
        "id": "d1", "source": "ci", "service": "api", "status": "success", "started_at": "2026-03-03T09:55:00Z",
        "finished_at": "2026-03-03T10:00:00Z", "change_ids": ["c1", "c2"],
    }  # fmt: skip
    assert data(await client.post("/api/v1/deployments", json=shipped))["ingested"] == 1
    expected = {
        "commit_to_merge": {"median_seconds": 8100.0, "p90_seconds": 11700.0, "count": 2},
        "merge_to_deploy": {"median_seconds": 2700.0, "p90_seconds": 3420.0, "count": 2},
    }
    window = {"since": "2026-03-02", "until": "2026-03-16"}
    report = data(await client.get("/api/v1/metrics/dora", params=window))
    assert report["lead_time"]["breakdown"] == expected
    trend = data(await client.get("/api/v1/metrics/dora/trend", params={**window, "bucket": "week"}))
    assert [point["lead_time"]["breakdown"] for point in trend["points"]] == [expected, None]
