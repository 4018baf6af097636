"""The built-in ``demo`` source: a deterministic, realistic history of four teams.

The history ends at the start of the current hour and reaches ``days`` back. Each
service has its own rhythm, so a first report looks like a real organisation: one
elite team, one high, one medium, one struggling. Identifiers depend only on the
seed, so loading the demo twice updates events instead of duplicating them.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from pydantic import Field

from metrichub_core.models import Change, Deployment, Event, Incident
from metrichub_core.sources import Source, SourceConfig

__all__ = ["DemoConfig", "DemoSource", "demo_events"]

SOURCE_NAME = "demo"


@dataclass(frozen=True)
class _Team:
    service: str
    team: str
    deploys_per_week: float
    lead_time_median_hours: float
    failure_rate: float  # share of production deployments that fail outright
    incident_rate: float  # share of successful production deployments that cause an incident
    recovery_median_minutes: float


_TEAMS = (
    _Team("checkout", "payments", 15.0, 5.0, 0.03, 0.04, 35.0),
    _Team("search", "discovery", 6.0, 30.0, 0.05, 0.09, 150.0),
    _Team("accounts", "identity", 2.0, 120.0, 0.08, 0.14, 600.0),
    _Team("reporting", "data", 0.6, 500.0, 0.15, 0.30, 2400.0),
)


class DemoConfig(SourceConfig):
    kind: str = "demo"
    base_url: str = Field("demo://", description="Unused: the demo makes no HTTP requests.")
    days: int = Field(180, ge=1, le=3650, description="How far back the history reaches.")
    seed: int = Field(7, description="Changes the history; the same seed gives the same events.")


class DemoSource(Source):
    """Yields the demo history; needs no credentials and no network."""

    kind: ClassVar[str] = "demo"
    Config: ClassVar[type[SourceConfig]] = DemoConfig

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        config = self.config
        assert isinstance(config, DemoConfig)
        for event in demo_events(days=config.days, seed=config.seed):
            yield event


def demo_events(*, days: int = 180, seed: int = 7, now: datetime | None = None) -> Iterator[Event]:
    """Generate the demo history ending at ``now`` (default: the start of this hour)."""
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    for team in _TEAMS:
        yield from _team_history(team, start, end, random.Random(f"{seed}:{team.service}"))


def _team_history(team: _Team, start: datetime, end: datetime, rng: random.Random) -> Iterator[Event]:
    pending: list[Change] = []  # changes not yet shipped to production
    hotfix_due: Incident | None = None
    # Gaps are drawn in working hours (50 a week), then placed on the calendar.
    mean_gap_hours = _WORKING_HOURS_PER_WEEK / team.deploys_per_week
    moment = start
    number = 0
    while True:
        moment = _after_working_hours(moment, rng.expovariate(1 / mean_gap_hours), rng)
        if hotfix_due is not None and hotfix_due.started_at < moment:
            # An incident pulls the next deployment forward: an unplanned fix.
            moment = hotfix_due.started_at + timedelta(minutes=rng.uniform(20, 90))
        if moment >= end:
            break
        number += 1
        ref = f"{team.service}-{number:05d}"
        changes = [_change(team, f"{ref}-c{i}", moment, rng) for i in range(_batch_size(team, rng))]
        yield from changes
        pending.extend(changes)
        labels = {"team": team.team}
        if hotfix_due is not None:
            labels["rework"] = "true"
            hotfix_due = None
        staging_start = moment - timedelta(minutes=rng.uniform(30, 240))
        yield Deployment(
            id=f"{ref}-staging", source=SOURCE_NAME, service=team.service, environment="staging",
            status="success", started_at=staging_start, finished_at=staging_start + timedelta(minutes=8),
            change_ids=[change.id for change in changes], labels=labels,
        )  # fmt: skip
        failed = rng.random() < team.failure_rate
        finished = moment + timedelta(minutes=rng.uniform(4, 25))
        yield Deployment(
            id=ref, source=SOURCE_NAME, service=team.service, status="failure" if failed else "success",
            started_at=moment, finished_at=finished, commit_sha=hashlib.sha1(ref.encode()).hexdigest(),
            change_ids=[change.id for change in pending], labels=labels,
        )  # fmt: skip
        if failed:
            continue
        pending = []
        if rng.random() < team.incident_rate:
            incident = _incident(team, ref, finished, end, rng)
            hotfix_due = incident if incident.resolved_at is not None else None
            yield incident
        if rng.random() < 0.02:
            yield _unrelated_incident(team, ref, finished, end, rng)


_WORKING_HOURS_PER_WEEK = 50.0


def _after_working_hours(moment: datetime, hours: float, rng: random.Random) -> datetime:
    """Advance ``moment`` by ``hours`` of working time: weekdays, 08:00 to 18:00 UTC."""
    remaining = timedelta(hours=hours)
    while True:
        if moment.weekday() >= 5 or moment.hour >= 18:
            moment = (moment + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
            continue
        if moment.hour < 8:
            moment = moment.replace(hour=8, minute=0, second=0, microsecond=0)
        closing = moment.replace(hour=18, minute=0, second=0, microsecond=0)
        if moment + remaining < closing:
            return moment + remaining
        remaining -= closing - moment
        moment = closing


def _batch_size(team: _Team, rng: random.Random) -> int:
    return 1 + min(12, int(rng.expovariate(1 / max(0.5, 6 / team.deploys_per_week))))


def _lognormal(rng: random.Random, median: float, sigma: float = 0.8) -> float:
    return median * math.exp(rng.gauss(0, sigma))


def _change(team: _Team, change_id: str, deployed: datetime, rng: random.Random) -> Change:
    lead = timedelta(hours=_lognormal(rng, team.lead_time_median_hours))
    committed = deployed - lead
    merged = committed + lead * rng.uniform(0.5, 0.9)
    return Change(id=change_id, source=SOURCE_NAME, service=team.service, committed_at=committed, merged_at=merged)


_STILL_OPEN = timedelta(days=3)  # recent incidents are still being worked on


def _resolution(started: datetime, minutes: float, end: datetime) -> datetime | None:
    resolved = started + timedelta(minutes=minutes)
    return None if resolved >= end or started >= end - _STILL_OPEN else resolved


def _incident(team: _Team, ref: str, deployed: datetime, end: datetime, rng: random.Random) -> Incident:
    started = deployed + timedelta(minutes=rng.uniform(5, 360))
    resolved = _resolution(started, _lognormal(rng, team.recovery_median_minutes), end)
    return Incident(
        id=f"{ref}-incident", source=SOURCE_NAME, service=team.service, started_at=started,
        resolved_at=resolved, severity=rng.choice(["sev1", "sev2", "sev2", "sev3"]),
        # Half the incidents name their deployment; the rest are attributed by time.
        caused_by=ref if rng.random() < 0.5 else None, title=f"{team.service}: errors after deploy {ref}",
    )  # fmt: skip


def _unrelated_incident(team: _Team, ref: str, after: datetime, end: datetime, rng: random.Random) -> Incident:
    started = after + timedelta(hours=rng.uniform(1, 48))
    resolved = _resolution(started, _lognormal(rng, 90), end)
    return Incident(
        id=f"{ref}-outage", source=SOURCE_NAME, service=team.service, started_at=started,
        resolved_at=resolved, severity="sev2", deployment_related=False,
        title=f"{team.service}: upstream provider outage",
    )  # fmt: skip
