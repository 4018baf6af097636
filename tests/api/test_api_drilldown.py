"""Drill-down routes: the events behind a report, by hand on a small history and against /metrics/dora on the demo."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import assert_error, data, make_hub
from starlette.applications import Starlette

from metrichub_core import MetricHub
from metrichub_core.api import create_app
from metrichub_core.demo import demo_events
from metrichub_core.dora import DoraOptions, DoraScope, FactsRequest, Window
from metrichub_core.dora.drilldown import drilldown
from metrichub_core.dora.reference import facts_from_events
from metrichub_core.models import Change, Deployment, Incident

Client = Callable[[Starlette], httpx.AsyncClient]
DRILL = "/api/v1/metrics/dora"
WINDOW = {"since": "2026-03-02", "until": "2026-03-16", "service": "checkout"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def deployment(id: str, finished: str, changes: list[str], **extra: Any) -> Deployment:
    values = {"id": id, "source": "ci", "service": "checkout", "status": "success", "started_at": at(finished),
              "finished_at": at(finished), "change_ids": changes, **extra}  # fmt: skip
    return Deployment.model_validate(values)


def change(id: str, committed: str) -> Change:
    return Change(id=id, source="git", service="checkout", committed_at=at(committed))


def incident(id: str, started: str, resolved: str | None, **extra: Any) -> Incident:
    values = {"id": id, "source": "pd", "service": "checkout", "started_at": at(started),
              "resolved_at": at(resolved) if resolved else None, **extra}  # fmt: skip
    return Incident.model_validate(values)


HISTORY: list[Deployment | Change | Incident] = [
    deployment("d0", "2026-02-27T10:00", ["c0"]),  # before the window: ships c0
    deployment("d1", "2026-03-03T10:00", ["c1", "c0"]),  # c0 was shipped by d0 already
    deployment("d2", "2026-03-05T12:00", ["c2"], labels={"team": "payments"}),
    deployment("d3", "2026-03-06T09:00", ["c3"], status="failure"),  # listed, not counted
    deployment("d4", "2026-03-10T08:00", ["c3", "c4"]),  # ships c3 after d3 failed
    deployment("d5", "2026-03-04T10:00", ["c5"], environment="staging"),  # another environment
    change("c0", "2026-02-26T10:00"),
    change("c1", "2026-03-02T10:00"),
    change("c2", "2026-03-05T06:00"),
    change("c3", "2026-03-05T20:00"),
    change("c4", "2026-03-10T07:30"),
    incident("i1", "2026-03-03T11:00", "2026-03-03T12:30"),  # by time: d1 (last success before 11:00)
    incident("i2", "2026-03-11T09:00", "2026-03-11T09:45", caused_by="d0"),  # named: d0, before the window
    incident("i3", "2026-03-12T10:00", None, deployment_related=False),  # open, no deployment
    incident("i4", "2026-03-16T01:00", "2026-03-16T02:00"),  # after the window, by time: d4
]


@pytest.fixture
async def small(client_for: Client) -> httpx.AsyncClient:
    hub = make_hub()
    await hub.ingest(HISTORY)
    return client_for(create_app(hub, schedule=False))


async def test_deployments_of_the_window_by_hand(small: httpx.AsyncClient) -> None:
    page = data(await small.get(f"{DRILL}/deployments", params=WINDOW))
    assert page["window"] == {"since": "2026-03-02T00:00:00Z", "until": "2026-03-16T00:00:00Z"}
    # d0 is before the window and d5 in staging; newest first; d3 is listed but not counted (status failure).
    rows = {item["id"]: item for item in page["items"]}
    assert [item["id"] for item in page["items"]] == ["d4", "d3", "d2", "d1"] and page["total"] == 4
    assert [item["id"] for item in page["items"] if item["counted"]] == ["d4", "d2", "d1"]
    # d4 ships c3 (committed 5 Mar 20:00, deployed 10 Mar 08:00: 4 d 12 h = 388,800 s) and c4 (07:30 -> 08:00:
    # 1,800 s): median (388,800 + 1,800) / 2 = 195,300 s. d1 lists c0 too, but d0 shipped it first.
    assert (rows["d4"]["changes"], rows["d4"]["changes_first_shipped"], rows["d4"]["lead_time_median_seconds"]) == (
        2, 2, 195_300.0)  # fmt: skip
    assert (rows["d1"]["changes"], rows["d1"]["changes_first_shipped"], rows["d1"]["lead_time_median_seconds"]) == (
        2, 1, 86_400.0)  # fmt: skip
    assert (rows["d3"]["changes_first_shipped"], rows["d3"]["lead_time_median_seconds"]) == (0, None)
    # i1 (by time) is d1's; i4 starts after the window, but d4 of the window caused it; i2 names d0.
    assert {key: [i["id"] for i in row["incidents"]] for key, row in rows.items()} == {
        "d4": ["i4"], "d3": [], "d2": [], "d1": ["i1"]}  # fmt: skip
    assert {key for key, row in rows.items() if row["failed"]} == {"d4", "d1"}
    assert not any(row["rework"] for row in rows.values())  # no fix deployed while an incident was open


async def test_failures_changes_and_incidents_by_hand(small: httpx.AsyncClient) -> None:
    failures = data(await small.get(f"{DRILL}/failures", params=WINDOW))
    assert [item["id"] for item in failures["items"]] == ["d4", "d1"]
    # i4: 01:00 -> 02:00 = 3,600 s, attributed by time.
    (i4,) = failures["items"][0]["incidents"]
    assert (i4["attribution"], i4["recovery_seconds"], i4["restore_seconds"]) == ("time", 3600.0, 3600.0)

    changes = data(await small.get(f"{DRILL}/changes", params=WINDOW))
    # Slowest first: c3 388,800 s; c1 10:00 -> next day 10:00 = 86,400 s; c2 06:00 -> 12:00 = 21,600 s; c4 1,800 s.
    assert [(c["id"], c["deployment_id"], c["lead_time_seconds"]) for c in changes["items"]] == [
        ("c3", "d4", 388_800.0), ("c1", "d1", 86_400.0), ("c2", "d2", 21_600.0), ("c4", "d4", 1_800.0)]  # fmt: skip

    incidents = data(await small.get(f"{DRILL}/incidents", params=WINDOW))
    # Started in the window, newest first (i4 starts after it). i1: 11:00 -> 12:30 = 5,400 s; i2: 45 min = 2,700 s.
    found = [(i["id"], i["attribution"], i["deployment_id"], i["recovery_seconds"], i["restore_seconds"])
             for i in incidents["items"]]  # fmt: skip
    assert found == [
        ("i3", None, None, None, None),
        ("i2", "caused_by", "d0", 2700.0, 2700.0),
        ("i1", "time", "d1", 5400.0, 5400.0),
    ]

    report = data(await small.get(DRILL, params=WINDOW))
    # The report says the same: 3 deployments, 2 failed, 4 lead times, recovery over i1 and i2, restore 2 + 1 open.
    assert report["deployment_frequency"]["count"] == 3
    assert (report["change_failure_rate"]["failed"], report["change_failure_rate"]["total"]) == (2, 3)
    assert report["lead_time"]["count"] == 4
    assert report["failed_deployment_recovery_time"]["count"] == 2
    assert (report["time_to_restore"]["count"], report["time_to_restore"]["open"]) == (2, 1)


async def test_a_label_filter_narrows_every_list(small: httpx.AsyncClient) -> None:
    params = {**WINDOW, "label": "team=payments"}
    assert [d["id"] for d in data(await small.get(f"{DRILL}/deployments", params=params))["items"]] == ["d2"]
    assert data(await small.get(f"{DRILL}/failures", params=params))["items"] == []
    assert [c["id"] for c in data(await small.get(f"{DRILL}/changes", params=params))["items"]] == ["c2"]
    # Under a label filter an incident counts only through a labelled deployment: none here.
    assert data(await small.get(f"{DRILL}/incidents", params=params))["items"] == []


async def test_pages_keep_the_first_pages_window(small: httpx.AsyncClient) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {**WINDOW, "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = data(await small.get(f"{DRILL}/changes", params=params))
        assert page["total"] == 4 and page["window"]["since"] == "2026-03-02T00:00:00Z"
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["c3", "c1", "c2", "c4"]
    error = assert_error(
        await small.get(f"{DRILL}/changes", params={"cursor": "bm90LWEtY3Vyc29y"}), 400, "validation_error"
    )
    assert error["details"][0]["field"] == "query.cursor"
    error = assert_error(
        await small.get(f"{DRILL}/deployments", params={"profile": "dora-1999"}), 400, "validation_error"
    )
    assert error["details"][0]["field"] == "query.profile"


async def test_services_side_by_side_are_the_reports_of_each(small: httpx.AsyncClient) -> None:
    page = data(await small.get(f"{DRILL}/services", params={"since": "2026-03-02", "until": "2026-03-16"}))
    assert [(r["filters"]["service"], r["filters"]["environment"]) for r in page["items"]] == [
        ("checkout", "production"), ("checkout", "staging")]  # fmt: skip
    for row in page["items"]:
        params = {
            "since": "2026-03-02",
            "until": "2026-03-16",
            **{k: row["filters"][k] for k in ("service", "environment")},
        }
        assert row == data(await small.get(DRILL, params=params))


async def test_profiles_list_the_published_bounds(small: httpx.AsyncClient) -> None:
    profiles = data(await small.get(f"{DRILL}/profiles"))
    newest = profiles[0]
    assert newest["name"] == "dora-2024" and newest["default"] and not any(p["default"] for p in profiles[1:])
    # dora-2024: lead time elite under one day (86,400 s, strict), high up to one week (604,800 s).
    assert newest["lead_time_seconds"][:2] == [
        {"level": "elite", "value": 86_400.0, "strict": True},
        {"level": "high", "value": 604_800.0, "strict": False},
    ]
    assert [b["value"] for b in newest["change_failure_rate"]] == [0.05, 0.20, 0.10]


PARAMETERS = [
    {"days": "30"},
    {"days": "7", "service": "checkout"},
    {"days": "90", "environment": "staging"},
    {"days": "180", "label": "team=payments"},
    {"days": "30", "service": "search", "profile": "dora-2021"},
    {"days": "14", "service": "reporting"},
]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_lists_agree_with_the_report_on_the_demo(backend: str, tmp_path: Path, client_for: Client) -> None:
    hub: MetricHub = make_hub(storage="memory://" if backend == "memory" else f"sqlite:///{tmp_path / 'd.db'}")
    await hub.ingest(list(demo_events(days=180, seed=11)))
    client = client_for(create_app(hub, schedule=False))
    for params in PARAMETERS:
        report = data(await client.get(DRILL, params=params))
        window = {"since": report["window"]["since"], "until": report["window"]["until"]}
        fixed = {**{k: v for k, v in params.items() if k != "days"}, **window, "limit": "1000"}
        deployments = data(await client.get(f"{DRILL}/deployments", params=fixed))["items"]
        failures = data(await client.get(f"{DRILL}/failures", params=fixed))["items"]
        changes = data(await client.get(f"{DRILL}/changes", params=fixed))["items"]
        incidents = data(await client.get(f"{DRILL}/incidents", params=fixed))["items"]
        recovered = [i for i in incidents if i["recovery_seconds"] is not None]
        assert {
            "deployments": sum(d["counted"] for d in deployments),
            "failed": len(failures),
            "lead times": len(changes),
            "recovery": len(recovered),
            "restore": sum(i["restore_seconds"] is not None for i in incidents),
            "restore open": sum(i["resolved_at"] is None for i in incidents),
            "rework": sum(d["rework"] for d in deployments),
        } == {
            "deployments": report["deployment_frequency"]["count"],
            "failed": report["change_failure_rate"]["failed"],
            "lead times": report["lead_time"]["count"],
            "recovery": report["failed_deployment_recovery_time"]["count"],
            "restore": report["time_to_restore"]["count"],
            "restore open": report["time_to_restore"]["open"],
            "rework": report["rework_rate"]["rework"],
        }, params
        assert {f["id"] for f in failures} <= {d["id"] for d in deployments if d["counted"]}
        lead = sorted(c["lead_time_seconds"] for c in changes)
        if lead and report["lead_time"]["count"] <= 10_000:  # exact statistics: the mean of the list is the report's
            assert round(sum(lead) / len(lead), 3) == pytest.approx(report["lead_time"]["mean_seconds"], abs=0.01)


def random_history(rng: random.Random) -> list[Deployment | Change | Incident]:
    """A small history of two services and two environments with every awkward case the rules name:
    failed runs, re-listed changes, mirrors, negative spans, caused_by to other services or environments,
    open and negative incidents, labels."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    events: list[Deployment | Change | Incident] = []
    changes = [f"c{i}" for i in range(12)]
    for number in range(rng.randint(0, 30)):
        finished = start + timedelta(hours=rng.randint(0, 24 * 12))
        events.append(
            Deployment(
                id=f"d{number}", source=rng.choice(["ci", "cd"]), service=rng.choice(["a", "b"]),
                environment=rng.choice(["production", "production", "staging"]),
                status=rng.choice(["success", "success", "success", "failure", "cancelled"]),
                started_at=finished - timedelta(minutes=5), finished_at=finished,
                change_ids=rng.sample(changes, rng.randint(0, 3)),
                labels=rng.choice([{}, {"team": "x"}, {"team": "y"}, {"team": "x", "rework": "true"}]),
            )
        )  # fmt: skip
    for change_id in changes:
        for source in rng.sample(["git", "mirror"], rng.randint(0, 2)):
            committed = start + timedelta(hours=rng.randint(-48, 24 * 20))
            events.append(Change(id=change_id, source=source, service=rng.choice(["a", "b"]), committed_at=committed))
    for number in range(rng.randint(0, 14)):
        started = start + timedelta(hours=rng.randint(0, 24 * 13))
        resolved = rng.choice([None, started + timedelta(minutes=rng.randint(-30, 3000))])
        events.append(
            Incident(
                id=f"i{number}", source="pd", service=rng.choice(["a", "b"]),
                environment=rng.choice(["production", "production", "staging"]), started_at=started,
                resolved_at=resolved, caused_by=rng.choice([None, None, f"d{rng.randint(0, 30)}"]),
                deployment_related=rng.random() > 0.15,
            )
        )  # fmt: skip
    return events


