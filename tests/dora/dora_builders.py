"""Terse builders for the DORA golden cases: times are offsets from a fixed Monday."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from metrichub_core.models import Change, Deployment, DeploymentStatus, Incident

T0 = datetime(2026, 3, 2, tzinfo=UTC)
"""Monday 2 March 2026, 00:00 UTC."""

H = timedelta(hours=1)
D = timedelta(days=1)
M = timedelta(minutes=1)


def at(offset: timedelta) -> datetime:
    return T0 + offset


def dep(
    id: str,
    finished: timedelta | datetime,
    changes: Iterable[str] = (),
    *,
    status: DeploymentStatus = "success",
    service: str = "api",
    environment: str = "production",
    labels: dict[str, str] | None = None,
    source: str = "ci",
) -> Deployment:
    end = finished if isinstance(finished, datetime) else at(finished)
    return Deployment(
        id=id,
        source=source,
        service=service,
        environment=environment,
        status=status,
        started_at=end - 5 * M,
        finished_at=end,
        change_ids=list(changes),
        labels=labels or {},
    )


def chg(
    id: str,
    committed: timedelta | datetime,
    *,
    service: str = "api",
    source: str = "git",
    merged: timedelta | datetime | None = None,
) -> Change:
    moment = committed if isinstance(committed, datetime) else at(committed)
    merged_at = merged if isinstance(merged, datetime) or merged is None else at(merged)
    return Change(id=id, source=source, service=service, committed_at=moment, merged_at=merged_at)


def inc(
    id: str,
    started: timedelta | datetime,
    resolved: timedelta | datetime | None = None,
    *,
    caused_by: str | None = None,
    related: bool = True,
    service: str = "api",
    environment: str = "production",
) -> Incident:
    def moment(value: timedelta | datetime) -> datetime:
        return value if isinstance(value, datetime) else at(value)

    return Incident(
        id=id,
        source="pager",
        service=service,
        environment=environment,
        started_at=moment(started),
        resolved_at=None if resolved is None else moment(resolved),
        caused_by=caused_by,
        deployment_related=related,
    )
