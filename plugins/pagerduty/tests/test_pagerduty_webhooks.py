"""v3 webhooks: PagerDuty's own example payloads, signed here, verified and mapped to incidents."""

from __future__ import annotations

import copy
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from metrichub_plugin_pagerduty import PagerDutyConfig, PagerDutySource
from metrichub_plugin_pagerduty._incidents import updated_at_of
from pagerduty_fake import SERVICES, FakePagerDuty, at, make_incident, now_s, sign, table, webhook_payload

from metrichub_core import Incident, MetricHub, SourceContext
from metrichub_core.config import Settings
from metrichub_core.sources import WebhookRejected

HOOKS = Path(__file__).parent / "fixtures" / "webhooks"
OLD, NEW = "whsec-old-0123456789", "whsec-new-9876543210"
MAPPED = {"PF9KMXH": "api", **SERVICES}  # PF9KMXH: the service of PagerDuty's examples


def source(state: dict[str, Any] | None = None, **overrides: Any) -> PagerDutySource:
    values: dict[str, Any] = {"token": "pd-token", "services": MAPPED, "webhook_secrets": [OLD, NEW], **overrides}
    ctx = SourceContext(http=httpx.AsyncClient(), logger=logging.getLogger("test.pagerduty"), state=state or {})
    return PagerDutySource("pd", PagerDutyConfig.model_validate(values), ctx)


def example() -> bytes:
    return (HOOKS / "incident.priority_updated.json").read_bytes()


def event(event_type: str, **data: Any) -> bytes:
    """PagerDuty's example delivery as another incident event, its incident data changed by ``data``."""
    payload = json.loads(example())
    payload["event"]["event_type"] = event_type
    payload["event"]["data"].update(data)
    return json.dumps(payload).encode()


def receive(src: PagerDutySource, body: bytes, signature: str | None = None) -> list[Any]:
    headers = {"X-PagerDuty-Signature": signature or sign(body, NEW), "Content-Type": "application/json"}
    src.verify_webhook(headers, body)
    return list(src.parse_webhook(headers, body))


def test_the_signature_is_any_v1_hmac_of_the_raw_body_under_any_secret() -> None:
    src, body = source(), example()
    src.verify_webhook({"X-PagerDuty-Signature": sign(body, NEW)}, body)
    src.verify_webhook({"x-pagerduty-signature": sign(body, OLD)}, body)  # either secret, header name case-blind
    src.verify_webhook({"X-PagerDuty-Signature": sign(body, "unknown", NEW)}, body)  # rotation: two values
    src.verify_webhook({"X-PagerDuty-Signature": sign(body, NEW).upper().replace("V1=", "v1=")}, body)
    src.verify_webhook({"X-PagerDuty-Signature": "v0=abc, " + sign(body, OLD)}, body)
    with pytest.raises(WebhookRejected, match="does not match"):
        src.verify_webhook({"X-PagerDuty-Signature": sign(body, NEW)}, body + b" ")  # the raw body, not re-encoded
    with pytest.raises(WebhookRejected, match="does not match"):
        src.verify_webhook({"X-PagerDuty-Signature": sign(body, "unknown", "other")}, body)
    with pytest.raises(WebhookRejected, match="no v1"):
        src.verify_webhook({"X-PagerDuty-Signature": "v2=" + "0" * 64}, body)
    with pytest.raises(WebhookRejected, match="missing"):
        src.verify_webhook({}, body)
    with pytest.raises(WebhookRejected, match="not configured"):
        source(webhook_secrets=[]).verify_webhook({"X-PagerDuty-Signature": sign(body, NEW)}, body)


