"""Collecting a generated GitHub history from the fake server, directly and through ``MetricHub``."""

from __future__ import annotations

import itertools
import logging
import statistics
from datetime import timedelta
from typing import Any

import httpx
import pytest
from metrichub_plugin_github import GitHubConfig, GitHubError, GitHubSource

from metrichub_core import Change, Deployment, Incident, MetricHub, SourceContext
from metrichub_core.config import Settings
from metrichub_core.resilience import HttpCache, Policy, SourceResilience
from metrichub_core.storage.base import EventQuery

ROUNDS = {"acme/api": 80, "acme/web": 30}


def config(github: Any, **overrides: Any) -> GitHubConfig:
    values: dict[str, Any] = {
        "kind": "github",
        "base_url": github.base_url,
        "token": github.token,
        "repositories": list(ROUNDS),
        "services": {"acme/web": "storefront"},
    }
    return GitHubConfig.model_validate({**values, **overrides})


async def collect_direct(
    github: Any, cfg: GitHubConfig, state: dict[str, Any], since: Any = None, *, cache: HttpCache | None = None
) -> list[Any]:
    """Run the source without a hub: over a plain client, or the host's client with ``cache`` as its ETag cache."""
    if cache is None:
        client = httpx.AsyncClient()
    else:
        client = SourceResilience("gh", Policy(rate_limit_per_second=1000)).client(cache=cache)
    async with client as http:
        ctx = SourceContext(http=http, logger=logging.getLogger("test.github"), state=state)
        source = GitHubSource("gh", cfg, ctx)
        return [event async for event in source.collect(since)]


def build(history_factory: Any) -> Any:
    history = history_factory().generate(ROUNDS)
    last = history.deploy("acme/api", "production", "running")  # still running at the first collection
    history.noise("acme/api")
    return history, last


def check_events(events: list[Any], truth: Any) -> None:
    deployments = {event.id: event for event in events if isinstance(event, Deployment)}
    assert set(deployments) == set(truth.deployments)
    for deployment_id, expected in truth.deployments.items():
        got = deployments[deployment_id]
        assert got.environment == expected["environment"], deployment_id
        assert got.status == expected["status"], deployment_id
        assert got.finished_at == expected["finished_at"], deployment_id
        assert got.started_at == expected["started_at"], deployment_id
        assert got.commit_sha == expected["sha"]
        assert got.change_ids == expected["change_ids"], deployment_id
        assert got.labels["repository"] == expected["repo"]
        assert got.service == ("storefront" if expected["repo"] == "acme/web" else "api")
    changes = {event.id: event for event in events if isinstance(event, Change)}
    for sha, committed_at in truth.changes.items():
        assert changes[sha].committed_at == committed_at
    incidents = {event.id: event for event in events if isinstance(event, Incident)}
    assert set(incidents) == set(truth.incidents)  # the labelled pull request and the bug are skipped
    for incident_id, expected in truth.incidents.items():
        incident = incidents[incident_id]
        assert (incident.started_at, incident.resolved_at, incident.caused_by, incident.service) == (
            expected["started_at"],
            expected["resolved_at"],
            expected["caused_by"],
            expected["service"],
        ), incident_id


def hand_dora(truth: Any, service: str | None = None) -> dict[str, Any]:
    """The DORA figures from the generator's own records, computed by hand."""

    def wanted(expected: dict[str, Any]) -> bool:
        owner = "storefront" if expected["repo"] == "acme/web" else "api"
        return expected["environment"] == "production" and (service is None or owner == service)

    successes = {i: e for i, e in truth.deployments.items() if wanted(e) and e["status"] == "success"}
    lead_times = [
        (expected["finished_at"] - truth.changes[sha]).total_seconds()
        for expected in successes.values()
        for sha in expected["change_ids"]
    ]
    incidents = [i for i in truth.incidents.values() if service is None or i["service"] == service]
    caused = {incident["attributed_to"] for incident in incidents if incident["attributed_to"] in successes}
    recovery = [(i["resolved_at"] - i["started_at"]).total_seconds() for i in incidents if i["resolved_at"]]
    return {
        "deployments": len(successes),
        "lead_median": statistics.median(lead_times),
        "lead_count": len(lead_times),
        "failed": len(caused),
        "recovery_median": statistics.median(recovery),
        "recovery_count": len(recovery),
        "open": sum(1 for i in incidents if i["resolved_at"] is None),
    }


