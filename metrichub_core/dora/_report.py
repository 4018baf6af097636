"""The DORA report: the JSON that the library, the CLI and the API all return."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from metrichub_core.dora.profiles import Band, Level
from metrichub_core.models import UTCDateTime

__all__ = [
    "ChangeFailureRate",
    "DeploymentFrequency",
    "DoraReport",
    "DoraTrend",
    "LeadTime",
    "Overall",
    "RecoveryTime",
    "ReportFilters",
    "ReportWindow",
    "ReworkRate",
    "TimeToRestore",
    "TrendBucket",
]

TrendBucket = Literal["day", "week", "month"]


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReportWindow(_Block):
    since: UTCDateTime
    until: UTCDateTime


class ReportFilters(_Block):
    service: str | None
    environment: str
    labels: dict[str, str] = Field(default_factory=dict)


class DeploymentFrequency(_Block):
    count: int
    per_day: float
    per_week: float
    deploy_days_per_week_median: float | None
    band: Band | None
    level: Level | None


class LeadTime(_Block):
    median_seconds: float | None
    p90_seconds: float | None
    mean_seconds: float | None
    count: int
    level: Level | None


class ChangeFailureRate(_Block):
    value: float | None
    failed: int
    total: int
    level: Level | None


class RecoveryTime(_Block):
    median_seconds: float | None
    p90_seconds: float | None
    mean_seconds: float | None
    count: int
    open: int
    level: Level | None


class TimeToRestore(_Block):
    median_seconds: float | None
    p90_seconds: float | None
    mean_seconds: float | None
    count: int
    open: int


class ReworkRate(_Block):
    value: float | None
    rework: int
    total: int


class Overall(_Block):
    level: Level | None


class DoraReport(_Block):
    """The DORA metrics of one window and scope, classified against a benchmark profile."""

    window: ReportWindow
    filters: ReportFilters
    profile: str
    deployment_frequency: DeploymentFrequency
    lead_time: LeadTime
    change_failure_rate: ChangeFailureRate
    failed_deployment_recovery_time: RecoveryTime
    time_to_restore: TimeToRestore
    rework_rate: ReworkRate
    overall: Overall
    notes: list[str] = Field(default_factory=list)


class DoraTrend(_Block):
    """One report per calendar bucket of the window (weeks start on Monday), empty ones included."""

    window: ReportWindow
    filters: ReportFilters
    profile: str
    bucket: TrendBucket
    points: list[DoraReport]
