"""Collecting a generated GitLab history from the fake server, directly and through ``MetricHub``."""

from __future__ import annotations

import itertools
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from gitlab_fake import FakeGitLab, History, iso
from metrichub_plugin_gitlab import GitLabConfig, GitLabSource

from metrichub_core import Change, Deployment, Incident, MetricHub, SourceContext
from metrichub_core.config import Settings
from metrichub_core.models import EventKind
from metrichub_core.resilience import HttpCache, Policy, SourceResilience
from metrichub_core.storage.base import EventQuery

SHOP = "acme/platform/shop"  # a project in a nested group
WEB = "acme/web"
ROUNDS = {SHOP: 70, WEB: 30}
KINDS: tuple[EventKind, ...] = ("deployment", "change", "incident")
FAST = {"rate_limit_per_second": 1000, "backoff_initial_seconds": 0.01, "max_concurrency": 1}


def config(gitlab: FakeGitLab, **overrides: Any) -> GitLabConfig:
    values: dict[str, Any] = {
        "kind": "gitlab",
        "base_url": gitlab.base_url,
        "token": gitlab.token,
        "projects": list(ROUNDS),
        "services": {WEB: "storefront"},
        "incident_label": "outage",
    }
    projects = overrides.get("projects", values["projects"])
    values["services"] = {path: name for path, name in values["services"].items() if path in projects}
    return GitLabConfig.model_validate({**values, **overrides})


async def collect_direct(
    gitlab: FakeGitLab,
    cfg: GitLabConfig,
    state: dict[str, Any],
    since: datetime | None = None,
    *,
    cache: HttpCache | None = None,
    policy: Policy | None = None,
    sent: list[str] | None = None,
) -> list[Any]:
    """Run the source without a hub, over the host's policy-wrapped client (``cache``: its ETag cache).

    ``sent`` collects the raw path of every request as it left the client (still percent-encoded).
    """
    client = SourceResilience("gl", policy or Policy(**FAST)).client(cache=cache)
    if sent is not None:

        async def record(request: httpx.Request) -> None:
            sent.append(request.url.raw_path.decode("ascii").split("?", 1)[0])

        client.event_hooks = {**client.event_hooks, "request": [*client.event_hooks["request"], record]}
    async with client as http:
        ctx = SourceContext(http=http, logger=logging.getLogger("test.gitlab"), state=state)
        source = GitLabSource("gl", cfg, ctx)
        return [event async for event in source.collect(since)]


def build(history: History) -> tuple[History, dict[str, Any]]:
    history.generate(ROUNDS)
    history.change(SHOP)
    running = history.deploy(SHOP, "production", "running")  # still running at the first collection
    history.noise(SHOP)
    return history, running


def check_events(events: list[Any], history: History) -> None:
    truth = history.truth
    deployments = {event.id: event for event in events if isinstance(event, Deployment)}
    assert set(deployments) == set(truth.deployments)  # skipped deployments are not stored
    for deployment_id, expected in truth.deployments.items():
        got = deployments[deployment_id]
        assert (got.environment, got.status) == (expected["environment"], expected["status"]), deployment_id
        assert (got.started_at, got.finished_at) == (expected["started_at"], expected["finished_at"]), deployment_id
        assert got.commit_sha == expected["sha"]
        assert got.change_ids == expected["change_ids"], deployment_id
        assert got.labels["project"] == expected["project"]
        assert got.labels["gitlab_environment"] == expected["gitlab_environment"]
        assert got.service == history.service(expected["project"])
    changes = {event.id: event for event in events if isinstance(event, Change)}
    for sha, expected in truth.changes.items():
        assert (changes[sha].committed_at, changes[sha].merged_at) == (expected["committed_at"], expected["merged_at"])
    incidents = {event.id: event for event in events if isinstance(event, Incident)}
    assert set(incidents) == set(truth.incidents)  # the plain bug is skipped
    for incident_id, expected in truth.incidents.items():
        incident = incidents[incident_id]
        assert (incident.started_at, incident.resolved_at, incident.caused_by) == (
            expected["started_at"],
            expected["resolved_at"],
            expected["caused_by"],
        ), incident_id
        assert (incident.service, incident.severity) == (expected["service"], expected["severity"]), incident_id


