from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from metrichub_core import Change, Deployment, Incident, MetricHub
from metrichub_core.config import Settings
from metrichub_core.demo import demo_events
from metrichub_core.storage.base import EventQuery, UnknownStorageScheme

T0 = datetime(2026, 3, 2, tzinfo=UTC)


async def test_ingest_is_idempotent_and_counts() -> None:
    async with MetricHub(storage="memory://") as hub:
        change = Change(id="c1", source="s", service="api", committed_at=T0)
        assert await hub.ingest([change, change]) == 2
        page = await hub.storage.list_events(EventQuery(kind="change"))
        assert page.items == [change]


async def test_ingest_refuses_non_events_and_writes_nothing(tmp_path: Path) -> None:
    async with MetricHub(storage=f"sqlite:///{tmp_path}/hub.db") as hub:
        good = Change(id="c1", source="s", service="api", committed_at=T0)
        with pytest.raises(TypeError, match=r"events\[1\]: expected Deployment, Change or Incident, got dict"):
            await hub.ingest([good, {"id": "c2"}])  # type: ignore[list-item]
        assert (await hub.storage.list_events(EventQuery(kind="change"))).items == []


def test_unknown_storage_scheme_lists_the_installed_ones() -> None:
    with pytest.raises(UnknownStorageScheme, match=r"no storage backend for 'mongodb' URLs \(installed: .*memory://"):
        MetricHub(storage="mongodb://localhost/x")


def test_invalid_sqlite_url() -> None:
    with pytest.raises(Exception, match=r"expected sqlite:///relative\.db"):
        MetricHub(storage="sqlite://host/x.db")


def test_demo_is_deterministic_and_realistic() -> None:
    now = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    first = list(demo_events(now=now))
    assert first == list(demo_events(now=now))
    assert first != list(demo_events(now=now, seed=8))
    deployments = [e for e in first if isinstance(e, Deployment)]
    incidents = [e for e in first if isinstance(e, Incident)]
    assert {d.service for d in deployments} == {"checkout", "search", "accounts", "reporting"}
    assert {d.environment for d in deployments} == {"production", "staging"}
    assert {d.status for d in deployments} == {"success", "failure"}
    assert any(i.resolved_at is None for i in incidents) and any(i.resolved_at for i in incidents)
    assert any(not i.deployment_related for i in incidents)
    # Elite and struggling teams differ by an order of magnitude in deployment count.
    production = [d for d in deployments if d.environment == "production"]
    per_service = {s: sum(d.service == s for d in production) for s in ("checkout", "reporting")}
    assert per_service["checkout"] > 10 * per_service["reporting"] > 0
    keys = [(e.kind, e.source, e.id) for e in first]
    assert len(keys) == len(set(keys))


async def test_scheduled_collects_each_source_on_its_schedule_without_the_api() -> None:
    settings = Settings(sources={"ticks": {"kind": "demo", "days": 30, "schedule_minutes": 0.002}})  # every 0.12 s
    async with MetricHub("memory://", settings=settings) as hub:
        assert hub.schedules() == {"ticks": 0.002}
        async with hub.scheduled() as runner:
            for _ in range(200):  # bounded: 10 s at most
                if runner.last.get("ticks"):
                    break
                await asyncio.sleep(0.05)
            outcome = runner.last["ticks"]
            assert outcome.ok and outcome.trigger == "schedule"
            assert outcome.result is not None and outcome.result.events > 0
        assert runner.running == {}  # leaving the block stopped the timers and waited for the run in flight
        assert await hub.last_success("ticks") is not None
        deployments = await hub.events(EventQuery(kind="deployment", source="ticks"))
        assert len(deployments) > 0
