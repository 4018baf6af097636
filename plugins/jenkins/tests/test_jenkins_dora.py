"""Through ``MetricHub``: DORA figures equal a hand computation after a full sync, an incremental run
and ``collect --full``; with incidents from another source, CFR and recovery time by hand."""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

import pytest
from jenkins_fake import T0, FakeCommit, FakeJenkins, History, check_deployments, table

from metrichub_core import Incident, MetricHub
from metrichub_core.config import Settings
from metrichub_core.storage.base import EventQuery

SERVICES = {"deploy-api": "api"}
SINCE, UNTIL = T0 - timedelta(days=1), T0 + timedelta(days=120)


def generate(history: History, rounds: int) -> None:
    """``deploy-api`` promotes staging to production through ENVIRONMENT; ``platform/shop``'s main deploys."""
    rng = history.rng
    for _ in range(rounds):
        history.build("deploy-api", "SUCCESS" if rng.random() < 0.9 else "FAILURE", environment="staging",
                      commits=rng.randint(1, 3))  # fmt: skip
        result = rng.choice(["SUCCESS"] * 5 + ["FAILURE", "UNSTABLE", "ABORTED", "NOT_BUILT"])
        history.build("deploy-api", result, environment=rng.choice(["production", "prod"]))
        if rng.random() < 0.2:
            history.build("deploy-api", "SUCCESS", commits=1)  # no parameter: production
        history.build("platform/shop/main", rng.choice(["SUCCESS"] * 4 + ["FAILURE"]), commits=rng.randint(0, 2))
        history.build("platform/shop/PR-7", "SUCCESS", commits=1)  # not a collected branch


def expected(history: History, jenkins: FakeJenkins) -> dict[str, dict[str, Any]]:
    jobs = {"deploy-api": "api", **{name: "shop" for name in jenkins.jobs if name.startswith("platform/shop/ma")}}
    return history.expected(jobs)


def hand_dora(want: dict[str, dict[str, Any]], committed: dict[str, Any], service: str | None) -> dict[str, Any]:
    """Production successes and the lead time of each commit they shipped, straight from the expectations."""
    shipped = [
        e for e in want.values()
        if e["environment"] == "production" and e["status"] == "success" and service in (None, e["service"])
    ]  # fmt: skip
    leads = [(e["finished_at"] - committed[sha]).total_seconds() for e in shipped for sha in e["change_ids"]]
    return {
        "count": len(shipped),
        "leads": len(leads),
        "median": statistics.median(leads),
        "mean": statistics.mean(leads),
    }


async def stored(hub: MetricHub) -> list[Any]:
    events: list[Any] = []
    for kind in ("deployment", "change"):
        cursor = None
        while True:
            page = await hub.storage.list_events(EventQuery(kind=kind, source="ci", limit=500, cursor=cursor))
            events += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
    return events


async def check(hub: MetricHub, history: History, jenkins: FakeJenkins) -> None:
    want = expected(history, jenkins)
    events = await stored(hub)
    check_deployments(events, want)
    changes = {event.id: event.committed_at for event in events if event.kind == "change"}
    for service in (None, "api", "shop"):
        hand = hand_dora(want, history.committed, service)
        report = await hub.dora(service=service, since=SINCE, until=UNTIL)
        assert report.deployment_frequency.count == hand["count"], service
        assert report.lead_time.count == hand["leads"], service
        assert report.lead_time.median_seconds == pytest.approx(hand["median"], abs=0.01), service
        assert report.lead_time.mean_seconds == pytest.approx(hand["mean"], abs=0.01), service
    shipped = {sha for e in want.values() if e["status"] == "success" for sha in e["change_ids"]}
    assert {sha: changes[sha] for sha in shipped} == {sha: history.committed[sha] for sha in shipped}