def test_drilldown_lists_are_the_reference_facts_on_random_histories() -> None:
    """The drill-down against the reference's own facts, option by option: every list is the facts' figures."""
    rng = random.Random(15)
    for _ in range(300):
        events = random_history(rng)
        deployments = [e for e in events if isinstance(e, Deployment)]
        changes = [e for e in events if isinstance(e, Change)]
        incidents = [e for e in events if isinstance(e, Incident)]
        since = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 8))
        window = Window(since, since + timedelta(days=rng.randint(1, 14)))
        scope = DoraScope(
            service=rng.choice([None, "a", "b"]),
            environment=rng.choice(["production", "staging"]),
            labels=rng.choice([{}, {"team": "x"}]),
        )
        options = DoraOptions(
            attribution_window=rng.choice([None, timedelta(hours=12), timedelta(days=3)]),
            failed_deployments_count=rng.random() < 0.3,
            recovery_clock=rng.choice(["incident", "deployment"]),
        )
        (facts,) = facts_from_events(deployments, changes, incidents, FactsRequest(scope, (window,), options))
        drill = drilldown(
            deployments, changes, incidents, since=window.since, until=window.until, scope=scope, options=options
        )
        case = (scope, options, window)
        assert sum(d.counted for d in drill.deployments) == facts.deployments, case
        assert sum(d.status == "failure" for d in drill.deployments) == facts.failure_status, case
        assert len(drill.failures) == facts.failed, case
        assert sum(d.rework for d in drill.deployments) == facts.rework, case
        assert tuple(sorted(c.lead_time_seconds for c in drill.changes)) == facts.lead_times.values, case
        recovery = sorted(i.recovery_seconds for i in drill.incidents if i.recovery_seconds is not None)
        assert tuple(recovery) == facts.recovery.values, case
        restore = sorted(i.restore_seconds for i in drill.incidents if i.restore_seconds is not None)
        assert tuple(restore) == facts.restore.values, case
        assert sum(i.resolved_at is None for i in drill.incidents) == facts.restore_open, case
        assert (
            sum(i.resolved_at is None and i.deployment_id is not None for i in drill.incidents) == facts.recovery_open
        )
