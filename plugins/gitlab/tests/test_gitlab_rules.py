"""One GitLab rule per test: statuses, tiers, ``updated_after``, incidents, Caused-by, rate limits, auth."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest
from gitlab_fake import FakeGitLab, History, iso
from metrichub_plugin_gitlab import GitLabError
from metrichub_plugin_gitlab._client import GitLabClient
from test_gitlab_collect import SHOP, check_events, collect_direct, config

from metrichub_core import Deployment, Incident
from metrichub_core.resilience import Policy
from metrichub_core.testing import Reply


def small(history: History) -> History:
    """Two successes to production with one change between them, in the nested-group project."""
    history.change(SHOP)
    history.deploy(SHOP, "production", "success")
    history.change(SHOP)
    history.deploy(SHOP, "production", "success")
    return history


async def test_every_status_and_the_changes_of_failures_ship_with_the_next_success(
    gitlab: FakeGitLab, history_factory: Any
) -> None:
    history = history_factory()
    history.change(SHOP)
    first = history.deploy(SHOP, "production", "success")
    attempts = {}
    for status in ("failed", "canceled", "skipped", "created", "running", "blocked"):
        history.change(SHOP)
        attempts[status] = history.deploy(SHOP, "production", status)
    history.change(SHOP)
    api_made = history.deploy(SHOP, "production", "success", api_created=True)  # deployable is null
    events = await collect_direct(gitlab, config(gitlab, projects=[SHOP], services={}), {})
    check_events(events, history)
    deployments = {event.id: event for event in events if isinstance(event, Deployment)}
    assert str(attempts["skipped"]["id"]) not in deployments
    statuses = {status: deployments[str(item["id"])].status for status, item in attempts.items() if status != "skipped"}
    assert statuses == {
        "failed": "failure", "canceled": "cancelled", "created": "running", "running": "running", "blocked": "running",
    }  # fmt: skip
    assert all(deployments[str(item["id"])].finished_at is None for s, item in attempts.items() if s in statuses and
               statuses[s] == "running")  # fmt: skip
    assert deployments[str(first["id"])].change_ids == []  # the first success ships nothing
    shipped = deployments[str(api_made["id"])]
    assert all(item["sha"] in shipped.change_ids for item in attempts.values())  # what failed ships now
    assert all(deployments[str(item["id"])].change_ids == [] for s, item in attempts.items() if s != "skipped")
    # No job: started at created_at, finished at updated_at.
    assert shipped.started_at.isoformat().startswith(api_made["created_at"][:19])
    assert shipped.finished_at is not None and shipped.finished_at.isoformat().startswith(api_made["updated_at"][:19])


async def test_environments_are_production_by_tier_or_by_name(gitlab: FakeGitLab, history_factory: Any) -> None:
    history = history_factory()
    for name in ("production", "live", "prod", "staging", "review/feature-7"):
        history.change(SHOP)
        history.deploy(SHOP, name, "success")
    events = await collect_direct(gitlab, config(gitlab, projects=[SHOP], services={}), {})
    by_name = {e.labels["gitlab_environment"]: e.environment for e in events if isinstance(e, Deployment)}
    # live: tier production; prod: tier "other" but named like production; the rest keep their names.
    assert by_name == {
        "production": "production", "live": "production", "prod": "production", "staging": "staging",
        "review/feature-7": "review/feature-7",
    }  # fmt: skip
    assert gitlab.count("/environments") == 1  # asked once, for the tiers the deployments list lacks
    events = await collect_direct(gitlab, config(gitlab, projects=[SHOP], production_environment="^never$"), {})
    by_name = {e.labels["gitlab_environment"]: e.environment for e in events if isinstance(e, Deployment)}
    assert (by_name["live"], by_name["prod"]) == ("production", "prod")


async def test_updated_after_needs_the_updated_at_order(gitlab: FakeGitLab, history_factory: Any) -> None:
    history = small(history_factory())
    deployments = f"{gitlab.base_url}/api/v4/projects/100/deployments"
    headers = {"PRIVATE-TOKEN": gitlab.token}
    async with httpx.AsyncClient() as http:
        wrong = await http.get(deployments, params={"updated_after": "2026-03-01T00:00:00Z"}, headers=headers)
        assert wrong.status_code == 400 and "requires `updated_at` sort" in wrong.json()["message"]
        right = await http.get(
            deployments, params={"updated_after": "2026-03-01T00:00:00Z", "order_by": "updated_at"}, headers=headers
        )
        assert right.status_code == 200 and len(right.json()) == 2
        assert (await http.get(deployments, headers={})).status_code == 401
        client = GitLabClient(http, f"{gitlab.base_url}/api/v4", gitlab.token, "private-token", logging.getLogger("t"))
        with pytest.raises(GitLabError, match=r"deployments: 400 `updated_at` filter requires `updated_at` sort$"):
            async for _ in client.pages("/projects/100/deployments", {"updated_after": "2026-03-01T00:00:00Z"}):
                pass

    # The source's incremental run asks for what was updated since its cursor, and gets only that.
    running = history.deploy(SHOP, "staging", "running")
    state: dict[str, Any] = {}
    await collect_direct(gitlab, config(gitlab, projects=[SHOP], services={}), state)
    gitlab.log.clear()
    finished = history.clock
    running.update(status="success", updated_at=iso(finished))
    running["deployable"].update(status="success", finished_at=iso(finished))
    history.truth.deployments[str(running["id"])].update(status="success", finished_at=finished)
    later = await collect_direct(gitlab, config(gitlab, projects=[SHOP], services={}), state, since=history.clock)
    assert [(e.id, e.status) for e in later if isinstance(e, Deployment)] == [(str(running["id"]), "success")]
    [listed] = [path for path, _ in gitlab.log if "/deployments?" in path]
    assert "order_by=updated_at" in listed and "updated_after=" in listed and "finished_after" not in listed


async def test_incidents_by_type_and_by_label_with_caused_by_id_and_sha(
    gitlab: FakeGitLab, history_factory: Any
) -> None:
    history = small(history_factory())
    deployment = history.fake.projects[SHOP].deployments[-1]
    styles = {style: history.incident(SHOP, deployment, style=style) for style in ("id", "sha", "none", "label")}
    history.noise(SHOP)  # a plain bug (skipped) and the last incident also labelled (reported once)
    without_label = await collect_direct(gitlab, config(gitlab, projects=[SHOP], incident_label=None), {})
    incidents = {e.id: e for e in without_label if isinstance(e, Incident)}
    assert set(incidents) == {f"{SHOP}#{styles[s]['iid']}" for s in ("id", "sha", "none")}
    gitlab.log.clear()
    events = await collect_direct(gitlab, config(gitlab, projects=[SHOP]), {})
    check_events(events, history)
    incidents = {e.id: e for e in events if isinstance(e, Incident)}
    by_style = {style: incidents[f"{SHOP}#{issue['iid']}"] for style, issue in styles.items()}
    assert by_style["id"].caused_by == str(deployment["id"])
    assert "Caused-by: `" in styles["sha"]["description"] and by_style["sha"].caused_by == str(deployment["id"])
    assert by_style["none"].caused_by is None
    assert by_style["label"].caused_by == str(deployment["id"])
    assert by_style["id"].url == styles["id"]["web_url"] and by_style["id"].title == styles["id"]["title"]
    assert len([path for path, _ in gitlab.log if "/issues?" in path]) == 2  # by type, and by label


async def test_a_sha_of_another_environment_or_unknown_stays_as_written(
    gitlab: FakeGitLab, history_factory: Any
) -> None:
    history = small(history_factory())
    history.change(SHOP)
    staging = history.deploy(SHOP, "staging", "success")
    description = f"Caused-by: {staging['sha'][:12]}"  # deployed to staging only: no production deployment
    created = history.clock
    issue = history.issue(SHOP, title="x", description=description, issue_type="incident", labels=[],
                          created=created, closed=None)  # fmt: skip
    events = await collect_direct(gitlab, config(gitlab, projects=[SHOP]), {})
    [incident] = [e for e in events if isinstance(e, Incident) and e.id == f"{SHOP}#{issue['iid']}"]
    assert incident.caused_by == staging["sha"][:12]


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Reply(429, body="Retry later\n", headers={"Content-Type": "text/plain"}), id="plain-text"),
        pytest.param(Reply(429), id="no-headers-no-body"),
        pytest.param("reset-epoch", id="ratelimit-reset-epoch"),
        pytest.param(
            Reply(429, json={"message": "429 Too Many Requests"}, headers={"Retry-After": "1"}), id="retry-after"
        ),
    ],
)
async def test_rate_limited_answers_are_waited_out_by_the_host(
    gitlab: FakeGitLab, history_factory: Any, fault: Reply | str
) -> None:
    small(history_factory())
    if fault == "reset-epoch":  # GitLab's RateLimit-Reset is an epoch, not seconds
        headers = {"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(time.time()) + 1), "RateLimit-Limit": "2000"}
        fault = Reply(429, body="Retry later\n", headers=headers)
    assert isinstance(fault, Reply)
    gitlab.faults = {3: fault}  # after the project lookup and the merge requests, the deployments list
    policy = Policy(rate_limit_per_second=1000, backoff_initial_seconds=0.05, max_concurrency=1)
    events = await collect_direct(gitlab, config(gitlab, projects=[SHOP], services={}), {}, policy=policy)
    assert gitlab.statuses(429) == 1
    assert gitlab.log[2][0] == gitlab.log[3][0] and "/deployments?" in gitlab.log[2][0]  # retried as it was
    assert len([e for e in events if isinstance(e, Deployment)]) == 2


async def test_private_token_and_bearer_auth(gitlab: FakeGitLab, history_factory: Any, caplog: Any) -> None:
    small(history_factory())
    await collect_direct(gitlab, config(gitlab, projects=[SHOP]), {})
    assert all(request.headers.get("private-token") == gitlab.token for request in gitlab.upstream.requests)
    assert all("authorization" not in request.headers for request in gitlab.upstream.requests)
    await collect_direct(gitlab, config(gitlab, projects=[SHOP], auth="bearer"), {})
    assert gitlab.upstream.requests[-1].headers["authorization"] == f"Bearer {gitlab.token}"

    caplog.set_level(logging.DEBUG)
    wrong = "glpat-WrongTokenThatMustNotLeak000000"
    for token in (wrong, None):
        with pytest.raises(GitLabError) as raised:
            await collect_direct(gitlab, config(gitlab, projects=[SHOP], token=token), {})
        assert "401" in str(raised.value) and "token" in str(raised.value)
        assert wrong not in str(raised.value)
    assert wrong not in caplog.text and gitlab.token not in caplog.text


async def test_check_reports_unusable_sources(gitlab: FakeGitLab, history_factory: Any) -> None:
    from metrichub_plugin_gitlab import GitLabSource

    from metrichub_core import SourceContext

    small(history_factory())

    async def check(**overrides: Any) -> None:
        async with httpx.AsyncClient() as http:
            ctx = SourceContext(http=http, logger=logging.getLogger("t"))
            await GitLabSource("gl", config(gitlab, **{"projects": [SHOP], **overrides}), ctx).check()

    await check()
    with pytest.raises(GitLabError, match="404 not found"):
        await check(projects=[SHOP, "acme/missing"], services={})
    with pytest.raises(GitLabError, match="401"):
        await check(token="glpat-wrong")


async def test_a_vanished_compare_base_ships_nothing_and_is_logged(
    gitlab: FakeGitLab, history_factory: Any, caplog: Any
) -> None:
    history = small(history_factory())
    project = history.fake.projects[SHOP]
    first = project.deployments[0]
    state: dict[str, Any] = {}
    await collect_direct(gitlab, config(gitlab, projects=[SHOP], services={}), state)
    project.commits = [commit for commit in project.commits if commit["id"] != first["sha"]]  # force-pushed away
    history.change(SHOP)
    newest = history.deploy(SHOP, "production", "success")
    events = await collect_direct(gitlab, config(gitlab, projects=[SHOP]), state, since=history.clock)
    [deployment] = [e for e in events if isinstance(e, Deployment) and e.id == str(newest["id"])]
    assert deployment.change_ids  # compared with the second success, which still exists
    caplog.set_level(logging.WARNING)
    project.commits = project.commits[:1]  # the base of every compare is gone now
    history.change(SHOP)
    gone = history.deploy(SHOP, "production", "success")
    events = await collect_direct(gitlab, config(gitlab, projects=[SHOP]), state, since=history.clock)
    [deployment] = [e for e in events if isinstance(e, Deployment) and e.id == str(gone["id"])]
    assert deployment.change_ids == [] and "cannot compare" in caplog.text


async def test_tiers_are_asked_again_only_for_new_environment_names(gitlab: FakeGitLab, history_factory: Any) -> None:
    history = small(history_factory())
    state: dict[str, Any] = {}
    await collect_direct(gitlab, config(gitlab, projects=[SHOP]), state)
    history.change(SHOP)
    history.deploy(SHOP, "production", "success")
    history.deploy(SHOP, "eu-live", "success")
    del history.fake.projects[SHOP].environments["eu-live"]  # deleted since: no tier to read
    gitlab.log.clear()
    events = await collect_direct(gitlab, config(gitlab, projects=[SHOP]), state, since=history.clock)
    assert {e.labels["gitlab_environment"]: e.environment for e in events if isinstance(e, Deployment)} == {
        "production": "production",
        "eu-live": "eu-live",
    }
    assert gitlab.count("/environments") == 1  # a name not seen before
    history.deploy(SHOP, "eu-live", "success")
    gitlab.log.clear()
    await collect_direct(gitlab, config(gitlab, projects=[SHOP]), state, since=history.clock)
    assert gitlab.count("/environments") == 0  # known now, even without a tier


async def test_a_renamed_project_is_followed_to_its_numeric_id(gitlab: FakeGitLab, history_factory: Any) -> None:
    small(history_factory())
    moved = f"{gitlab.base_url}/api/v4/projects/acme%2Fplatform%2Fshop"
    gitlab.upstream.script("/api/v4/projects/acme/old-shop", Reply(301, headers={"Location": moved}))  # GitLab 16.7+
    sent: list[str] = []
    events = await collect_direct(gitlab, config(gitlab, projects=["acme/old-shop"]), {}, sent=sent)
    deployments = [e for e in events if isinstance(e, Deployment)]
    assert len(deployments) == 2 and {e.labels["project"] for e in deployments} == {"acme/old-shop"}
    assert sent[:3] == [
        "/api/v4/projects/acme%2Fold-shop",
        "/api/v4/projects/acme%2Fplatform%2Fshop",
        "/api/v4/projects/100/merge_requests",
    ]