def test_priority_updated_example_is_an_open_incident_with_the_priority_as_severity() -> None:
    [incident] = receive(source(), example())
    assert isinstance(incident, Incident)
    assert (incident.id, incident.source, incident.service) == ("PGR0VU2", "pd", "api")
    assert incident.started_at == at("2020-04-09T15:16:27Z") and incident.resolved_at is None
    assert (incident.severity, incident.title) == ("P1", "A little bump in the road")
    assert incident.url == "https://acme.pagerduty.com/incidents/PGR0VU2"
    assert (incident.environment, incident.deployment_related, incident.caused_by) == ("production", True, None)
    assert incident.updated_at == at("2020-10-02T18:45:22.169Z")  # event.occurred_at: data has no updated_at


def test_a_rest_incident_is_as_new_as_its_updated_at() -> None:
    [item] = json.loads((HOOKS.parent / "rest" / "list_incidents.json").read_text())["incidents"]
    assert updated_at_of(item) == at("2015-10-06T21:40:23Z")
    assert updated_at_of({**item, "updated_at": None}) == at("2015-10-06T21:38:23Z")  # last_status_change_at
    assert updated_at_of({"id": "P1"}) is None


def test_resolved_sets_resolved_at_to_the_event_time_and_reopened_clears_it() -> None:
    [resolved] = receive(source(), event("incident.resolved", status="resolved"))
    assert resolved.resolved_at == at("2020-10-02T18:45:22.169Z")  # event.occurred_at: data has no resolved_at
    [reopened] = receive(source(), event("incident.reopened", status="triggered"))
    assert reopened.resolved_at is None
    for kind, status in (("incident.triggered", "triggered"), ("incident.acknowledged", "acknowledged")):
        [incident] = receive(source(), event(kind, status=status))
        assert incident.resolved_at is None and incident.started_at == at("2020-04-09T15:16:27Z")


def test_severity_falls_back_to_the_urgency() -> None:
    [incident] = receive(source(), event("incident.triggered", priority=None, urgency="low"))
    assert incident.severity == "low"
    assert receive(source(urgencies=["high"]), event("incident.triggered", urgency="low")) == []


@pytest.mark.parametrize(
    "event_type",
    ["incident.annotated", "incident.unacknowledged", "incident.escalated", "service.updated", "pagey.ping"],
)
def test_other_events_are_acknowledged_and_ignored(event_type: str) -> None:
    assert receive(source(), event(event_type)) == []


def test_an_unmapped_service_or_a_change_to_a_resolved_incident_gives_nothing() -> None:
    assert receive(source(services={"POTHER1": "x"}), example()) == []
    # The payload of a priority change after resolution carries no resolution time: not stored.
    assert receive(source(), event("incident.priority_updated", status="resolved")) == []


def test_partial_incident_data_is_completed_from_the_collected_state() -> None:
    """No created_at or service in the payload: the state the last collection saved has them (and the cause)."""
    state = {
        "version": 1,
        "scope": {},
        "open": {"PGR0VU2": {"created_at": "2020-04-09T15:16:27Z", "service": "PF9KMXH"}},
        "caused_by": {"PGR0VU2": "4711"},
    }
    payload = json.loads(example())
    data = payload["event"]["data"]
    for key in ("created_at", "service", "priority", "title"):
        del data[key]
    payload["event"]["event_type"] = "incident.resolved"
    body = json.dumps(payload).encode()
    [incident] = receive(source(state), body)
    assert (incident.service, incident.started_at) == ("api", at("2020-04-09T15:16:27Z"))
    assert (incident.caused_by, incident.severity, incident.title) == ("4711", "high", None)
    assert incident.resolved_at == at("2020-10-02T18:45:22.169Z")
    assert receive(source(), body) == []  # unknown without the state: nothing to store, still acknowledged
    triggered = copy.deepcopy(payload)
    triggered["event"]["event_type"] = "incident.triggered"
    triggered["event"]["data"]["service"] = {"id": "PF9KMXH"}
    [new] = receive(source(), json.dumps(triggered).encode())
    assert new.started_at == at("2020-10-02T18:45:22.169Z")  # triggering created it


