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
    "LeadTimeBreakdown",
    "LeadTimeStage",
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


class LeadTimeStage(_Block):
    """One stage of the lead time over the changes of the breakdown."""

    median_seconds: float | None
    p90_seconds: float | None
    count: int


class LeadTimeBreakdown(_Block):
    """Where the lead time goes: first commit to merge, then merge to the deployment's finish.

    Over the changes counted in the lead time that have a ``merged_at`` (the earliest any source
    reports), the merge clamped into [first commit, deployment finish], so the stages add up to
    each change's lead time (see docs/metrics.md).
    """

    commit_to_merge: LeadTimeStage = Field(description="From the change's first commit to its merge.")
    merge_to_deploy: LeadTimeStage = Field(
        description="From the merge to the finish of the deployment that shipped it."
    )


class LeadTime(_Block):
    median_seconds: float | None
    p90_seconds: float | None
    mean_seconds: float | None
    count: int
    level: Level | None
    breakdown: LeadTimeBreakdown | None = Field(
        default=None,
        description="Commit to merge and merge to deploy, over the counted changes that have merged_at; "
        "null when none has it.",
    )


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
