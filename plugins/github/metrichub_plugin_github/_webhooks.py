"""Webhook deliveries: ``X-Hub-Signature-256`` verification and event mapping."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

from pydantic import ValidationError

from metrichub_core import Event
from metrichub_core.sources import WebhookRejected
from metrichub_plugin_github._changes import push_changes
from metrichub_plugin_github._config import GitHubConfig
from metrichub_plugin_github._deployments import (
    Outcome,
    RunRecord,
    parse_time,
    run_outcome,
    status_time,
    to_deployment,
)
from metrichub_plugin_github._incidents import has_label, to_incident

__all__ = ["header", "parse_delivery", "verify_signature"]


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for plain dicts too."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((item for key, item in headers.items() if key.lower() == lowered), None)


def verify_signature(secret: str | None, headers: Mapping[str, str], body: bytes) -> None:
    """Raise ``WebhookRejected`` unless ``X-Hub-Signature-256`` is the HMAC-SHA256 of ``body``."""
    if not secret:
        raise WebhookRejected("webhook_secret is not configured for this source")
    signature = header(headers, "X-Hub-Signature-256")
    if not signature:
        raise WebhookRejected("missing X-Hub-Signature-256 header")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise WebhookRejected("X-Hub-Signature-256 does not match the payload")


def parse_delivery(
    config: GitHubConfig,
    source: str,
    headers: Mapping[str, str],
    body: bytes,
    resolve_deployment: Callable[[str, str], str],
) -> list[Event]:
    """Events of a verified delivery; ``ping`` and unrelated events give ``[]``."""
    event = (header(headers, "X-GitHub-Event") or "").strip()
    if event in ("", "ping"):
        return []
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected(f"the {event} delivery is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(f"the {event} delivery is not a JSON object")
    repository = config.configured_repository(str((payload.get("repository") or {}).get("full_name", "")))
    if repository is None:
        return []  # a repository this source does not collect
    service = config.service_of(repository)
    handler = _HANDLERS.get(event)
    if handler is None:
        return []
    try:
        return handler(config, payload, repository, source, service, resolve_deployment)
    except ValidationError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise WebhookRejected(f"the {event} delivery lacks or mangles a field GitHub always sends ({exc!r})") from None


def _deployment_status(
    config: GitHubConfig, payload: dict[str, Any], repository: str, source: str, service: str, _: Any
) -> list[Event]:
    if config.deployments_from != "deployments":
        return []
    status = payload.get("deployment_status") or {}
    state = status.get("state")
    if state == "inactive":
        return []  # a superseded success: the success itself was already reported
    url = status.get("log_url") or status.get("target_url") or None
    updated_at = status_time(status)  # a replayed older status never replaces a newer one
    if state == "success":
        outcome = Outcome("success", parse_time(status["created_at"]), final=True, url=url, updated_at=updated_at)
    elif state in ("failure", "error"):
        outcome = Outcome("failure", parse_time(status["created_at"]), final=True, url=url, updated_at=updated_at)
    else:
        outcome = Outcome("running", None, final=False, url=url, updated_at=updated_at)
    record = RunRecord.from_deployment(repository, payload["deployment"], outcome)
    environment = config.environment_of(record.environment_name)
    return [to_deployment(record, source=source, service=service, environment=environment)]


def _workflow_run(
    config: GitHubConfig, payload: dict[str, Any], repository: str, source: str, service: str, _: Any
) -> list[Event]:
    run = payload.get("workflow_run") or {}
    if config.deployments_from != "workflow_runs" or payload.get("action") != "completed":
        return []
    if not _is_configured_workflow(config.workflow or "", run, payload.get("workflow") or {}):
        return []
    outcome = run_outcome(run)
    if outcome is None:
        return []
    record = RunRecord.from_run(repository, run, outcome)
    return [to_deployment(record, source=source, service=service, environment="production")]


def _is_configured_workflow(workflow: str, run: dict[str, Any], definition: dict[str, Any]) -> bool:
    if workflow == str(run.get("workflow_id", "")):
        return True
    path = run.get("path") or definition.get("path") or ""
    return bool(path) and PurePosixPath(path.split("@", 1)[0]).name == workflow


def _issues(
    config: GitHubConfig,
    payload: dict[str, Any],
    repository: str,
    source: str,
    service: str,
    resolve_deployment: Callable[[str, str], str],
) -> list[Event]:
    issue = payload.get("issue") or {}
    if not has_label(issue, config.incident_label):
        return []
    return [
        to_incident(
            issue,
            repository=repository,
            source=source,
            service=service,
            resolve_deployment=lambda reference: resolve_deployment(repository, reference),
        )
    ]


def _push(
    config: GitHubConfig, payload: dict[str, Any], repository: str, source: str, service: str, _: Any
) -> list[Event]:
    if not str(payload.get("ref", "")).startswith("refs/heads/"):
        return []
    return list(push_changes(payload, source=source, service=service))


_HANDLERS: dict[str, Callable[..., list[Event]]] = {
    "deployment_status": _deployment_status,
    "workflow_run": _workflow_run,
    "issues": _issues,
    "push": _push,
}
