"""Refresh the scrape-time Prometheus figures: DORA per (service, environment), collector counters per source."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from metrichub_core.api.cache import report_key
from metrichub_core.api.context import ApiContext
from metrichub_core.api.envelope import to_json
from metrichub_core.api.prometheus import DoraSample, SourceSample
from metrichub_core.dora import DoraReport

__all__ = ["DORA_WINDOW_DAYS", "MAX_SCOPES", "refresh"]

logger = logging.getLogger("metrichub.api")

DORA_WINDOW_DAYS = 30
MAX_SCOPES = 200


async def refresh(ctx: ApiContext) -> None:
    snapshot = ctx.metrics.snapshot
    snapshot.window_seconds = DORA_WINDOW_DAYS * 86_400.0
    try:
        snapshot.dora = await _dora_samples(ctx)
    except Exception as exc:  # a scrape still answers, with what it has
        logger.warning("DORA gauges not refreshed: %s", type(exc).__name__)
    snapshot.sources = await _source_samples(ctx)


async def _dora_samples(ctx: ApiContext) -> list[DoraSample]:
    now = datetime.now(UTC)
    until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = until - timedelta(days=DORA_WINDOW_DAYS)
    samples = []
    for service, environment in await _scopes(ctx, since, until):
        arguments: dict[str, Any] = {
            "since": since,
            "until": until,
            "service": service,
            "environment": environment,
            "labels": {},
            "profile": None,
        }

        async def compute(arguments: dict[str, Any] = arguments) -> bytes:
            return to_json(await ctx.hub.dora(**arguments))

        data, _ = await ctx.cache.get_or_compute(report_key("report", arguments), compute)
        samples.append(_sample(service, environment, DoraReport.model_validate_json(data)))
    return samples


_SCOPES_TTL_SECONDS = 300.0


async def _scopes(ctx: ApiContext, since: datetime, until: datetime) -> list[tuple[str, str]]:
    """The (service, environment) pairs with deployments in the window; asked again after an ingest or 5 minutes."""
    remembered = ctx.scopes_memo
    if remembered is not None:
        generation, taken, scopes = remembered
        if generation == ctx.cache.generation and time.monotonic() - taken < _SCOPES_TTL_SECONDS:
            return scopes
    generation = ctx.cache.generation
    scopes = await ctx.hub.dora_scopes(since, until, limit=MAX_SCOPES)
    ctx.scopes_memo = (generation, time.monotonic(), scopes)
    return scopes


def _sample(service: str, environment: str, report: DoraReport) -> DoraSample:
    values = {
        "deployments": float(report.deployment_frequency.count),
        "lead_time_median_seconds": report.lead_time.median_seconds,
        "lead_time_p90_seconds": report.lead_time.p90_seconds,
        "change_failure_ratio": report.change_failure_rate.value,
        "failed_deployment_recovery_median_seconds": report.failed_deployment_recovery_time.median_seconds,
        "time_to_restore_median_seconds": report.time_to_restore.median_seconds,
        "rework_ratio": report.rework_rate.value,
    }
    levels = {
        "deployment_frequency": report.deployment_frequency.level,
        "lead_time": report.lead_time.level,
        "change_failure_rate": report.change_failure_rate.level,
        "failed_deployment_recovery_time": report.failed_deployment_recovery_time.level,
        "overall": report.overall.level,
    }
    return DoraSample(service, environment, values, levels)


async def _source_samples(ctx: ApiContext) -> list[SourceSample]:
    samples = []
    for entry in ctx.access.sources():
        try:
            health = await ctx.hub.source_health(entry.id)
        except Exception as exc:
            logger.warning("health of source %s not read: %s", entry.id, type(exc).__name__)
            continue
        counters = {key: float(value) for key, value in health.stats.items() if isinstance(value, int | float)}
        state = health.breaker.get("state")
        samples.append(SourceSample(entry.id, entry.kind, counters, state if isinstance(state, str) else None))
    return samples
