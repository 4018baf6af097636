"""Webhooks: GitHub's own example deliveries, signed here, verified and mapped to events."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from metrichub_plugin_github import GitHubConfig, GitHubSource

from metrichub_core import Change, Deployment, Incident, MetricHub, SourceContext
from metrichub_core.config import Settings
from metrichub_core.sources import WebhookRejected

HOOKS = Path(__file__).parent / "fixtures" / "webhooks"
SECRET = "It's a Secret to Everybody"
REPOSITORIES = ["Codertocat/Hello-World", "octo-org/octo-repo"]


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery(name: str, event: str, secret: str = SECRET) -> tuple[dict[str, str], bytes]:
    body = (HOOKS / name).read_bytes()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": f"delivery-{name}",
        "X-Hub-Signature-256": sign(body, secret),
        "Content-Type": "application/json",
    }
    return headers, body


def source(**overrides: Any) -> GitHubSource:
    values: dict[str, Any] = {"repositories": REPOSITORIES, "token": "ghp_x", "webhook_secret": SECRET}
    cfg = GitHubConfig.model_validate({**values, **overrides})
    ctx = SourceContext(http=httpx.AsyncClient(), logger=logging.getLogger("test.github.webhooks"))
    return GitHubSource("gh", cfg, ctx)


def receive(src: GitHubSource, headers: dict[str, str], body: bytes) -> list[Any]:
    src.verify_webhook(headers, body)
    return src.parse_webhook(headers, body)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def test_signature_is_the_hmac_sha256_of_the_body() -> None:
    src = source()
    headers, body = delivery("push.branch.json", "push")
    src.verify_webhook(headers, body)
    src.verify_webhook({key.lower(): value for key, value in headers.items()}, body)  # header names are case-blind
    with pytest.raises(WebhookRejected, match="does not match"):
        src.verify_webhook(headers, body + b" ")
    with pytest.raises(WebhookRejected, match="does not match"):
        src.verify_webhook({**headers, "X-Hub-Signature-256": sign(body, "another secret")}, body)
    with pytest.raises(WebhookRejected, match="does not match"):
        src.verify_webhook({**headers, "X-Hub-Signature-256": "sha1=" + "0" * 40}, body)
    with pytest.raises(WebhookRejected, match="missing"):
        src.verify_webhook({"X-GitHub-Event": "push"}, body)
    with pytest.raises(WebhookRejected, match="not configured"):
        source(webhook_secret=None).verify_webhook(headers, body)


def test_deployment_status_success_is_a_finished_deployment() -> None:
    [deployment] = receive(source(), *delivery("deployment_status.created.json", "deployment_status"))
    assert isinstance(deployment, Deployment)
    assert deployment.id == "145988746"
    assert (deployment.service, deployment.environment, deployment.status) == ("Hello-World", "production", "success")
    assert deployment.started_at == at("2019-05-15T15:20:53Z")
    assert deployment.finished_at == at("2019-05-15T15:20:55Z")
    assert deployment.commit_sha == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    assert deployment.updated_at == at("2019-05-15T15:20:55Z")  # the status's created_at
    assert deployment.change_ids == []  # the next collection attributes the commits (compare API)


def test_deployment_status_in_progress_is_running_in_its_own_environment() -> None:
    [deployment] = receive(source(), *delivery("deployment_status.created.github-pages.json", "deployment_status"))
    assert (deployment.status, deployment.environment, deployment.finished_at) == ("running", "github-pages", None)
    assert deployment.updated_at == at("2022-01-03T01:28:40Z")
    src = source(production_environment="^github-pages$", services={"Codertocat/Hello-World": "site"})
    [deployment] = receive(src, *delivery("deployment_status.created.github-pages.json", "deployment_status"))
    assert (deployment.environment, deployment.service) == ("production", "site")


def test_workflow_run_counts_only_in_workflow_mode_for_the_named_workflow() -> None:
    headers, body = delivery("workflow_run.completed.json", "workflow_run")
    assert receive(source(), headers, body) == []
    assert receive(source(deployments_from="workflow_runs", workflow="deploy.yml"), headers, body) == []
    [deployment] = receive(source(deployments_from="workflow_runs", workflow="test.yml"), headers, body)
    assert (deployment.id, deployment.status, deployment.environment) == ("289782451", "success", "production")
    assert deployment.started_at == at("2020-10-05T16:33:49Z")
    assert deployment.finished_at == at("2020-10-05T16:33:49Z")
    assert deployment.commit_sha == "3484a3fb816e0859fd6e1cea078d76385ff50625"
    assert deployment.service == "octo-repo"
    assert deployment.updated_at == at("2020-10-05T16:33:49Z")  # the run's updated_at
    by_id = source(deployments_from="workflow_runs", workflow="2823525")
    assert len(receive(by_id, *delivery("workflow_run.completed.with-pull-requests.json", "workflow_run"))) == 1


def test_issues_with_the_incident_label_are_incidents() -> None:
    headers, body = delivery("issues.opened.json", "issues")
    assert receive(source(), headers, body) == []  # labelled "bug", not "incident"
    [incident] = receive(source(incident_label="bug"), headers, body)
    assert isinstance(incident, Incident)
    assert incident.id == "Codertocat/Hello-World#1"
    assert incident.started_at == at("2019-05-15T15:20:18Z")
    assert incident.resolved_at is None and incident.caused_by is None
    assert incident.title == "Spelling error in the README file"
    assert incident.updated_at == at("2019-05-15T15:20:18Z")  # the issue's updated_at


def test_push_gives_the_pushed_commits_and_deleted_refs_nothing() -> None:
    [change] = receive(source(), *delivery("push.branch.json", "push"))
    assert isinstance(change, Change)
    assert change.id == "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    assert change.committed_at == at("2019-05-15T15:19:25Z")
    assert change.service == "Hello-World"
    assert change.updated_at is None  # a commit never changes: any version is the version
    assert receive(source(), *delivery("push.tag-deleted.json", "push")) == []


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("release.published.json", "release"),
        ("pull_request.closed.json", "pull_request"),
        ("deployment.created.json", "deployment"),
    ],
)
def test_other_events_are_acknowledged_and_ignored(name: str, event: str) -> None:
    assert receive(source(), *delivery(name, event)) == []


def test_ping_and_unknown_repositories_give_nothing() -> None:
    body = b'{"zen": "Design for failure.", "hook_id": 1}'
    assert receive(source(), {"X-GitHub-Event": "ping", "X-Hub-Signature-256": sign(body)}, body) == []
    assert receive(source(repositories=["acme/other"]), *delivery("push.branch.json", "push")) == []


def test_a_mangled_delivery_is_rejected_not_a_crash() -> None:
    body = b'{"repository": {"full_name": "Codertocat/Hello-World"}, "deployment_status": {"state": "success"}}'
    with pytest.raises(WebhookRejected, match="deployment_status"):
        receive(source(), {"X-GitHub-Event": "deployment_status", "X-Hub-Signature-256": sign(body)}, body)


async def test_webhooks_through_the_api_store_only_verified_deliveries() -> None:
    from metrichub_core.api.app import create_app

    table = {"kind": "github", "token": "ghp_x", "repositories": REPOSITORIES, "webhook_secret": SECRET}
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources={"gh": table}))
    app = create_app(hub, schedule=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers, body = delivery("deployment_status.created.json", "deployment_status")
        bad = await client.post("/api/v1/webhooks/gh", content=body, headers={**headers, "X-Hub-Signature-256": "x"})
        assert bad.status_code == 401
        assert (await client.get("/api/v1/deployments")).json()["data"]["items"] == []
        good = await client.post("/api/v1/webhooks/gh", content=body, headers=headers)
        assert good.status_code == 200, good.text
        [stored] = (await client.get("/api/v1/deployments")).json()["data"]["items"]
        assert stored["id"] == "145988746" and stored["status"] == "success"
        ping = b"{}"
        answer = await client.post(
            "/api/v1/webhooks/gh", content=ping, headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": sign(ping)}
        )
        assert answer.status_code == 200
    await hub.close()


async def test_a_webhook_incident_naming_a_commit_gets_the_collected_deployment_id(
    github: Any, history_factory: Any
) -> None:
    """The API parses a delivery with the state the last collection saved (SHA -> deployment id)."""
    from metrichub_core.api.app import create_app

    repository = "Codertocat/Hello-World"
    history = history_factory()
    history.add_commits(repository, 3)
    shipped = history.deploy(repository, "production", "success")
    table = {
        "kind": "github", "base_url": github.base_url, "token": github.token, "repositories": [repository],
        "webhook_secret": SECRET, "incident_label": "bug", "policy": {"rate_limit_per_second": 1000},
    }  # fmt: skip
    payload = json.loads((HOOKS / "issues.opened.json").read_bytes())  # GitHub's example, labelled "bug"
    payload["issue"]["body"] += f"\r\n\r\nCaused-by: {shipped['sha'][:12]}"
    body = json.dumps(payload).encode()
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources={"gh": table}))
    transport = httpx.ASGITransport(app=create_app(hub, schedule=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

        async def deliver(delivery_id: str) -> Any:
            headers = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": delivery_id, "X-Hub-Signature-256": sign(body)}
            assert (await client.post("/api/v1/webhooks/gh", content=body, headers=headers)).status_code == 200
            [incident] = (await client.get("/api/v1/incidents")).json()["data"]["items"]
            return incident["caused_by"]

        assert await deliver("before-collection") == shipped["sha"][:12]  # no state yet: kept as written
        [result] = await hub.collect()
        assert result.ok, result.error
        assert await deliver("after-collection") == str(shipped["id"])
    await hub.close()
