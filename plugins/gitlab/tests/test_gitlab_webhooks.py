"""Webhooks: GitLab's own example deliveries, verified by secret token or signature, mapped to events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from gitlab_fake import FakeGitLab
from metrichub_plugin_gitlab import GitLabConfig, GitLabSource

from metrichub_core import Deployment, Incident, MetricHub, SourceContext
from metrichub_core.config import Settings
from metrichub_core.sources import WebhookRejected

HOOKS = Path(__file__).parent / "fixtures" / "webhooks"
SECRET = "gitlab-hook-secret-token"
SIGNING = "whsec_" + base64.b64encode(bytes(range(32))).decode()
PROJECTS = ["root/test-deployment-webhooks", "gitlabhq/gitlab-test"]
EVENTS = {
    "deployment_hook.success.json": "Deployment Hook",
    "issue_hook.open.json": "Issue Hook",
    "push_hook.json": "Push Hook",
    "merge_request_hook.open.json": "Merge Request Hook",
    "pipeline_hook.success.json": "Pipeline Hook",
}


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((HOOKS / name).read_bytes())
    return loaded


def delivery(
    name: str, body: bytes | None = None, *, token: str = SECRET, uuid: str | None = None
) -> tuple[dict[str, str], bytes]:
    """Headers as GitLab sends them with a secret token: the event name, the token, ids for deduplication."""
    body = (HOOKS / name).read_bytes() if body is None else body
    uuid = uuid or hashlib.sha1(body).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": EVENTS[name],
        "X-Gitlab-Token": token,
        "X-Gitlab-Event-UUID": uuid,
        "X-Gitlab-Webhook-UUID": uuid,
        "Idempotency-Key": uuid,
    }
    return headers, body


def signed(
    name: str, body: bytes | None = None, *, key: str = SIGNING, at: int | None = None
) -> tuple[dict[str, str], bytes]:
    """Standard Webhooks headers: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, computed here."""
    headers, body = delivery(name, body)
    del headers["X-Gitlab-Token"]
    stamp = str(int(time.time()) if at is None else at)
    message = f"{headers['Idempotency-Key']}.{stamp}.".encode() + body
    secret = base64.b64decode(key.removeprefix("whsec_"))
    signature = base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()
    headers.update(
        {"webhook-id": headers["Idempotency-Key"], "webhook-timestamp": stamp, "webhook-signature": f"v1,{signature}"}
    )
    return headers, body


def source(**overrides: Any) -> GitLabSource:
    values: dict[str, Any] = {"projects": PROJECTS, "token": "glpat-x", "webhook_secret": SECRET, **overrides}
    ctx = SourceContext(http=httpx.AsyncClient(), logger=logging.getLogger("test.gitlab.webhooks"))
    return GitLabSource("gl", GitLabConfig.model_validate(values), ctx)


def receive(src: GitLabSource, headers: dict[str, str], body: bytes) -> list[Any]:
    src.verify_webhook(headers, body)
    return list(src.parse_webhook(headers, body))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_the_secret_token_is_compared_in_constant_time() -> None:
    src = source()
    headers, body = delivery("push_hook.json")
    src.verify_webhook(headers, body)
    src.verify_webhook({key.lower(): value for key, value in headers.items()}, body)  # header names are case-blind
    with pytest.raises(WebhookRejected, match="does not match"):
        src.verify_webhook({**headers, "X-Gitlab-Token": "guess"}, body)
    with pytest.raises(WebhookRejected, match="missing X-Gitlab-Token"):
        src.verify_webhook({"X-Gitlab-Event": "Push Hook"}, body)
    with pytest.raises(WebhookRejected, match="is configured"):
        source(webhook_secret=None).verify_webhook(headers, body)


def test_a_signature_is_required_once_a_signing_token_is_set() -> None:
    src = source(webhook_signing_token=SIGNING)
    headers, body = signed("deployment_hook.success.json")
    src.verify_webhook(headers, body)
    rotating = {**headers, "webhook-signature": "v1,b2xkLXNpZ25hdHVyZQ== " + headers["webhook-signature"]}
    src.verify_webhook(rotating, body)  # several signatures while the token is rotated: one must match
    with pytest.raises(WebhookRejected, match="does not match"):
        src.verify_webhook(headers, body + b" ")
    with pytest.raises(WebhookRejected, match="does not match"):
        src.verify_webhook(*signed("deployment_hook.success.json", key="whsec_" + base64.b64encode(b"k" * 32).decode()))
    with pytest.raises(WebhookRejected, match="5 minutes"):
        src.verify_webhook(*signed("deployment_hook.success.json", at=int(time.time()) - 3600))
    with pytest.raises(WebhookRejected, match="missing webhook-id"):
        src.verify_webhook(*delivery("deployment_hook.success.json"))  # the secret token alone is not enough now
    forged = {**headers, "webhook-id": "another-id"}  # the id is signed too
    with pytest.raises(WebhookRejected, match="does not match"):
        src.verify_webhook(forged, body)


def test_a_deployment_hook_is_a_deployment() -> None:
    [deployment] = receive(source(), *delivery("deployment_hook.success.json"))
    assert isinstance(deployment, Deployment)
    assert (deployment.id, deployment.status, deployment.service) == ("15", "success", "test-deployment-webhooks")
    # "2021-04-28 21:50:00 +0200" is not ISO 8601; it is 19:50 UTC.
    assert deployment.finished_at == deployment.started_at == at("2021-04-28T19:50:00+00:00")
    assert deployment.commit_sha == "279484c09fbe69ededfced8c1bb6e6d24616b468"  # from commit_url, not short_sha
    assert (deployment.environment, deployment.labels["gitlab_environment"]) == ("staging", "staging")
    assert deployment.url == "http://10.126.0.2:3000/root/test-deployment-webhooks/-/jobs/796"
    assert deployment.change_ids == []  # the next collection attributes the commits (compare API)
    assert deployment.updated_at == at("2021-04-28T19:50:00+00:00")  # status_changed_at: its version


@pytest.mark.parametrize(
    ("status", "expected"), [("running", "running"), ("failed", "failure"), ("canceled", "cancelled")]
)
def test_deployment_hook_statuses_and_the_production_tier(status: str, expected: str) -> None:
    body = payload("deployment_hook.success.json")
    body.update(status=status, environment="eu-live", environment_tier="production")
    [deployment] = receive(source(), *delivery("deployment_hook.success.json", json.dumps(body).encode()))
    assert (deployment.status, deployment.environment) == (expected, "production")
    assert (deployment.finished_at is None) == (expected == "running")


def test_issue_hooks_for_incidents_and_labelled_issues_are_incidents() -> None:
    headers, body = delivery("issue_hook.open.json")
    assert receive(source(), headers, body) == []  # an ordinary issue, labelled "API"
    [incident] = receive(source(incident_label="api"), headers, body)  # labels match case-blind
    assert isinstance(incident, Incident)
    assert incident.id == "gitlabhq/gitlab-test#23"
    assert (incident.started_at, incident.resolved_at) == (at("2013-12-03T17:15:43+00:00"), None)
    assert (incident.severity, incident.caused_by, incident.service) == ("high", None, "gitlab-test")
    assert (incident.title, incident.url) == (
        "New API: create/update/delete file",
        "http://example.com/diaspora/issues/23",
    )
    assert incident.updated_at == at("2013-12-03T17:15:43+00:00")  # object_attributes.updated_at

    # GitLab 17+ sends incidents as work items; the type says Incident.
    work_item = payload("issue_hook.open.json")
    work_item.update(object_kind="work_item", event_type="work_item")
    attributes = work_item["object_attributes"]
    attributes.update(type="Incident", state="closed", action="close", closed_at="2013-12-04 09:15:43 UTC")
    attributes["description"] += "\n\nCaused-by: 15"
    [incident] = receive(source(), *delivery("issue_hook.open.json", json.dumps(work_item).encode()))
    assert (incident.resolved_at, incident.caused_by) == (at("2013-12-04T09:15:43+00:00"), "15")


@pytest.mark.parametrize("name", ["push_hook.json", "merge_request_hook.open.json", "pipeline_hook.success.json"])
def test_other_events_are_acknowledged_and_ignored(name: str) -> None:
    assert receive(source(), *delivery(name)) == []


def test_projects_not_collected_are_ignored_and_mangled_deliveries_rejected() -> None:
    assert receive(source(projects=["acme/other"]), *delivery("deployment_hook.success.json")) == []
    body = payload("deployment_hook.success.json")
    del body["status_changed_at"]
    with pytest.raises(WebhookRejected, match="status_changed_at"):
        receive(source(), *delivery("deployment_hook.success.json", json.dumps(body).encode()))


def _table(**overrides: Any) -> dict[str, Any]:
    return {"kind": "gitlab", "token": "glpat-x", "projects": PROJECTS, "webhook_secret": SECRET, **overrides}


async def _api(hub: MetricHub) -> httpx.AsyncClient:
    from metrichub_core.api.app import create_app

    transport = httpx.ASGITransport(app=create_app(hub, schedule=False))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.mark.parametrize("signing", [False, True], ids=["secret-token", "signature"])
async def test_webhooks_through_the_api_store_only_verified_deliveries_once(signing: bool) -> None:
    table = _table(webhook_signing_token=SIGNING) if signing else _table()
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources={"gl": table}))
    sign = signed if signing else delivery
    async with await _api(hub) as client:
        headers, body = sign("deployment_hook.success.json")
        bad = {**headers, "webhook-signature": "v1,AAAA"} if signing else {**headers, "X-Gitlab-Token": "wrong"}
        for wrong in (bad, {"X-Gitlab-Event": "Deployment Hook"}):
            answer = await client.post("/api/v1/webhooks/gl", content=body, headers=wrong)
            assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"
        assert (await client.get("/api/v1/deployments")).json()["data"]["items"] == []
        for _ in range(2):  # GitLab retries with the same Idempotency-Key: stored once
            good = await client.post("/api/v1/webhooks/gl", content=body, headers=headers)
            assert good.status_code == 200, good.text
        assert good.json()["data"]["duplicate"] is True
        [stored] = (await client.get("/api/v1/deployments")).json()["data"]["items"]
        assert (stored["id"], stored["status"]) == ("15", "success")
        for name in (
            "push_hook.json",
            "merge_request_hook.open.json",
            "pipeline_hook.success.json",
            "issue_hook.open.json",
        ):
            answer = await client.post("/api/v1/webhooks/gl", content=sign(name)[1], headers=sign(name)[0])
            assert answer.status_code == 200 and answer.json()["data"]["events"] == 0, (
                name
            )  # 2xx: GitLab keeps the hook
        assert (await client.get("/api/v1/incidents")).json()["data"]["items"] == []
    await hub.close()


async def test_different_deliveries_sharing_an_event_uuid_are_both_stored() -> None:
    """X-Gitlab-Event-UUID is GitLab's recursion-detection id, shared by several deliveries: the host
    deduplicates by Idempotency-Key (= webhook-id), the per-delivery id that stays the same across retries."""
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources={"gl": _table(incident_label="API")}))
    async with await _api(hub) as client:
        deployment = delivery("deployment_hook.success.json", uuid="shared-event")
        issue = delivery("issue_hook.open.json", uuid="shared-event")
        issue[0]["Idempotency-Key"] = issue[0]["X-Gitlab-Webhook-UUID"] = "another-delivery"
        for headers, body in (deployment, issue):
            assert (await client.post("/api/v1/webhooks/gl", content=body, headers=headers)).status_code == 200
        assert len((await client.get("/api/v1/incidents")).json()["data"]["items"]) == 1
    await hub.close()


async def test_webhooks_use_the_collected_state(gitlab: FakeGitLab, history_factory: Any) -> None:
    """A ``Caused-by: <sha>`` resolves to the collected deployment; a late success delivery keeps its changes."""
    project = "gitlabhq/gitlab-test"
    history = history_factory()
    history.change(project)
    history.deploy(project, "production", "success")
    history.change(project)
    shipped = history.deploy(project, "production", "success")
    table = _table(base_url=gitlab.base_url, token=gitlab.token, projects=[project], incident_label="API")
    table["policy"] = {"rate_limit_per_second": 1000}
    issue = payload("issue_hook.open.json")
    issue["object_attributes"]["description"] += f"\r\n\r\nCaused-by: {shipped['sha'][:12]}"
    late = payload("deployment_hook.success.json")  # GitLab redelivers the success hook after the collection
    late.update(deployment_id=shipped["id"], environment="production", environment_tier="production")
    late["project"]["path_with_namespace"] = project
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources={"gl": table}))
    async with await _api(hub) as client:

        async def deliver(name: str, body: dict[str, Any], uuid: str) -> None:
            headers, content = delivery(name, json.dumps(body).encode(), uuid=uuid)
            assert (await client.post("/api/v1/webhooks/gl", content=content, headers=headers)).status_code == 200

        async def caused_by() -> str:
            [incident] = (await client.get("/api/v1/incidents")).json()["data"]["items"]
            return str(incident["caused_by"])

        await deliver("issue_hook.open.json", issue, "before")
        assert await caused_by() == shipped["sha"][:12]  # no collection yet: kept as written
        [result] = await hub.collect()
        assert result.ok, result.error
        await deliver("issue_hook.open.json", issue, "after")
        assert await caused_by() == str(shipped["id"])
        await deliver("deployment_hook.success.json", late, "late")
        deployments = (await client.get("/api/v1/deployments")).json()["data"]["items"]
        stored = next(item for item in deployments if item["id"] == str(shipped["id"]))
        assert stored["change_ids"] == history.truth.deployments[str(shipped["id"])]["change_ids"] != []
    await hub.close()
