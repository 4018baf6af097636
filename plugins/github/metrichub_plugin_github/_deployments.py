"""GitHub deployments and workflow runs → ``Deployment`` outcomes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from metrichub_core import Deployment
from metrichub_core.models import DeploymentStatus

__all__ = [
    "Outcome",
    "RunRecord",
    "deployment_outcome",
    "optional_time",
    "parse_time",
    "run_outcome",
    "status_time",
    "to_deployment",
]

_FAILED_STATES = frozenset({"failure", "error"})
_RUNNING_STATES = frozenset({"pending", "queued", "in_progress"})
_RUN_CONCLUSIONS: dict[str, DeploymentStatus] = {
    "success": "success",
    "failure": "failure",
    "timed_out": "failure",
    "startup_failure": "failure",
    "cancelled": "cancelled",
}


def parse_time(value: str) -> datetime:
    """GitHub's ISO 8601 timestamps (``Z`` or an offset) as aware datetimes."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def optional_time(value: str | None) -> datetime | None:
    return parse_time(value) if value else None


def status_time(status: dict[str, Any]) -> datetime:
    """When a deployment status was written (statuses never change): the deployment's version it makes."""
    return parse_time(status["created_at"])


@dataclass(frozen=True)
class Outcome:
    """What the statuses say: the status, when it was reached, whether it can still change, and when
    the newest status was written (the deployment's ``updated_at``)."""

    status: DeploymentStatus
    finished_at: datetime | None
    final: bool
    url: str | None = None
    updated_at: datetime | None = None


def deployment_outcome(statuses: Iterable[dict[str, Any]]) -> Outcome:
    """The outcome of a deployment from its statuses (any order).

    ``success`` → success, ``failure``/``error`` → failure, finished at that status's time.
    ``inactive`` is only ever added to a deployment that succeeded and was superseded: it
    keeps the earlier success (and its time); alone it counts as a success at its own time.
    ``pending``/``queued``/``in_progress`` or no status at all → running (not final).
    """
    ordered = sorted(statuses, key=lambda status: (status["created_at"], status.get("id", 0)), reverse=True)
    if not ordered:
        return Outcome("running", None, final=False)
    newest = max(status_time(status) for status in ordered)
    for status in ordered:
        state = status.get("state")
        url = status.get("log_url") or status.get("target_url") or None
        if state == "success":
            return Outcome("success", parse_time(status["created_at"]), final=True, url=url, updated_at=newest)
        if state in _FAILED_STATES:
            return Outcome("failure", parse_time(status["created_at"]), final=True, url=url, updated_at=newest)
        if state in _RUNNING_STATES:
            return Outcome("running", None, final=False, url=url, updated_at=newest)
    oldest_inactive = ordered[-1]
    return Outcome("success", parse_time(oldest_inactive["created_at"]), final=True, updated_at=newest)


def run_outcome(run: dict[str, Any]) -> Outcome | None:
    """A workflow run's outcome; ``None`` for conclusions that are not deployments (skipped...)."""
    updated_at = optional_time(run.get("updated_at"))
    if run.get("status") != "completed":
        return Outcome("running", None, final=False, updated_at=updated_at)
    status = _RUN_CONCLUSIONS.get(run.get("conclusion") or "")
    if status is None:
        return None
    return Outcome(status, parse_time(run["updated_at"]), final=True, url=run.get("html_url"), updated_at=updated_at)


@dataclass
class RunRecord:
    """What a ``Deployment`` is built from, whichever API it came from."""

    id: str
    repository: str
    environment_name: str
    sha: str | None
    ref: str | None
    started_at: datetime
    outcome: Outcome
    change_ids: list[str] = field(default_factory=list)
    updated_at: datetime | None = None
    """The item's own update time, for a deployment whose outcome has none (no status yet)."""

    @classmethod
    def from_deployment(cls, repository: str, item: dict[str, Any], outcome: Outcome) -> RunRecord:
        return cls(
            id=str(item["id"]),
            repository=repository,
            environment_name=str(item.get("environment") or "production"),
            sha=item.get("sha"),
            ref=item.get("ref"),
            started_at=parse_time(item["created_at"]),
            outcome=outcome,
            updated_at=optional_time(item.get("updated_at")),
        )

    @classmethod
    def from_run(cls, repository: str, run: dict[str, Any], outcome: Outcome) -> RunRecord:
        return cls(
            id=str(run["id"]),
            repository=repository,
            environment_name="production",
            sha=run.get("head_sha"),
            ref=run.get("head_branch"),
            started_at=parse_time(run.get("run_started_at") or run["created_at"]),
            outcome=outcome,
        )


def to_deployment(record: RunRecord, *, source: str, service: str, environment: str) -> Deployment:
    labels = {"repository": record.repository, "github_environment": record.environment_name}
    if record.ref:
        labels["ref"] = record.ref
    finished_at = record.outcome.finished_at
    if finished_at is not None and finished_at < record.started_at:
        finished_at = record.started_at  # clock skew between GitHub and the deployer
    return Deployment(
        id=record.id,
        source=source,
        service=service,
        environment=environment,
        status=record.outcome.status,
        started_at=record.started_at,
        finished_at=finished_at,
        commit_sha=record.sha,
        change_ids=list(record.change_ids),
        url=record.outcome.url,
        labels=labels,
        updated_at=record.outcome.updated_at or record.updated_at,
    )
