"""From facts to the report: statistics, levels, overall level and notes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from metrichub_core.dora._errors import DoraQueryError
from metrichub_core.dora._frequency import deployment_frequency
from metrichub_core.dora._protocol import DoraData, DoraFacts, DoraOptions, DoraScope, FactsRequest, Window
from metrichub_core.dora._report import (
    ChangeFailureRate,
    DoraReport,
    DoraTrend,
    LeadTime,
    LeadTimeBreakdown,
    LeadTimeStage,
    Overall,
    RecoveryTime,
    ReportFilters,
    ReportWindow,
    ReworkRate,
    TimeToRestore,
)
from metrichub_core.dora._stats import Summary
from metrichub_core.dora._windows import resolve_window, split
from metrichub_core.dora.profiles import Level, Profile, get_profile, worst

__all__ = ["build_report", "dora_report", "dora_trend", "make_options", "make_scope"]


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _durations(summary: Summary) -> dict[str, Any]:
    return {
        "median_seconds": _seconds(summary.quantile(0.5)),
        "p90_seconds": _seconds(summary.quantile(0.9)),
        "mean_seconds": _seconds(summary.mean()),
        "count": summary.count,
    }


def _stage(summary: Summary) -> LeadTimeStage:
    return LeadTimeStage(
        median_seconds=_seconds(summary.quantile(0.5)), p90_seconds=_seconds(summary.quantile(0.9)), count=summary.count
    )


def _breakdown(facts: DoraFacts, notes: list[str]) -> LeadTimeBreakdown | None:
    """The lead time's stages, ``None`` when no counted change has ``merged_at``; odd merges are noted."""
    if not facts.commit_to_merge.count:
        return None
    _note_estimate(notes, "lead time breakdown, commit to merge", facts.commit_to_merge, "changes", mean=False)
    _note_estimate(notes, "lead time breakdown, merge to deploy", facts.merge_to_deploy, "changes", mean=False)
    if facts.merged_before_commit:
        notes.append(
            f"lead time breakdown: {facts.merged_before_commit} change(s) merged before their first commit "
            "were counted as merged at it (commit to merge 0)"
        )
    if facts.merged_after_deploy:
        notes.append(
            f"lead time breakdown: {facts.merged_after_deploy} change(s) merged after the deployment that shipped "
            "them finished were counted as merged at its finish (merge to deploy 0)"
        )
    return LeadTimeBreakdown(
        commit_to_merge=_stage(facts.commit_to_merge), merge_to_deploy=_stage(facts.merge_to_deploy)
    )


def _rate(part: int, total: int) -> float | None:
    return round(part / total, 4) if total else None


def _note_estimate(notes: list[str], metric: str, summary: Summary, things: str, *, mean: bool = True) -> None:
    """Say so when a summary's median and p90 come from buckets rather than the values."""
    if summary.count and not summary.is_exact:
        notes.append(
            f"{metric}: median and p90 estimated from 1% buckets over {summary.count} {things}"
            + ("; mean exact" if mean else "")
        )