def hand_dora(history: History, service: str | None = None) -> dict[str, Any]:
    """The DORA figures from the generator's own records, computed by hand.

    Deployment frequency = production successes; lead time per change = the earliest
    ``finished_at`` among the production successes that list it minus its author date; CFR =
    distinct deployments the incidents name (or follow); recovery = resolved - started.
    """
    truth = history.truth

    def wanted(expected: dict[str, Any]) -> bool:
        return expected["environment"] == "production" and (
            service is None or history.service(expected["project"]) == service
        )

    successes = {i: e for i, e in truth.deployments.items() if wanted(e) and e["status"] == "success"}
    first_shipped: dict[str, datetime] = {}
    for expected in successes.values():
        for sha in expected["change_ids"]:
            first_shipped[sha] = min(first_shipped.get(sha, expected["finished_at"]), expected["finished_at"])
    lead_times = sorted(
        (when - truth.changes[sha]["committed_at"]).total_seconds() for sha, when in first_shipped.items()
    )
    incidents = [i for i in truth.incidents.values() if service is None or i["service"] == service]
    caused = {incident["attributed_to"] for incident in incidents if incident["attributed_to"] in successes}
    recovery = sorted((i["resolved_at"] - i["started_at"]).total_seconds() for i in incidents if i["resolved_at"])
    return {
        "deployments": len(successes),
        "cfr_total": len(successes),  # the CFR denominator: the same successful deployments
        "lead_median": _median(lead_times),
        "lead_count": len(lead_times),
        "failed": len(caused),
        "recovery_median": _median(recovery),
        "recovery_count": len(recovery),
        "open": sum(1 for i in incidents if i["resolved_at"] is None),
    }


def _median(values: list[float]) -> float:
    """The middle value, or the mean of the two middle values (the interpolated median at 50%)."""
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


async def check_dora(hub: MetricHub, history: History) -> None:
    since = min(expected["started_at"] for expected in history.truth.deployments.values()) - timedelta(days=7)
    until = since + timedelta(days=120)
    for service in (None, "shop", "storefront"):
        report = await hub.dora(since=since, until=until, service=service)
        recovery = report.failed_deployment_recovery_time
        got = {
            "deployments": report.deployment_frequency.count,
            "cfr_total": report.change_failure_rate.total,
            "lead_median": report.lead_time.median_seconds,
            "lead_count": report.lead_time.count,
            "failed": report.change_failure_rate.failed,
            "recovery_median": recovery.median_seconds,
            "recovery_count": recovery.count,
            "open": recovery.open,
        }
        assert got == pytest.approx(hand_dora(history, service), abs=0.5), service  # counts exact (integers)


async def stored_events(hub: MetricHub, source: str = "gl") -> list[Any]:
    """Everything the hub stored for ``source`` (one page per kind is plenty here)."""
    pages = [await hub.storage.list_events(EventQuery(kind=kind, source=source, limit=1000)) for kind in KINDS]
    assert all(page.next_cursor is None for page in pages)
    return [event for page in pages for event in page.items]