def test_a_mangled_delivery_is_rejected_not_a_crash() -> None:
    with pytest.raises(WebhookRejected, match="not a v3 webhook"):
        receive(source(), b"[1, 2]")
    with pytest.raises(WebhookRejected, match="no incident"):
        receive(source(), event("incident.resolved", type="incident_reference"))
    with pytest.raises(WebhookRejected, match="mangles"):
        receive(source(), event("incident.triggered", created_at="yesterday"))


async def test_webhooks_through_the_api_store_only_verified_deliveries() -> None:
    from metrichub_core.api.app import create_app

    pd = {"kind": "pagerduty", "token": "pd-token", "services": MAPPED, "webhook_secrets": [OLD, NEW]}
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources={"pd": pd}))
    app = create_app(hub, schedule=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:

        async def deliver(body: bytes, signature: str) -> httpx.Response:
            return await client.post("/api/v1/webhooks/pd", content=body, headers={"X-PagerDuty-Signature": signature})

        async def stored() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = (await client.get("/api/v1/incidents")).json()["data"]["items"]
            return items

        body = example()
        assert (await deliver(body, sign(body, "attacker"))).status_code == 401
        assert (await deliver(body, "")).status_code == 401
        assert await stored() == []
        good = await deliver(body, sign(body, OLD, NEW))  # during a rotation PagerDuty signs with both
        assert good.status_code == 200, good.text
        [incident] = await stored()
        assert (incident["id"], incident["severity"], incident["resolved_at"]) == ("PGR0VU2", "P1", None)
        resolved = event("incident.resolved", status="resolved")
        assert (await deliver(resolved, sign(resolved, NEW))).status_code == 200
        [incident] = await stored()
        assert at(incident["resolved_at"]) == at("2020-10-02T18:45:22.169Z")
        tampered = resolved.replace(b"2020-10-02T18:45:22.169Z", b"2020-10-02T18:45:23.169Z")
        assert (await deliver(tampered, sign(resolved, NEW))).status_code == 401
        [incident] = await stored()
        assert at(incident["resolved_at"]) == at("2020-10-02T18:45:22.169Z")  # the bad one changed nothing
        reopened = event("incident.reopened", status="triggered")
        assert (await deliver(reopened, sign(reopened, NEW))).status_code == 200
        [incident] = await stored()
        assert incident["resolved_at"] is None
        ignored = event("incident.annotated")
        answer = await deliver(ignored, sign(ignored, NEW))
        assert answer.status_code == 200 and answer.json()["data"]["events"] == 0
    await hub.close()


async def test_a_webhook_keeps_the_caused_by_that_collection_read_from_notes(pagerduty: FakePagerDuty) -> None:
    """The API parses a delivery with the state the last collection saved: the cause read from notes stays."""
    from metrichub_core.api.app import create_app

    now = now_s()
    incident = make_incident(7, service="PCHK001", created=now - timedelta(hours=5), resolved=now - timedelta(hours=4))
    pagerduty.add(incident)
    pagerduty.note(incident["id"], "Bad config push.\nCaused-by: 5150", now - timedelta(hours=4))
    settings = Settings(storage="memory://", sources={"pd": table(pagerduty.url, webhook_secrets=[NEW])})
    hub = MetricHub("memory://", settings=settings)
    transport = httpx.ASGITransport(app=create_app(hub, schedule=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        [result] = await hub.collect()
        assert result.ok, result.error
        body = json.dumps(webhook_payload("incident.reopened", {**incident, "status": "triggered"}, now)).encode()
        answer = await client.post(
            "/api/v1/webhooks/pd", content=body, headers={"X-PagerDuty-Signature": sign(body, NEW)}
        )
        assert answer.status_code == 200, answer.text
        [stored] = (await client.get("/api/v1/incidents")).json()["data"]["items"]
    assert (stored["id"], stored["service"], stored["caused_by"], stored["resolved_at"]) == (
        incident["id"],
        "checkout",
        "5150",
        None,
    )
    await hub.close()