def build_report(
    window: Window, scope: DoraScope, profile: Profile, options: DoraOptions, facts: DoraFacts
) -> DoraReport:
    """The report of one window from its facts (pure: no I/O)."""
    notes: list[str] = []
    frequency = deployment_frequency(window, facts.deployments, facts.deploy_days, profile, notes)

    lead = facts.lead_times
    lead_level = profile.classify(profile.lead_time, lead.quantile(0.5) or 0.0) if lead.count else None
    if not lead.count:
        notes.append("lead time: no shipped change with a known commit time in the window, level not rated")
    _note_estimate(notes, "lead time", lead, "changes")
    if facts.negative_lead_times:
        notes.append(
            f"lead time: {facts.negative_lead_times} change(s) committed after the deployment that shipped them "
            "were dropped (negative span)"
        )
    if facts.missing_changes:
        notes.append(f"lead time: {facts.missing_changes} change id(s) listed by deployments have no stored change")
    breakdown = _breakdown(facts, notes)

    total = facts.deployments + (facts.failure_status if options.failed_deployments_count else 0)
    failure_rate = _rate(facts.failed, total)
    # Levels come from the unrounded figure: 51 of 1,019 (5.0049 %) is not within an elite 5 %.
    failure_level = profile.classify(profile.change_failure_rate, facts.failed / total) if total else None
    if failure_rate is None:
        notes.append("change failure rate: no deployment in the window, level not rated")
    if not facts.incidents_known:
        # A 0 % that only means "nobody records incidents" must not look elite.
        failure_level = None
        notes.append(
            "incidents: none recorded for this scope at any time, so change failure rate and recovery time are "
            "not rated (connect an incident source); the counts still show"
        )
    if facts.unattributed:
        notes.append(
            f"change failure rate: {facts.unattributed} deployment-related incident(s) could not be attributed to "
            "a deployment (no earlier successful deployment"
            + (" within the attribution window)" if options.attribution_window is not None else ")")
        )
    if facts.caused_by_ignored:
        counting = "success or failure" if options.failed_deployments_count else "success"
        notes.append(
            f"change failure rate: {facts.caused_by_ignored} incident(s) named a deployment by caused_by that does "
            f"not count (no deployment of that id in the incident's service and environment with status {counting}): "
            "attributed by time"
        )
    if facts.failure_status and not options.failed_deployments_count:
        notes.append(
            f"change failure rate: {facts.failure_status} deployment(s) with status failure are not counted "
            "(option failed_deployments_count is off)"
        )

    recovery = facts.recovery
    recovery_level = profile.classify(profile.recovery_time, recovery.quantile(0.5) or 0.0) if recovery.count else None
    if not facts.incidents_known:
        recovery_level = None
    elif not recovery.count and not facts.recovery_before_deployment:
        notes.append("failed-deployment recovery time: no resolved incident attributed to a deployment, not rated")
    if facts.recovery_before_deployment:
        # They resolved after they started and count in time to restore; only this clock has nothing to measure.
        notes.append(
            f"failed-deployment recovery time: {facts.recovery_before_deployment} incident(s) resolved before the "
            "deployment they are attributed to finished were dropped (recovery_clock = deployment)"
            + (", not rated" if facts.incidents_known and not recovery.count else "")
        )
    _note_estimate(notes, "failed-deployment recovery time", recovery, "incidents")
    _note_estimate(notes, "time to restore", facts.restore, "incidents")
    if facts.negative_durations:
        notes.append(f"incidents: {facts.negative_durations} resolved before they started were dropped")
    if scope.labels:
        notes.append("labels filter: incidents count only when attributed to a deployment carrying the labels")

    levels: list[Level | None] = [frequency.level, lead_level, failure_level]
    overall: Level | None = None
    if all(level is not None for level in levels):
        overall = worst([level for level in (*levels, recovery_level) if level is not None])
    else:
        notes.append("overall: not rated, deployment frequency, lead time and change failure rate are all needed")

    return DoraReport(
        window=ReportWindow(since=window.since, until=window.until),
        filters=ReportFilters(service=scope.service, environment=scope.environment, labels=dict(scope.labels)),
        profile=profile.name,
        deployment_frequency=frequency,
        lead_time=LeadTime(**_durations(lead), level=lead_level, breakdown=breakdown),
        change_failure_rate=ChangeFailureRate(
            value=failure_rate, failed=facts.failed, total=total, level=failure_level
        ),
        failed_deployment_recovery_time=RecoveryTime(
            **_durations(recovery), open=facts.recovery_open, level=recovery_level
        ),
        time_to_restore=TimeToRestore(**_durations(facts.restore), open=facts.restore_open),
        rework_rate=ReworkRate(
            value=_rate(facts.rework, facts.deployments), rework=facts.rework, total=facts.deployments
        ),
        overall=Overall(level=overall),
        notes=notes,
    )


def make_scope(service: str | None, environment: str, labels: Mapping[str, str] | None) -> DoraScope:
    if service is not None and not service.strip():
        raise DoraQueryError("service", "must not be empty")
    if not environment or not environment.strip():
        raise DoraQueryError("environment", "must not be empty")
    return DoraScope(service=service, environment=environment, labels=dict(labels or {}))


def make_options(options: DoraOptions | Mapping[str, Any] | None) -> DoraOptions:
    """Accept options as ``DoraOptions`` or a mapping of its fields."""
    if options is None:
        return DoraOptions()
    if isinstance(options, DoraOptions):
        result = options
    else:
        known = set(DoraOptions.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise DoraQueryError(
                "options", f"unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        result = DoraOptions(**options)
    if result.recovery_clock not in ("incident", "deployment"):
        raise DoraQueryError(
            "options", f"recovery_clock must be 'incident' or 'deployment', not {result.recovery_clock!r}"
        )
    if result.attribution_window is not None and result.attribution_window.total_seconds() <= 0:
        raise DoraQueryError("options", "attribution_window must be positive")
    return result


async def dora_report(
    data: DoraData,
    *,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    days: int | None = None,
    scope: DoraScope | None = None,
    profile: str | None = None,
    options: DoraOptions | Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> DoraReport:
    """The DORA report of ``[since, until)`` for ``scope``, from any ``DoraData``."""
    window = resolve_window(since, until, days, now)
    chosen, opts, scope = get_profile(profile), make_options(options), scope or DoraScope()
    (facts,) = await data.dora_facts(FactsRequest(scope=scope, windows=(window,), options=opts))
    return build_report(window, scope, chosen, opts, facts)


async def dora_trend(
    data: DoraData,
    *,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    days: int | None = None,
    scope: DoraScope | None = None,
    bucket: str = "week",
    profile: str | None = None,
    options: DoraOptions | Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> DoraTrend:
    """One report per ``bucket`` (day, week from Monday, or month) of the window."""
    window = resolve_window(since, until, days, now)
    windows = split(window, bucket)
    chosen, opts, scope = get_profile(profile), make_options(options), scope or DoraScope()
    facts = await data.dora_facts(FactsRequest(scope=scope, windows=tuple(windows), options=opts))

    def points() -> list[DoraReport]:
        return [build_report(w, scope, chosen, opts, f) for w, f in zip(windows, facts, strict=True)]

    return DoraTrend(
        window=ReportWindow(since=window.since, until=window.until),
        filters=ReportFilters(service=scope.service, environment=scope.environment, labels=dict(scope.labels)),
        profile=chosen.name,
        bucket=bucket,
        points=await asyncio.to_thread(points),  # about 60 µs a bucket: not on the event loop
    )
