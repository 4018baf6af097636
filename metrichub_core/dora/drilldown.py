"""The events behind a DORA report: which deployments, changes and incidents make each figure.

A pure function over the scope's events, built on the reference rules
(``metrichub_core.dora.reference``: the same links from incident to deployment, the
same first shipping deployment of a change). Its lists agree with the report of the
same window and scope: the successful deployments are ``deployment_frequency.count``,
the failed ones ``change_failure_rate.failed``, the changes ``lead_time.count``, the
incidents with a recovery time ``failed_deployment_recovery_time.count``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from metrichub_core.deadline import check
from metrichub_core.dora._engine import make_options
from metrichub_core.dora._protocol import DoraOptions, DoraScope, Window
from metrichub_core.dora._stats import Summary
from metrichub_core.dora._windows import resolve_window
from metrichub_core.dora.reference import Link, deployed_at, deployed_order, is_rework_labelled, scope_events
from metrichub_core.models import Change, Deployment, DeploymentStatus, Incident

__all__ = ["DoraDrilldown", "DrillChange", "DrillDeployment", "DrillIncident", "drilldown"]


class DrillIncident(BaseModel):
    """An incident of the window (it started in it) and the deployment it is attributed to."""

    id: str
    source: str
    service: str
    environment: str
    started_at: datetime
    resolved_at: datetime | None
    severity: str | None = None
    title: str | None = None
    url: str | None = None
    deployment_related: bool
    attribution: Literal["caused_by", "time"] | None = Field(
        description="How its deployment was found: named by `caused_by`, by time, or `null` (none)."
    )
    deployment_id: str | None
    deployment_source: str | None
    recovery_seconds: float | None = Field(
        description="Failed-deployment recovery time; `null` when open, unattributed or negative."
    )
    restore_seconds: float | None = Field(description="Time to restore; `null` when open or negative.")


class DrillDeployment(BaseModel):
    """A deployment of the window (any status) with what it shipped and what it caused."""

    id: str
    source: str
    service: str
    environment: str
    status: DeploymentStatus
    started_at: datetime
    finished_at: datetime | None
    deployed_at: datetime = Field(description="When it counts: its finish, else its start.")
    commit_sha: str | None = None
    url: str | None = None
    labels: dict[str, str]
    counted: bool = Field(description="Counts in deployment frequency and CFR's denominator (status success).")
    changes: int = Field(description="Change ids it lists.")
    changes_first_shipped: int = Field(description="Changes it shipped first, with a lead time (lead_time.count).")
    lead_time_median_seconds: float | None = Field(description="Median lead time of those changes.")
    failed: bool = Field(description="Counts as failed in the change failure rate.")
    rework: bool = Field(description="Counts as rework (labelled, or it fixed an incident).")
    incidents: list[DrillIncident] = Field(description="Incidents attributed to it, whenever they started.")


class DrillChange(BaseModel):
    """A change with a lead time in the window: first shipped by a deployment of the window."""

    id: str
    source: str
    service: str
    committed_at: datetime
    merged_at: datetime | None = None
    url: str | None = None
    deployment_id: str
    deployment_source: str
    deployed_at: datetime
    lead_time_seconds: float


@dataclass(frozen=True)
class DoraDrilldown:
    """The events behind the report of ``window`` and ``scope``, each list in the order the API pages it."""

    window: Window
    scope: DoraScope
    deployments: list[DrillDeployment]
    """Newest first."""
    changes: list[DrillChange]
    """Slowest (longest lead time) first."""
    incidents: list[DrillIncident]
    """Newest start first."""

    @property
    def failures(self) -> list[DrillDeployment]:
        return [deployment for deployment in self.deployments if deployment.failed]


def drilldown(
    deployments: Iterable[Deployment],
    changes: Iterable[Change],
    incidents: Iterable[Incident],
    *,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    days: int | None = None,
    scope: DoraScope | None = None,
    options: DoraOptions | Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> DoraDrilldown:
    """The drill-down of one window from the events of (at least) its scope, as ``facts_from_events`` reads them."""
    window = resolve_window(since, until, days, now)
    scope, opts = scope or DoraScope(), make_options(options)
    events = scope_events(deployments, changes, incidents, scope)
    check()  # the request's deadline (metrichub_core.deadline)

    def counted(deployment: Deployment) -> bool:
        return events.counted(deployment, window)

    drill_changes = _changes(events.first_ship, events.earliest, counted)
    caused: dict[int, list[DrillIncident]] = {}
    for link in events.links:
        cause = link.attributed(opts)
        if cause is not None:
            caused.setdefault(id(cause), []).append(_incident(link, cause, opts))
    window_incidents = [_incident(link, cause, opts) for link, cause in events.window_incidents(window, opts)]
    leads: dict[int, list[float]] = {}
    for drilled in drill_changes:
        shipper = events.first_ship[(drilled.service, drilled.id)]
        leads.setdefault(id(shipper), []).append(drilled.lead_time_seconds)
    window_deployments = sorted((d for d in events.scoped if counted(d)), key=deployed_order, reverse=True)
    return DoraDrilldown(
        window=window,
        scope=scope,
        deployments=[
            _deployment(d, caused.get(id(d), []), leads.get(id(d), []), id(d) in events.fixes, opts)
            for d in window_deployments
        ],
        changes=sorted(drill_changes, key=lambda c: (-c.lead_time_seconds, c.service, c.id)),
        incidents=sorted(window_incidents, key=lambda i: (i.started_at, i.source, i.id), reverse=True),
    )


def _changes(
    first_ship: Mapping[tuple[str, str], Deployment],
    earliest: Mapping[tuple[str, str], Change],
    counted: Callable[[Deployment], bool],
) -> list[DrillChange]:
    found = []
    for key, deployment in first_ship.items():
        change = earliest.get(key)
        if change is None or not counted(deployment):
            continue
        seconds = (deployed_at(deployment) - change.committed_at).total_seconds()
        if seconds < 0:  # a data error: the report drops it and says so in notes
            continue
        found.append(
            DrillChange(
                id=change.id,
                source=change.source,
                service=change.service,
                committed_at=change.committed_at,
                merged_at=change.merged_at,
                url=change.url,
                deployment_id=deployment.id,
                deployment_source=deployment.source,
                deployed_at=deployed_at(deployment),
                lead_time_seconds=seconds,
            )
        )
    return found


def _incident(link: Link, cause: Deployment | None, options: DoraOptions) -> DrillIncident:
    incident = link.incident
    restore = recovery = None
    if incident.resolved_at is not None:
        span = (incident.resolved_at - incident.started_at).total_seconds()
        restore = span if span >= 0 else None
        if cause is not None and restore is not None:
            if options.recovery_clock == "deployment":
                span = (incident.resolved_at - deployed_at(cause)).total_seconds()
            recovery = span if span >= 0 else None
    return DrillIncident(
        id=incident.id,
        source=incident.source,
        service=incident.service,
        environment=incident.environment,
        started_at=incident.started_at,
        resolved_at=incident.resolved_at,
        severity=incident.severity,
        title=incident.title,
        url=incident.url,
        deployment_related=incident.deployment_related,
        attribution=None if cause is None else ("time" if link.found_by_time(options) else "caused_by"),
        deployment_id=None if cause is None else cause.id,
        deployment_source=None if cause is None else cause.source,
        recovery_seconds=recovery,
        restore_seconds=restore,
    )


def _deployment(
    deployment: Deployment, incidents: list[DrillIncident], leads: list[float], fixed: bool, options: DoraOptions
) -> DrillDeployment:
    success = deployment.status == "success"
    failed = (success and bool(incidents)) or (options.failed_deployments_count and deployment.status == "failure")
    return DrillDeployment(
        id=deployment.id,
        source=deployment.source,
        service=deployment.service,
        environment=deployment.environment,
        status=deployment.status,
        started_at=deployment.started_at,
        finished_at=deployment.finished_at,
        deployed_at=deployed_at(deployment),
        commit_sha=deployment.commit_sha,
        url=deployment.url,
        labels=dict(deployment.labels),
        counted=success,
        changes=len(deployment.change_ids),
        changes_first_shipped=len(leads),
        lead_time_median_seconds=Summary.exact(leads).quantile(0.5) if leads else None,
        failed=failed,
        rework=success and (fixed or is_rework_labelled(deployment)),
        incidents=sorted(incidents, key=lambda i: (i.started_at, i.source, i.id)),
    )