async def test_collect_matches_the_hand_computed_history(github: Any, history_factory: Any) -> None:
    history, _ = build(history_factory)
    events = await collect_direct(github, config(github), {})
    check_events(events, history.truth)
    # The first production success of each repository has no predecessor: no attributed changes.
    first = min(
        (e for e in events if isinstance(e, Deployment) and e.status == "success" and e.environment == "production"),
        key=lambda e: e.started_at,
    )
    assert first.change_ids == []
    # Commits of a failed deployment ship with the next success of the same environment.
    deployments = {e.id: e for e in events if isinstance(e, Deployment)}
    ordered = sorted(deployments.values(), key=lambda e: (e.labels["repository"], e.environment, e.started_at))
    shipped_later = 0
    succeeded: set[tuple[str, str]] = set()  # groups with an earlier success (a compare base)
    for failed, after in itertools.pairwise(ordered):
        group = (after.labels["repository"], after.environment)
        same = (failed.labels["repository"], failed.environment) == group
        if same and failed.status == "failure" and after.status == "success" and group in succeeded:
            if failed.commit_sha != after.commit_sha:
                assert failed.commit_sha in after.change_ids and failed.change_ids == []
                shipped_later += 1
        if failed.status == "success":
            succeeded.add((failed.labels["repository"], failed.environment))
    assert shipped_later >= 5
    figures = hand_dora(history.truth)
    assert figures["lead_count"] == len(history.truth.changes)
    assert github.count("/compare/") >= 1 and any("page=2" in path for path, _ in github.log if "/compare/" in path)
    assert any("page=2" in path for path, _ in github.log if path.startswith("/repos/acme/api/deployments?"))


async def test_full_sync_and_cheap_rerun_through_the_hub(github: Any, history_factory: Any) -> None:
    history, running = build(history_factory)
    github.rate_limit_on = {7}  # one primary rate-limit 403 in the middle of the first sync
    policy = {"rate_limit_per_second": 1000, "backoff_initial_seconds": 0.01, "max_concurrency": 1}
    table = {**config(github).model_dump(mode="json"), "token": github.token, "policy": policy}
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources={"gh": table}))
    async with hub:
        [result] = await hub.collect()
        assert result.ok, result.error
        first_run = len(github.log)
        deployments = len(history.truth.deployments)
        per_deployment = first_run / deployments
        print(f"full sync: {first_run} requests for {deployments} deployments = {per_deployment:.3f} per deployment")
        assert github.statuses_count(403) == 1
        assert per_deployment <= 2.1
        # The host's ETag cache kept only what a re-run asks again: no compare, no finished deployment's statuses.
        kept = (await hub.storage.get_state("gh") or {})["http_cache"]
        asked_again = {path for path, status in github.log if status == 200 and "/compare/" not in path}
        asked_again -= {path for path in asked_again if "/statuses" in path and str(running["id"]) not in path}
        print(f"host ETag cache: {len(kept)} entries")
        assert len(kept) == len(asked_again)
        check_events(await stored_events(hub), history.truth)
        await check_dora(hub, history.truth)

        # Nothing new upstream: one free 304 per list and per still-running deployment.
        github.log.clear()
        [result] = await hub.collect()
        assert result.ok, result.error
        rerun = len(github.log)
        print(f"re-run with nothing new: {rerun} requests ({rerun / first_run:.3f} of the first run)")
        assert rerun <= first_run / 3
        assert github.statuses_count(304) == rerun, github.log  # every answer was Not Modified

        # Something new: the running deployment succeeds, a new one ships, an incident names a SHA.
        github.log.clear()
        repo = github.repo("acme/api")
        done = history.clock + timedelta(minutes=9)
        repo.statuses[running["id"]].append(history._status("acme/api", running, "success", done))
        expected_running = history.truth.deployments[str(running["id"])]
        before = history.last_success[("acme/api", "production")]
        start = repo.index(before["sha"])
        expected_running.update(
            status="success", finished_at=done, change_ids=[c["sha"] for c in repo.commits[start + 1 :]]
        )
        history.last_success[("acme/api", "production")] = {"id": str(running["id"]), "sha": running["sha"]}
        history.clock = done
        history.add_commits("acme/api", 2)
        newest = history.deploy("acme/api", "production", "success", inactive_later=False)
        for commit in repo.commits[start + 1 :]:
            history.truth.changes.setdefault(commit["sha"], _date(commit))
        history.incident("acme/api", newest)
        [result] = await hub.collect()
        assert result.ok, result.error
        print(f"incremental run: {len(github.log)} requests")
        check_events(await stored_events(hub), history.truth)
        await check_dora(hub, history.truth)

        # collect --full: everything is read again; the host's ETag cache answers what it kept.
        github.log.clear()
        [result] = await hub.collect(full=True)
        assert result.ok, result.error
        assert github.statuses_count(304) > 0
        check_events(await stored_events(hub), history.truth)
        await check_dora(hub, history.truth)


