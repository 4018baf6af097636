"""PagerDuty v3 webhooks: ``X-PagerDuty-Signature`` verification and incident events.

PagerDuty signs the raw body with every secret of the subscription (several while one
rotates) and sends ``v1=<hex>`` values separated by commas. An ``incident.*`` event's
``data`` is the incident without ``resolved_at``: the resolution time is the
``occurred_at`` of ``incident.resolved``. PagerDuty queues a resource's deliveries behind
a failing one, so an incident's events arrive in order. A 4xx makes PagerDuty drop the
event (three drops disable the subscription for a day), so events this source does not
use are acknowledged with ``[]``, never refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from metrichub_core import Event
from metrichub_core.sources import WebhookRejected
from metrichub_plugin_pagerduty._config import PagerDutyConfig
from metrichub_plugin_pagerduty._incidents import body_reference, parse_time, to_incident
from metrichub_plugin_pagerduty._state import PagerDutyState

__all__ = ["INCIDENT_EVENTS", "SIGNATURE_HEADER", "parse_event", "verify_signature"]

SIGNATURE_HEADER = "X-PagerDuty-Signature"
INCIDENT_EVENTS = frozenset(
    {
        "incident.triggered",
        "incident.acknowledged",
        "incident.reopened",
        "incident.resolved",
        "incident.priority_updated",
    }
)


def verify_signature(secrets: Sequence[str], headers: Mapping[str, str], body: bytes) -> None:
    """Raise ``WebhookRejected`` unless some ``v1=`` signature is the HMAC-SHA256 of ``body`` under some secret.

    Every comparison runs (constant time each, no early exit on a match), so the time taken
    does not tell which secret or which signature matched.
    """
    if not secrets:
        raise WebhookRejected("webhook_secrets is not configured for this source")
    header = httpx.Headers(headers).get(SIGNATURE_HEADER)  # case-blind, for plain dicts too
    if not header:
        raise WebhookRejected(f"missing {SIGNATURE_HEADER} header")
    sent = [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]
    if not sent:
        raise WebhookRejected(f"{SIGNATURE_HEADER} has no v1 signature")
    expected = [hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() for secret in secrets]
    matched = False
    for signature in sent:
        for digest in expected:
            matched |= hmac.compare_digest(digest.encode(), signature.lower().encode())
    if not matched:
        raise WebhookRejected(f"{SIGNATURE_HEADER} does not match the payload")


def parse_event(
    config: PagerDutyConfig, source: str, state: PagerDutyState, body: bytes, logger: logging.Logger
) -> list[Event]:
    """The incident a verified delivery updates; ``[]`` for events and services this source does not use."""
    try:
        payload = json.loads(body)
        event = payload["event"]
        event_type = str(event.get("event_type", ""))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WebhookRejected(f"not a v3 webhook payload ({exc!r})") from None
    if event_type not in INCIDENT_EVENTS:
        return []
    data = event.get("data")
    if not isinstance(data, dict) or data.get("type") != "incident" or not data.get("id"):
        raise WebhookRejected(f"the {event_type} event has no incident in event.data")
    try:
        return _incident_event(config, source, state, event_type, event, data, logger)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WebhookRejected(f"the {event_type} event lacks or mangles a field PagerDuty sends ({exc!r})") from None


def _incident_event(
    config: PagerDutyConfig,
    source: str,
    state: PagerDutyState,
    event_type: str,
    event: dict[str, Any],
    data: dict[str, Any],
    logger: logging.Logger,
) -> list[Event]:
    incident_id = str(data["id"])
    known = state.open.get(incident_id)
    service_id = (data.get("service") or {}).get("id") or (known.service if known else None)
    service = config.services.get(str(service_id)) if service_id else None
    if service is None:
        logger.info(
            "%s: %s for incident %s of unmapped service %s ignored", source, event_type, incident_id, service_id
        )
        return []
    if not config.wants_urgency(data.get("urgency")):
        return []
    occurred_at = parse_time(str(event["occurred_at"]))
    resolved_at: datetime | None
    if event_type == "incident.resolved":
        resolved_at = occurred_at
    elif data.get("status") == "resolved" and event_type != "incident.reopened":
        # e.g. a priority change after resolution: the payload has no resolution time, and
        # storing the incident without one would reopen it; the next collection reads it.
        logger.info("%s: %s for resolved incident %s left to the next collection", source, event_type, incident_id)
        return []
    else:
        resolved_at = None  # triggered, acknowledged, reopened (cleared), priority changed while open
    created = data.get("created_at") or (known.created_at if known else None)
    if created:
        started_at = parse_time(str(created))
    elif event_type == "incident.triggered":
        started_at = occurred_at  # triggering creates the incident
    else:
        logger.warning("%s: %s for incident %s without created_at ignored", source, event_type, incident_id)
        return []
    incident = to_incident(
        data,
        source=source,
        service=service,
        environment=config.environment,
        deployment_related=config.deployment_related,
        started_at=started_at,
        resolved_at=resolved_at,
        caused_by=body_reference(data) or state.caused_by.get(incident_id),
        updated_at=occurred_at,
    )
    return [incident]