async def test_full_sync_incremental_run_and_full_again(jenkins: FakeJenkins) -> None:
    jenkins.job("deploy-api")
    jenkins.folder("platform")
    jenkins.folder("platform/shop", multibranch=True)
    jenkins.job("platform/shop/main", pipeline=True)
    jenkins.job("platform/shop/PR-7", pipeline=True)
    history = History(jenkins, seed=11)
    generate(history, 40)
    running = history.build("deploy-api", None, environment="production", building=True)
    source = table(jenkins, jobs=["deploy-api", "platform/shop"], services=SERVICES)
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources={"ci": source}))
    async with hub:
        [result] = await hub.collect()
        assert result.ok, result.error
        builds = sum(len(job.builds) for job in jenkins.jobs.values() if "PR-" not in job.full_name)
        print(f"full sync: {len(jenkins.log)} requests for {builds} builds in 2 jobs")
        pages = -(-len(jenkins.jobs["deploy-api"].builds) // 100)  # ranges of 100, newest first
        assert len(jenkins.log) == pages + 1 + 1  # deploy-api's pages; the project's listing; main: one page
        await check(hub, history, jenkins)

        jenkins.clear()
        [result] = await hub.collect()
        assert result.ok, result.error
        print(f"re-run with nothing new: {len(jenkins.log)} requests (2 jobs and the multibranch listing)")
        assert len(jenkins.log) == 3

        jenkins.clear()
        history.finish(running, "SUCCESS")
        generate(history, 5)
        jenkins.job("platform/shop/master", pipeline=True)  # a new branch, found without a config change
        for _ in range(3):
            history.build("platform/shop/master", "SUCCESS", commits=1)
        [result] = await hub.collect()
        assert result.ok, result.error
        print(f"incremental run: {len(jenkins.log)} requests")
        await check(hub, history, jenkins)
        assert any(e.id == f"deploy-api#{running.number}" and e.status == "success" for e in await stored(hub))

        jenkins.clear()
        [result] = await hub.collect(full=True)
        assert result.ok, result.error
        await check(hub, history, jenkins)


async def test_incidents_from_another_source_give_cfr_and_recovery(jenkins: FakeJenkins) -> None:
    job = jenkins.job("deploy-api")
    minutes = timedelta(minutes=10)
    for hours, outcome in ((0, "SUCCESS"), (2, "FAILURE"), (4, "SUCCESS"), (8, "SUCCESS"), (24, "SUCCESS")):
        job.add(outcome, T0 + timedelta(hours=hours), duration=minutes, sha=f"{hours:040x}")
    hub = MetricHub(
        "memory://", settings=Settings(storage="memory://", sources={"ci": table(jenkins, jobs=["deploy-api"])})
    )
    async with hub:
        [result] = await hub.collect()
        assert result.ok, result.error

        def incident(name: str, start: float, end: float | None, **fields: Any) -> Incident:
            resolved = None if end is None else T0 + timedelta(hours=end)
            return Incident(id=name, source="pager", service="deploy-api", started_at=T0 + timedelta(hours=start),
                            resolved_at=resolved, **fields)  # fmt: skip

        await hub.ingest([
            incident("A", 5, 6),  # no caused_by: the last success finished before 5 h is #3 (4 h 10)
            incident("B", 9, 9.5, caused_by="deploy-api#1"),  # names #1 (a production success): #1
            incident("C", 30, 32, deployment_related=False),  # left out of CFR, counts for time to restore
            incident("D", 26, None),  # still open; by time: #5 (24 h 10)
        ])  # fmt: skip
        report = await hub.dora(service="deploy-api", since=T0, until=T0 + timedelta(days=7))
    # Production successes: #1 (0 h), #3 (4 h), #4 (8 h), #5 (24 h) = 4; failed: #3 (A), #1 (B), #5 (D) = 3.
    assert report.deployment_frequency.count == 4
    assert (report.change_failure_rate.failed, report.change_failure_rate.total) == (3, 4)
    assert report.change_failure_rate.value == 0.75
    # Recovery of attributed, resolved incidents: A 1 h = 3600 s, B 30 min = 1800 s; D is still open.
    recovery = report.failed_deployment_recovery_time
    assert (recovery.count, recovery.open) == (2, 1)
    assert recovery.median_seconds == 2700.0 and recovery.mean_seconds == 2700.0  # (3600 + 1800) / 2
    # Time to restore: every resolved incident, A 3600, B 1800, C 7200 s: median 3600; D open.
    restore = report.time_to_restore
    assert (restore.count, restore.open, restore.median_seconds) == (3, 1, 3600.0)


async def test_lead_time_of_a_staging_to_production_promotion_by_hand(jenkins: FakeJenkins) -> None:
    job = jenkins.job("deploy-api")

    def at(hours: float) -> Any:
        return T0 + timedelta(hours=hours)

    c1, c2, c3, c4 = (FakeCommit(f"{n:040x}", at(hours)) for n, hours in ((1, 0), (2, 1), (3, 3.5), (4, 6)))
    ten = timedelta(minutes=10)
    job.add("SUCCESS", at(2), duration=ten, environment="staging", commits=[c1, c2], sha=c2.sha)  # #1
    job.add("FAILURE", at(3), duration=ten, environment="production", sha=c2.sha)  # #2
    job.add("SUCCESS", at(4), duration=ten, environment="staging", commits=[c3], sha=c3.sha)  # #3
    job.add("SUCCESS", at(5), duration=ten, environment="production", sha=c3.sha)  # #4 promotes c1, c2, c3
    job.add("SUCCESS", at(7), duration=ten, commits=[c4], sha=c4.sha)  # #5, no parameter: production, ships c4
    settings = Settings(storage="memory://", sources={"ci": table(jenkins, jobs=["deploy-api"])})
    async with MetricHub("memory://", settings=settings) as hub:
        [result] = await hub.collect()
        assert result.ok, result.error
        production = await hub.dora(service="deploy-api", since=T0, until=at(24))
        staging = await hub.dora(service="deploy-api", environment="staging", since=T0, until=at(24))
    # Production: #4 finished at 5 h 10 ships c1 (5 h 10 = 18,600 s), c2 (4 h 10 = 15,000 s),
    # c3 (1 h 40 = 6,000 s); #5 finished at 7 h 10 ships c4 (1 h 10 = 4,200 s).
    # Sorted 4,200 6,000 15,000 18,600: median (6,000 + 15,000) / 2 = 10,500; mean 43,800 / 4 = 10,950.
    assert production.deployment_frequency.count == 2
    assert (production.lead_time.count, production.lead_time.median_seconds) == (4, 10_500.0)
    assert production.lead_time.mean_seconds == 10_950.0
    # Staging: #1 (2 h 10) ships c1 (7,800 s) and c2 (4,200 s); #3 (4 h 10) ships c3 (2,400 s): median 4,200.
    assert (staging.deployment_frequency.count, staging.lead_time.count) == (2, 3)
    assert staging.lead_time.median_seconds == 4_200.0


async def test_server_errors_are_retried_by_the_host_and_a_failed_run_saves_nothing(jenkins: FakeJenkins) -> None:
    jenkins.job("deploy-api")
    history = History(jenkins, seed=3)
    for _ in range(250):
        history.build("deploy-api", history.rng.choice(["SUCCESS", "SUCCESS", "FAILURE"]), commits=1)
    source = table(jenkins, jobs=["deploy-api"])
    source["policy"] = {**source["policy"], "retries": 2, "breaker_fail_max": 10}
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources={"ci": source}))
    async with hub:
        jenkins.fail_next = [500] * 3  # more than the retries: the run fails, no cursor is saved
        [result] = await hub.collect()
        assert not result.ok and "500" in (result.error or "")
        assert await hub.storage.get_state("ci") is None
        jenkins.clear()
        jenkins.fail_next = [503, 502]  # two transient faults on the first page: retried by the host
        [result] = await hub.collect()
        assert result.ok, result.error
        ranges = [request.query["tree"].rsplit("{", 1)[1] for request in jenkins.log]
        assert ranges == ["0,100}"] * 3 + ["100,200}", "200,300}"]  # the first range asked 3 times
        check_deployments(await stored(hub), history.expected({"deploy-api": "deploy-api"}))