async def test_collect_matches_the_hand_computed_history(gitlab: FakeGitLab, history_factory: Any) -> None:
    history, _ = build(history_factory())
    gitlab.max_per_page = 7  # small pages: every list is paged by Link / X-Next-Page
    sent: list[str] = []
    events = await collect_direct(gitlab, config(gitlab), {}, sent=sent)
    check_events(events, history)
    # Nested-group paths are sent URL-encoded, once, to learn the numeric id used from then on.
    assert [path for path in sent if "acme%2F" in path] == [
        "/api/v4/projects/acme%2Fplatform%2Fshop",
        "/api/v4/projects/acme%2Fweb",
    ]
    assert all(
        path.startswith(("/api/v4/projects/100/", "/api/v4/projects/101/")) for path in sent if "%2F" not in path
    )
    assert any("page=3" in path for path, _ in gitlab.log if path.startswith("/api/v4/projects/100/deployments?"))
    assert any("page=2" in path for path, _ in gitlab.log if "/issues?" in path)
    # The first successful deployment of each project and environment ships nothing.
    deployments = sorted(
        (e for e in events if isinstance(e, Deployment)), key=lambda e: (e.labels["project"], e.started_at)
    )
    firsts: dict[tuple[str, str], Deployment] = {}
    for deployment in deployments:
        if deployment.status == "success":
            firsts.setdefault((deployment.labels["project"], deployment.labels["gitlab_environment"]), deployment)
    assert all(first.change_ids == [] for first in firsts.values()) and len(firsts) >= 6
    # Failed and canceled deployments ship nothing; their commits ship with the next success.
    ordered = sorted(deployments, key=lambda e: (e.labels["project"], e.labels["gitlab_environment"], e.started_at))
    carried = 0
    for failed, after in itertools.pairwise(ordered):
        same = (failed.labels["project"], failed.labels["gitlab_environment"]) == (
            after.labels["project"],
            after.labels["gitlab_environment"],
        )
        if same and failed.status in ("failure", "cancelled"):
            assert failed.change_ids == []
            if after.status == "success" and after.change_ids and failed.commit_sha != after.commit_sha:
                assert failed.commit_sha in after.change_ids
                carried += 1
    assert carried >= 3


async def test_full_sync_incremental_and_full_again_through_the_hub(gitlab: FakeGitLab, history_factory: Any) -> None:
    history, running = build(history_factory())
    reset = int(time.time()) + 1  # GitLab's 429: Retry-After, and RateLimit-Reset as an epoch
    retry_after = {"Retry-After": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)}
    gitlab.faults = {1: _reply(429, "Retry later\n", retry_after)}  # the very first request is rate limited
    table = {**config(gitlab).model_dump(mode="json"), "token": gitlab.token, "policy": FAST}
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources={"gl": table}))
    async with hub:
        [result] = await hub.collect()
        assert result.ok, result.error
        first_run = len(gitlab.log)
        deployments = len(history.truth.deployments)  # the stored ones: skipped deployments are not counted
        per_deployment = first_run / deployments
        print(f"full sync: {first_run} requests for {deployments} deployments = {per_deployment:.3f} per deployment")
        assert gitlab.statuses(429) == 1 and gitlab.log[0][0] == gitlab.log[1][0]  # the same request, retried
        assert per_deployment <= 2.1
        check_events(await stored_events(hub), history)
        await check_dora(hub, history)

        # Nothing new upstream: each list asked once, with the cursor's updated_after.
        gitlab.log.clear()
        [result] = await hub.collect()
        assert result.ok, result.error
        rerun = len(gitlab.log)
        print(f"re-run with nothing new: {rerun} requests ({rerun / first_run:.3f} of the first run)")
        assert rerun <= first_run / 3
        assert all("order_by=updated_at" in path for path, _ in gitlab.log if "updated_after=" in path)
        assert gitlab.count("/repository/compare") == 0 and gitlab.count("/environments") == 0
        gitlab.log.clear()
        [result] = await hub.collect()
        assert result.ok, result.error
        print(f"second re-run with nothing new: {len(gitlab.log)} requests, {gitlab.statuses(304)} of them 304")
        assert gitlab.statuses(304) == len(gitlab.log)  # the same URLs: every answer Not Modified

        # Something new: the running deployment succeeds, a new one ships, an incident names a SHA.
        gitlab.log.clear()
        _finish(history, running)
        history.change(SHOP)
        newest = history.deploy(SHOP, "production", "success")
        history.incident(SHOP, newest, style="sha")
        [result] = await hub.collect()
        assert result.ok, result.error
        print(f"incremental run: {len(gitlab.log)} requests")
        check_events(await stored_events(hub), history)
        await check_dora(hub, history)

        # collect --full: everything is read again and yields the same figures.
        gitlab.log.clear()
        [result] = await hub.collect(full=True)
        assert result.ok, result.error
        print(f"collect --full: {len(gitlab.log)} requests, {gitlab.statuses(304)} of them 304")
        check_events(await stored_events(hub), history)
        await check_dora(hub, history)


