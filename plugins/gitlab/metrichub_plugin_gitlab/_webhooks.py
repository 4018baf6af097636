"""Webhook deliveries: secret-token or Standard Webhooks signature verification, and event mapping."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr, ValidationError

from metrichub_core import Event
from metrichub_core.sources import WebhookRejected
from metrichub_plugin_gitlab._config import GitLabConfig, signing_key
from metrichub_plugin_gitlab._deployments import DeploymentRecord, to_deployment
from metrichub_plugin_gitlab._incidents import hook_is_incident, to_incident
from metrichub_plugin_gitlab._state import ProjectState

__all__ = ["SIGNATURE_TOLERANCE_SECONDS", "parse_delivery", "verify_delivery"]

SIGNATURE_TOLERANCE_SECONDS = 300  # Standard Webhooks: refuse timestamps further than 5 minutes away (replays)


def verify_delivery(config: GitLabConfig, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
    """Raise ``WebhookRejected`` unless the delivery is GitLab's.

    With ``webhook_signing_token``: ``webhook-signature`` must hold ``v1,<base64 HMAC-SHA256 of
    "{webhook-id}.{webhook-timestamp}.{body}">`` (Standard Webhooks) for a timestamp within 5
    minutes. Otherwise ``X-Gitlab-Token`` must equal ``webhook_secret`` (constant-time).
    """
    headers = _lowered(headers)
    if config.webhook_signing_token is not None:
        _verify_signature(config.webhook_signing_token, headers, body, time.time() if now is None else now)
        return
    if config.webhook_secret is None:
        raise WebhookRejected("neither webhook_secret nor webhook_signing_token is configured for this source")
    token = headers.get("x-gitlab-token")
    if token is None:
        raise WebhookRejected("missing X-Gitlab-Token header")
    if not hmac.compare_digest(config.webhook_secret.get_secret_value().encode(), token.encode()):
        raise WebhookRejected("X-Gitlab-Token does not match webhook_secret")


def _verify_signature(token: SecretStr, headers: Mapping[str, str], body: bytes, now: float) -> None:
    delivery, stamp, signatures = (headers.get(name) for name in _SIGNED_HEADERS)
    if not delivery or not stamp or not signatures:
        raise WebhookRejected("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        sent_at = int(stamp.strip())
    except ValueError:
        raise WebhookRejected("webhook-timestamp is not a number") from None
    if abs(now - sent_at) > SIGNATURE_TOLERANCE_SECONDS:
        raise WebhookRejected("webhook-timestamp is more than 5 minutes away (a replay, or a clock far off)")
    signed = f"{delivery}.{stamp.strip()}.".encode() + body
    expected = base64.b64encode(hmac.new(signing_key(token), signed, hashlib.sha256).digest())
    for candidate in signatures.split():  # several "v1,<sig>" while a token is being rotated
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(expected, value.encode()):
            return
    raise WebhookRejected("webhook-signature does not match the payload")


_SIGNED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lower-cased: the API hands Starlette's case-blind headers, tests plain dicts."""
    return {name.lower(): value for name, value in headers.items()}


def parse_delivery(
    config: GitLabConfig,
    source: str,
    headers: Mapping[str, str],
    body: bytes,
    project_state: Callable[[str], ProjectState],
) -> list[Event]:
    """Events of a verified delivery: deployments and incident issues; anything else gives ``[]``.

    GitLab disables a hook that answers 4xx, so unknown events and projects are acknowledged.
    """
    event = (_lowered(headers).get("x-gitlab-event") or "").strip()
    try:
        payload = json.loads(body)
    except ValueError as exc:
        if event in _HOOK_NAMES:
            raise WebhookRejected(f"the {event} delivery is not JSON: {exc}") from None
        return []
    if not isinstance(payload, dict):
        return []
    # By object_kind: incidents may come as "work_item" rather than "issue" (GitLab 17+).
    handler = _HANDLERS.get(str(payload.get("object_kind", "")))
    if handler is None:
        return []
    project = config.configured_project(str((payload.get("project") or {}).get("path_with_namespace", "")))
    if project is None:
        return []  # a project this source does not collect (e.g. a group hook's other projects)
    try:
        return handler(config, payload, project, source, project_state(project))
    except ValidationError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise WebhookRejected(f"the {event} delivery lacks or mangles a field GitLab always sends ({exc!r})") from None


def _deployment(
    config: GitLabConfig, payload: dict[str, Any], project: str, source: str, state: ProjectState
) -> list[Event]:
    record = DeploymentRecord.from_hook(project, payload)
    if record is None:
        return []  # skipped
    if record.status == "success" and state.collected_success(record.environment_name, record.id):
        return []  # a late delivery: the collection already stored it with its changes, which this would erase
    environment = config.environment_of(record.environment_name, payload.get("environment_tier"))
    return [to_deployment(record, source=source, service=config.service_of(project), environment=environment)]


def _issue(
    config: GitLabConfig, payload: dict[str, Any], project: str, source: str, state: ProjectState
) -> list[Event]:
    if not hook_is_incident(payload, config.incident_label):
        return []
    attributes = payload["object_attributes"]
    incident = to_incident(
        attributes,
        project=project,
        source=source,
        service=config.service_of(project),
        resolve_deployment=state.resolve,
        url_key="url",
    )
    return [incident]


_HANDLERS: dict[str, Callable[[GitLabConfig, dict[str, Any], str, str, ProjectState], list[Event]]] = {
    "deployment": _deployment,
    "issue": _issue,
    "work_item": _issue,
}
_HOOK_NAMES = frozenset({"Deployment Hook", "Issue Hook", "Confidential Issue Hook"})
