"""Deployment frequency: rates, the median deployment days per week, and the band."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from metrichub_core.dora._protocol import Window
from metrichub_core.dora._report import DeploymentFrequency
from metrichub_core.dora._stats import percentile_cont
from metrichub_core.dora.profiles import MONTH, SIX_MONTHS, WEEK, Band, Level, Profile

__all__ = ["deployment_frequency", "median_deploy_days_per_week"]


def _full_weeks(window: Window) -> list[date]:
    """Mondays of the Monday-to-Sunday weeks lying wholly inside the window."""
    start = datetime.combine(window.since.date(), time(), tzinfo=UTC)
    if start < window.since:
        start += timedelta(days=1)
    start += timedelta(days=(7 - start.weekday()) % 7)
    mondays = []
    while start + timedelta(days=7) <= window.until:
        mondays.append(start.date())
        start += timedelta(days=7)
    return mondays


def median_deploy_days_per_week(window: Window, deploy_days: Mapping[date, int]) -> float:
    """Median over the window's whole weeks of the days with a deployment.

    A window holding no whole Monday-to-Sunday week is rated on its deployment days
    scaled to seven days, and never more than seven (its first and last calendar days
    may be partial).
    """
    mondays = _full_weeks(window)
    if not mondays:
        seconds = (window.until - window.since).total_seconds()
        return min(7.0, len(deploy_days) * 7 * 86_400 / seconds)
    per_week = {monday: 0 for monday in mondays}
    for day in deploy_days:
        monday = day - timedelta(days=day.weekday())
        if monday in per_week:
            per_week[monday] += 1
    return percentile_cont(sorted(per_week.values()), 0.5)


def band_of(median_days: float, count: int, window_seconds: float) -> Band:
    if median_days >= 5:
        return "on-demand"
    if median_days >= 3:
        return "daily"
    if median_days >= 1:
        return "weekly"
    if count * MONTH / window_seconds >= 1:
        return "monthly"
    return "fewer"


def deployment_frequency(
    window: Window, count: int, deploy_days: Mapping[date, int], profile: Profile, notes: list[str]
) -> DeploymentFrequency:
    seconds = (window.until - window.since).total_seconds()
    days = seconds / 86_400
    per_day, per_week = count / days, count / (days / 7)
    median_days = median_deploy_days_per_week(window, deploy_days)
    band = band_of(median_days, count, seconds)
    level: Level | None
    if not count:
        notes.append("deployment frequency: no successful deployment in the window, level not rated")
        level = None
    elif band == "fewer" and count * SIX_MONTHS / seconds < 1:
        level = "low"
    else:
        level = profile.frequency[band]
    shown_band: Band | None = band
    if seconds < WEEK:
        # A band says how many days a week see a deployment: a shorter window cannot tell.
        notes.append("deployment frequency: a window shorter than 7 days has no band or level")
        shown_band = level = None
    return DeploymentFrequency(
        count=count,
        per_day=round(per_day, 3),
        per_week=round(per_week, 3),
        deploy_days_per_week_median=round(median_days, 3),
        band=shown_band,
        level=level,
    )