def _date(commit: dict[str, Any]) -> Any:
    from metrichub_plugin_github._deployments import parse_time

    return parse_time(commit["commit"]["author"]["date"])


async def stored_events(hub: MetricHub) -> list[Any]:
    events: list[Any] = []
    for kind in ("deployment", "change", "incident"):
        cursor = None
        while True:
            page = await hub.storage.list_events(EventQuery(kind=kind, source="gh", limit=500, cursor=cursor))
            events.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return events


async def check_dora(hub: MetricHub, truth: Any) -> None:
    since = truth_start(truth)
    until = since + timedelta(days=120)
    for service in (None, "api", "storefront"):
        hand = hand_dora(truth, service)
        report = await hub.dora(since=since, until=until, service=service)
        assert report.deployment_frequency.count == hand["deployments"]
        assert report.lead_time.count == hand["lead_count"]
        assert report.lead_time.median_seconds == pytest.approx(hand["lead_median"], abs=1)
        assert report.change_failure_rate.failed == hand["failed"]
        assert report.change_failure_rate.total == hand["deployments"]
        assert report.failed_deployment_recovery_time.count == hand["recovery_count"]
        assert report.failed_deployment_recovery_time.median_seconds == pytest.approx(hand["recovery_median"], abs=1)
        assert report.failed_deployment_recovery_time.open == hand["open"]


def truth_start(truth: Any) -> Any:
    return min(expected["started_at"] for expected in truth.deployments.values()) - timedelta(days=7)


async def test_primary_rate_limit_without_the_host_is_a_clear_error(github: Any, history_factory: Any) -> None:
    build(history_factory)
    github.rate_limit_on = {1}
    with pytest.raises(GitHubError, match="rate limit exhausted"):
        await collect_direct(github, config(github), {})


async def test_bad_token_is_reported_without_the_token(github: Any, history_factory: Any, caplog: Any) -> None:
    build(history_factory)
    caplog.set_level(logging.DEBUG)
    wrong = "ghp_WrongTokenThatMustNotLeak0000000000"
    with pytest.raises(GitHubError) as raised:
        await collect_direct(github, config(github, token=wrong), {})
    assert "401" in str(raised.value) and "token" in str(raised.value)
    assert wrong not in str(raised.value) and wrong not in caplog.text


