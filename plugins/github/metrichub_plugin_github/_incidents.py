"""Issues carrying the incident label → ``Incident``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from metrichub_core import Incident
from metrichub_core.shipping import caused_by_reference
from metrichub_plugin_github._deployments import optional_time, parse_time

__all__ = ["has_label", "is_pull_request", "to_incident"]

_SEVERITY = re.compile(r"^(sev[-: ]?[0-9]+|severity[-:/ ].+|p[0-4])$", re.IGNORECASE)


def has_label(issue: dict[str, Any], label: str) -> bool:
    names = {str(item.get("name", "")).lower() for item in issue.get("labels") or [] if isinstance(item, dict)}
    return label.lower() in names


def is_pull_request(issue: dict[str, Any]) -> bool:
    """The issues API returns pull requests too; they carry a ``pull_request`` key."""
    return "pull_request" in issue


def to_incident(
    issue: dict[str, Any],
    *,
    repository: str,
    source: str,
    service: str,
    resolve_deployment: Callable[[str], str] = lambda reference: reference,
) -> Incident:
    """``started_at`` = created, ``resolved_at`` = closed, ``updated_at`` = the issue's; ``Caused-by``
    names the deployment.

    ``resolve_deployment`` turns a commit SHA (or prefix) into the id of the deployment
    that shipped it, when the source knows it; a deployment id passes through.
    """
    reference = caused_by_reference(issue.get("body"))
    closed_at = issue.get("closed_at") if issue.get("state") == "closed" else None
    severity = next(
        (str(item["name"]) for item in issue.get("labels") or [] if _SEVERITY.match(str(item.get("name", "")))),
        None,
    )
    return Incident(
        id=f"{repository}#{issue['number']}",
        source=source,
        service=service,
        started_at=parse_time(issue["created_at"]),
        resolved_at=parse_time(closed_at) if closed_at else None,
        severity=severity,
        caused_by=resolve_deployment(reference) if reference else None,
        title=issue.get("title"),
        url=issue.get("html_url"),
        updated_at=optional_time(issue.get("updated_at")),  # a replayed "opened" never reopens a closed one
    )
