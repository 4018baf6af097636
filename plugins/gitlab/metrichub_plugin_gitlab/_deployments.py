"""GitLab deployments (REST list items and ``Deployment Hook`` deliveries) → ``Deployment``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from metrichub_core import Deployment
from metrichub_core.models import DeploymentStatus

__all__ = ["FINISHED", "STATUSES", "DeploymentRecord", "parse_time", "sha_from_commit_url", "to_deployment"]

# GitLab status → ours; ``skipped`` is absent: a skipped deployment is not stored.
STATUSES: dict[str, DeploymentStatus] = {
    "success": "success",
    "failed": "failure",
    "canceled": "cancelled",
    "created": "running",
    "running": "running",
    "blocked": "running",
}
FINISHED = frozenset({"success", "failed", "canceled"})

# "2021-04-28 21:50:00 +0200" (deployment hooks) and "2017-09-15 16:50:55 UTC" (issue hooks).
_SPACED = re.compile(r"^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d(?:\.\d+)?) ?(UTC|Z|[+-]\d\d:?\d\d)$")
_COMMIT_URL = re.compile(r"/-/commit/([0-9a-fA-F]{40}|[0-9a-fA-F]{64})/?$")


def parse_time(value: str) -> datetime:
    """GitLab's timestamps as aware UTC datetimes: ISO 8601 and the hooks' ``"… +0200"``/``"… UTC"`` forms."""
    text = value.strip()
    match = _SPACED.match(text)
    if match:
        day, clock, zone = match.groups()
        zone = "+00:00" if zone in ("UTC", "Z") else f"{zone[:3]}:{zone[-2:]}"
        text = f"{day}T{clock}{zone}"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no timezone")
    return moment.astimezone(UTC)


def sha_from_commit_url(url: str | None) -> str | None:
    """The full SHA at the end of a hook's ``commit_url`` (``…/-/commit/<sha>``)."""
    match = _COMMIT_URL.search(url or "")
    return match.group(1).lower() if match else None


@dataclass
class DeploymentRecord:
    """What a ``Deployment`` is built from, whichever way GitLab reported it."""

    id: str
    project: str
    environment_name: str
    status: DeploymentStatus
    started_at: datetime
    finished_at: datetime | None
    sha: str | None
    ref: str | None
    url: str | None
    updated_at: str = ""  # GitLab's updated_at, the incremental cursor
    change_ids: list[str] = field(default_factory=list)
    changed_at: datetime | None = None
    """When GitLab last changed the deployment (``updated_at``; a hook's ``status_changed_at``): its version."""

    @classmethod
    def from_api(cls, project: str, item: dict[str, Any]) -> DeploymentRecord | None:
        """A ``GET /projects/:id/deployments`` item; ``None`` for ``skipped`` (and unknown statuses).

        There is no top-level ``finished_at``: the times are the job's (``deployable``), which
        is ``null`` for deployments created through the API; then ``created_at`` and, once
        finished, ``updated_at``.
        """
        status = STATUSES.get(str(item.get("status")))
        if status is None:
            return None
        job = item.get("deployable") or {}
        started_at = parse_time(job.get("started_at") or item["created_at"])
        finished_at = None
        if item.get("status") in FINISHED:
            finished_at = parse_time(job.get("finished_at") or item["updated_at"])
        pipeline = job.get("pipeline") or {}
        return cls(
            id=str(item["id"]),
            project=project,
            environment_name=str((item.get("environment") or {}).get("name") or "production"),
            status=status,
            started_at=started_at,
            finished_at=finished_at,
            sha=item.get("sha"),
            ref=item.get("ref"),
            url=job.get("web_url") or pipeline.get("web_url"),
            updated_at=str(item["updated_at"]),
            changed_at=parse_time(str(item["updated_at"])),
        )

    @classmethod
    def from_hook(cls, project: str, payload: dict[str, Any]) -> DeploymentRecord | None:
        """A ``Deployment Hook`` delivery: it carries only the status and when it changed."""
        status = STATUSES.get(str(payload.get("status")))
        if status is None:
            return None
        changed_at = parse_time(str(payload["status_changed_at"]))
        return cls(
            id=str(payload["deployment_id"]),
            project=project,
            environment_name=str(payload["environment"]),
            status=status,
            started_at=changed_at,  # the hook has no start time; the next collection sets the job's
            finished_at=changed_at if payload.get("status") in FINISHED else None,
            sha=sha_from_commit_url(payload.get("commit_url")) or payload.get("short_sha"),
            ref=payload.get("ref"),
            url=payload.get("deployable_url"),
            changed_at=changed_at,  # a replayed older status never replaces a newer one
        )


def to_deployment(record: DeploymentRecord, *, source: str, service: str, environment: str) -> Deployment:
    labels = {"project": record.project, "gitlab_environment": record.environment_name}
    if record.ref:
        labels["ref"] = str(record.ref)
    finished_at = record.finished_at
    if finished_at is not None and finished_at < record.started_at:
        finished_at = record.started_at  # clock skew between the job and GitLab
    return Deployment(
        id=record.id,
        source=source,
        service=service,
        environment=environment,
        status=record.status,
        started_at=record.started_at,
        finished_at=finished_at,
        commit_sha=record.sha,
        change_ids=list(record.change_ids),
        url=record.url,
        labels=labels,
        updated_at=record.changed_at,
    )