async def test_workflow_runs_mode(github: Any, history_factory: Any) -> None:
    history = history_factory(seed=11)
    for conclusion in ["success", "failure", "success", "skipped", "timed_out", "success", "cancelled", "success"]:
        history.add_commits("acme/api", history.rng.randint(1, 3))
        history.run("acme/api", conclusion)
    history.add_commits("acme/api", 2)
    pending = history.run("acme/api", None)
    cfg = config(
        github, repositories=["acme/api"], services={}, deployments_from="workflow_runs", workflow="deploy.yml"
    )
    state: dict[str, Any] = {}
    events = await collect_direct(github, cfg, state)
    running = {i for i, e in history.truth.deployments.items() if e["status"] == "running"}
    assert running == {str(pending["id"])}
    history.truth.deployments = {i: e for i, e in history.truth.deployments.items() if i not in running}
    check_events(events, history.truth)  # skipped runs are no deployments; the running one waits

    # The running run completes: the next collection reports it with the commits it shipped.
    github.log.clear()
    pending.update(status="completed", conclusion="success")
    expected = {
        "repo": "acme/api", "environment": "production", "status": "success", "sha": pending["head_sha"],
        "finished_at": _date_of(pending["updated_at"]), "started_at": _date_of(pending["created_at"]), "change_ids": [],
    }  # fmt: skip
    history.truth.deployments[str(pending["id"])] = expected
    history._ship("acme/api", "production", expected, str(pending["id"]))
    later = await collect_direct(github, cfg, state, since=history.clock)
    assert [e.id for e in later if isinstance(e, Deployment)] == [str(pending["id"])]
    check_events(events + later, history.truth)
    paths = sorted(path.split("?")[0] for path, _ in github.log)
    base = history.truth.deployments[str(pending["id"])]["change_ids"]
    assert len(base) >= 2
    assert paths == sorted(
        [
            f"/repos/acme/api/actions/runs/{pending['id']}",  # the run that was in progress
            "/repos/acme/api/actions/workflows/deploy.yml/runs",  # first page: nothing newer
            next(path for path in paths if path.startswith("/repos/acme/api/compare/")),  # its shipped commits
            "/repos/acme/api/issues",
        ]
    )


def _date_of(text: str) -> Any:
    from metrichub_plugin_github._deployments import parse_time

    return parse_time(text)


async def test_deployments_that_never_finish_are_given_up(github: Any, history_factory: Any) -> None:
    history = history_factory().generate({"acme/api": 3})
    abandoned = history.deploy("acme/api", "production", "running")
    history.clock += timedelta(days=8)
    history.add_commits("acme/api", 1)
    history.deploy("acme/api", "production", "success")
    recent = history.deploy("acme/api", "staging", "running")
    cfg = config(github, repositories=["acme/api"], services={})
    state: dict[str, Any] = {}
    cache = HttpCache()  # the host's ETag cache, which it keeps between runs in the source's state
    events = await collect_direct(github, cfg, state, cache=cache)
    assert {e.id: e.status for e in events if isinstance(e, Deployment)}[str(abandoned["id"])] == "running"
    # Started more than 7 days before the newest deployment: no longer asked about.
    assert set(state["repositories"]["acme/api"]["pending"]) == {str(recent["id"])}
    github.log.clear()
    await collect_direct(github, cfg, state, since=history.clock, cache=cache)
    assert [status for _, status in github.log] == [304, 304, 304]  # recent's statuses and the two lists


async def test_github_enterprise_base_url(github: Any, history_factory: Any) -> None:
    history = history_factory().generate({"acme/api": 12})
    cfg = config(github, base_url=f"{github.base_url}/api/v3/", repositories=["acme/api"], services={})
    events = await collect_direct(github, cfg, {})
    assert {e.id for e in events if isinstance(e, Deployment)} == set(history.truth.deployments)
    assert all(path.startswith("/api/v3/repos/acme/api/") for path, _ in github.log)
