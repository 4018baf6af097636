"""Incident issues (REST items and ``Issue Hook`` deliveries) → ``Incident``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from metrichub_core import Incident
from metrichub_core.shipping import caused_by_reference
from metrichub_plugin_gitlab._deployments import parse_time

__all__ = ["hook_is_incident", "is_incident", "to_incident"]


def _label_names(labels: Any) -> set[str]:
    """REST gives label names; hooks give label objects with a ``title``."""
    names: set[str] = set()
    for label in labels or []:
        name = label.get("title") or label.get("name") if isinstance(label, dict) else label
        if name:
            names.add(str(name).lower())
    return names


def is_incident(issue: dict[str, Any], incident_label: str | None) -> bool:
    """A REST issue of type incident, or one carrying ``incident_label``."""
    if str(issue.get("issue_type", "")).lower() == "incident":
        return True
    return incident_label is not None and incident_label.lower() in _label_names(issue.get("labels"))


def hook_is_incident(payload: dict[str, Any], incident_label: str | None) -> bool:
    """An ``Issue Hook`` (``object_kind`` ``issue`` or ``work_item``) for an incident or a labelled issue."""
    attributes = payload.get("object_attributes") or {}
    if str(attributes.get("type", "")).lower() == "incident" or attributes.get("issue_type") == "incident":
        return True
    labels = payload.get("labels") or attributes.get("labels")
    return incident_label is not None and incident_label.lower() in _label_names(labels)


def to_incident(
    issue: dict[str, Any],
    *,
    project: str,
    source: str,
    service: str,
    resolve_deployment: Callable[[str], str] = lambda reference: reference,
    url_key: str = "web_url",
) -> Incident:
    """``started_at`` = created, ``resolved_at`` = closed, ``updated_at`` = the issue's (a replayed older
    delivery never reopens it); a description line ``Caused-by:`` names the deployment.

    ``resolve_deployment`` turns a commit SHA (or prefix) into the id of the production
    deployment that shipped it, when the source knows it; a deployment id passes through.
    GitLab's severity is lower-cased; ``UNKNOWN`` (the default of every incident) is none.
    """
    reference = caused_by_reference(issue.get("description"))
    closed_at = issue.get("closed_at") if issue.get("state") == "closed" else None
    severity = str(issue.get("severity") or "").lower() or None
    return Incident(
        id=f"{project}#{issue['iid']}",
        source=source,
        service=service,
        started_at=parse_time(str(issue["created_at"])),
        resolved_at=parse_time(str(closed_at)) if closed_at else None,
        severity=None if severity == "unknown" else severity,
        caused_by=resolve_deployment(reference) if reference else None,
        title=issue.get("title"),
        url=issue.get(url_key),
        updated_at=parse_time(str(issue["updated_at"])) if issue.get("updated_at") else None,
    )
