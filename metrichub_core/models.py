"""The events MetricHub computes DORA metrics from.

Every event is keyed by ``(source, id)``; ingesting the same key again updates it.
Timestamps must carry a timezone and are normalised to UTC: a naive datetime is a
validation error, never a guess.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_CHANGE_IDS",
    "MAX_LABELS",
    "Change",
    "Deployment",
    "DeploymentStatus",
    "Event",
    "EventKind",
    "Incident",
    "UTCDateTime",
]


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Event times and report windows lie in ``[EARLIEST, LATEST)``: every backend stores them exactly
(as microseconds since the epoch), and a window's calendar buckets never leave the calendar."""


def _as_utc(value: datetime) -> datetime:
    moment = value.astimezone(UTC)
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be from {EARLIEST:%Y-%m-%d} up to {LATEST:%Y-%m-%d} (UTC), got {moment.isoformat()}")
    return moment


UTCDateTime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
"""A timezone-aware datetime in the supported range, converted to UTC."""

DeploymentStatus = Literal["success", "failure", "cancelled", "running"]
EventKind = Literal["deployment", "change", "incident"]

_Identifier = Annotated[str, Field(min_length=1, max_length=512)]

# One event must not be able to make every later report slow: list fields are bounded.
MAX_CHANGE_IDS = 10_000
"""Changes one deployment may ship, at most (a longer list is a validation error naming ``change_ids``)."""
MAX_LABELS = 64
"""Labels one deployment may carry, at most."""


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    kind: ClassVar[EventKind]

    id: _Identifier
    source: _Identifier
    service: _Identifier
    updated_at: UTCDateTime | None = None
    """When the upstream last changed this record (its own update or event time), if known: an upsert
    never replaces a stored event by an older version (see ``metrichub_core.storage.versions``)."""


class Deployment(_Event):
    """A deployment of one service to one environment."""

    kind: ClassVar[EventKind] = "deployment"

    environment: _Identifier = "production"
    status: DeploymentStatus
    started_at: UTCDateTime
    finished_at: UTCDateTime | None = None
    commit_sha: str | None = None
    change_ids: list[str] = Field(default_factory=list, max_length=MAX_CHANGE_IDS)
    url: str | None = None
    labels: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS)


class Change(_Event):
    """A change (a commit or a merged pull request) that a deployment can ship."""

    kind: ClassVar[EventKind] = "change"

    committed_at: UTCDateTime
    merged_at: UTCDateTime | None = None
    url: str | None = None


class Incident(_Event):
    """A production incident; ``caused_by`` names the deployment that caused it."""

    kind: ClassVar[EventKind] = "incident"

    environment: _Identifier = "production"
    started_at: UTCDateTime
    resolved_at: UTCDateTime | None = None
    severity: str | None = None
    caused_by: str | None = None
    deployment_related: bool = True
    title: str | None = None
    url: str | None = None


Event = Deployment | Change | Incident
"""Any event a source yields or a client ingests."""
