"""The narrow query interface between the DORA engine and a storage backend.

A backend implements one coroutine, ``dora_facts``: for a scope, a list of windows
and the options, it returns the counted facts of each window. The engine turns
facts into the report (statistics, bands, levels, notes); the backend decides how
to find the facts fast (precomputed rollups, SQL, or the reference implementation
in ``metrichub_core.dora.reference`` over plain events).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from metrichub_core.dora._stats import EMPTY, Summary

__all__ = ["DoraData", "DoraFacts", "DoraOptions", "DoraScope", "FactsRequest", "RecoveryClock", "Window"]

RecoveryClock = Literal["incident", "deployment"]


@dataclass(frozen=True)
class DoraScope:
    """Which events count: one service (``None`` = all), one environment, label filters.

    Labels filter deployments; an incident counts under a label filter only when it is
    attributed to a deployment that carries the labels.
    """

    service: str | None = None
    environment: str = "production"
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DoraOptions:
    """The contested rules, each with its default (see docs/metrics.md).

    Parameters:
        attribution_window: an incident without ``caused_by`` is attributed to the last
            successful deployment before it only if that deployment finished at most this
            long before the incident started; ``None`` = no limit.
        failed_deployments_count: a deployment whose status is ``failure`` counts as a
            change failure (in both terms of the change failure rate).
        recovery_clock: failed-deployment recovery time starts at the incident's
            ``started_at`` (``"incident"``) or at the deployment's finish (``"deployment"``).
    """

    attribution_window: timedelta | None = None
    failed_deployments_count: bool = False
    recovery_clock: RecoveryClock = "incident"


@dataclass(frozen=True)
class Window:
    """``[since, until)`` in UTC."""

    since: datetime
    until: datetime


@dataclass(frozen=True)
class FactsRequest:
    """What the engine asks a backend: the facts of each window for one scope.

    ``exact_limit``: a backend that keeps approximate summaries must return exact
    values (``Summary.exact``) whenever a window holds at most this many values.
    """

    scope: DoraScope
    windows: Sequence[Window]
    options: DoraOptions = DoraOptions()
    exact_limit: int = 10_000


@dataclass(frozen=True)
class DoraFacts:
    """The counted facts of one window; every count is for the request's scope.

    Deployments are successful deployments whose finish (else start) is in the window;
    incidents are those that started in the window.
    """

    deployments: int
    """Successful deployments in the window."""
    deploy_days: Mapping[date, int]
    """Successful deployments per UTC day, days with at least one only."""
    failed: int
    """Deployments of the window with at least one attributed deployment-related incident
    (with ``failed_deployments_count``, plus every ``failure`` deployment of the window)."""
    failure_status: int
    """Deployments with status ``failure`` in the window (for notes and the option)."""
    rework: int
    """Successful deployments of the window that are rework (see docs/metrics.md)."""
    lead_times: Summary
    """Seconds from first commit to the first successful deployment that shipped the
    change, for changes whose first such deployment is in the window."""
    negative_lead_times: int
    """Changes dropped because they were committed after the deployment that shipped them."""
    missing_changes: int
    """Change ids listed by the window's shipping deployments with no stored ``Change``."""
    recovery: Summary
    """Failed-deployment recovery seconds of resolved, attributed incidents."""
    recovery_open: int
    restore: Summary
    """Time-to-restore seconds of all resolved incidents."""
    restore_open: int
    unattributed: int
    """Deployment-related incidents of the window attributed to no deployment."""
    negative_durations: int
    """Incidents dropped because they were resolved before they started."""
    recovery_before_deployment: int
    """Attributed incidents resolved after they started but before the deployment they are
    attributed to finished, dropped from recovery (``recovery_clock="deployment"`` only;
    they still count in time to restore)."""
    caused_by_ignored: int
    """Deployment-related incidents of the window whose ``caused_by`` names no deployment that
    counts in the change failure rate under the options (none of that id in the incident's
    service and environment with status ``success``, or ``failure`` under
    ``failed_deployments_count``): they are attributed by time."""
    incidents_known: bool
    """Whether the scope has any incident at all (else: probably no incident source)."""
    commit_to_merge: Summary = EMPTY
    """The lead-time breakdown's first stage: seconds from first commit to merge, for the changes
    counted in ``lead_times`` that have a ``merged_at`` (the earliest any source reports), the merge
    clamped into ``[committed_at, deployment finish]`` (see docs/metrics.md)."""
    merge_to_deploy: Summary = EMPTY
    """The second stage, over the same changes: seconds from the (clamped) merge to the deployment's finish."""
    merged_before_commit: int = 0
    """Changes of the breakdown merged before their first commit: counted as merged at it."""
    merged_after_deploy: int = 0
    """Changes of the breakdown merged after the deployment that shipped them finished: counted as merged then."""


@runtime_checkable
class DoraData(Protocol):
    """The query side of storage that the DORA engine needs."""

    async def dora_facts(self, request: FactsRequest) -> list[DoraFacts]:
        """Return one ``DoraFacts`` per ``request.windows``, in order."""