def _reply(status: int, body: str, headers: dict[str, str]) -> Any:
    from metrichub_core.testing import Reply

    return Reply(status, body=body, headers={"Content-Type": "text/plain", **headers})


def _finish(history: History, running: dict[str, Any]) -> None:
    """The running deployment succeeds now: GitLab bumps its updated_at."""
    expected = history.truth.deployments[str(running["id"])]
    finished = history.clock + timedelta(minutes=9)
    job = running["deployable"]
    job.update(status="success", finished_at=iso(finished))
    running.update(status="success", updated_at=iso(finished + timedelta(seconds=2)))
    expected.update(status="success", finished_at=finished)
    history.clock = finished
    history._ship(SHOP, "production", expected)


async def test_dora_of_a_small_history_written_out_by_hand(gitlab: FakeGitLab, history_factory: Any) -> None:
    history = history_factory()
    day = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday

    def hour(h: int, m: int = 0) -> datetime:
        return day + timedelta(hours=h, minutes=m)

    history.commit(SHOP, at=hour(9))
    history.deploy(SHOP, "production", "success", at=hour(10), minutes=10)  # D1: first success, ships nothing
    history.commit(SHOP, at=hour(11))  # c1
    history.commit(SHOP, at=hour(12))  # c2
    history.deploy(SHOP, "production", "failed", at=hour(12, 30), minutes=10)  # D2: failed, ships nothing
    history.commit(SHOP, at=hour(13))  # c3
    d3 = history.deploy(SHOP, "production", "success", at=hour(14), minutes=20)  # D3: job 14:01-14:21
    history.deploy(SHOP, "staging", "success", at=hour(14, 30), minutes=5)  # not production: not counted
    history.issue(SHOP, title="Checkout down", description=f"Caused-by: {d3['sha'][:8]}", issue_type="incident",
                  labels=[], created=hour(15), closed=hour(16, 30))  # fmt: skip
    table = {**config(gitlab, projects=[SHOP]).model_dump(mode="json"), "token": gitlab.token, "policy": FAST}
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources={"gl": table}))
    async with hub:
        [result] = await hub.collect()
        assert result.ok, result.error
        report = await hub.dora(since=day, until=day + timedelta(days=7), service="shop")
    # Deployment frequency: D1 and D3 succeeded in production (D2 failed, staging does not count).
    assert report.deployment_frequency.count == 2
    # Lead time: D3 finished 14:21 and shipped c1 (11:00), c2 (12:00), c3 (13:00), the failed D2's
    # commits included: 3h21m = 12060 s, 2h21m = 8460 s, 1h21m = 4860 s; median 8460 s, mean 8460 s.
    assert (report.lead_time.count, report.lead_time.median_seconds) == (3, 8460.0)
    assert report.lead_time.mean_seconds == pytest.approx((12060 + 8460 + 4860) / 3)
    # Change failure rate: the incident names D3 by SHA prefix: 1 failed of 2 deployments = 0.5.
    assert (report.change_failure_rate.failed, report.change_failure_rate.total) == (1, 2)
    assert report.change_failure_rate.value == pytest.approx(0.5)
    # Recovery: 15:00 to 16:30 = 5400 s.
    assert (report.failed_deployment_recovery_time.count, report.failed_deployment_recovery_time.median_seconds) == (
        1,
        5400.0,
    )
