"""Refresh the scrape-time Prometheus figures: DORA per (service, environment), collector counters per source."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from metrichub_core.api.cache import report_key
from metrichub_core.api.context import ApiContext
from metrichub_core.api.envelope import to_json
from metrichub_core.api.prometheus import DoraSample, SourceSample
from metrichub_core.storage.base import EventQuery

__all__ = ["DORA_WINDOW_DAYS", "MAX_SCOPES", "refresh"]

logger = logging.getLogger("metrichub.api")

DORA_WINDOW_DAYS = 30
MAX_SCOPES = 200
_SCAN_LIMIT = 50_000


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
        samples.append(_sample(service, environment, json.loads(data)))
    return samples


_SCOPES_TTL_SECONDS = 300.0


async def _scopes(ctx: ApiContext, since: datetime, until: datetime) -> list[tuple[str, str]]:
    """The (service, environment) pairs with deployments in the window; rescanned after an ingest or 5 minutes."""
    remembered = ctx.scopes_memo
    if remembered is not None:
        generation, taken, scopes = remembered
        if generation == ctx.cache.generation and time.monotonic() - taken < _SCOPES_TTL_SECONDS:
            return scopes
    generation = ctx.cache.generation
    scopes = await _scan_scopes(ctx, since, until)
    ctx.scopes_memo = (generation, time.monotonic(), scopes)
    return scopes


async def _scan_scopes(ctx: ApiContext, since: datetime, until: datetime) -> list[tuple[str, str]]:
    await ctx.hub.open()
    scopes: set[tuple[str, str]] = set()
    cursor = None
    scanned = 0
    while scanned < _SCAN_LIMIT and len(scopes) < MAX_SCOPES:
        page = await ctx.hub.storage.list_events(
            EventQuery(kind="deployment", since=since, until=until, limit=1000, cursor=cursor)
        )
        for event in page.items:
            scopes.add((event.service, getattr(event, "environment", "production")))
        scanned += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return sorted(scopes)[:MAX_SCOPES]


def _sample(service: str, environment: str, report: dict[str, Any]) -> DoraSample:
    def get(block: str, key: str) -> float | None:
        value = (report.get(block) or {}).get(key)
        return float(value) if isinstance(value, int | float) else None

    values = {
        "deployments": get("deployment_frequency", "count"),
        "lead_time_median_seconds": get("lead_time", "median_seconds"),
        "lead_time_p90_seconds": get("lead_time", "p90_seconds"),
        "change_failure_ratio": get("change_failure_rate", "value"),
        "failed_deployment_recovery_median_seconds": get("failed_deployment_recovery_time", "median_seconds"),
        "time_to_restore_median_seconds": get("time_to_restore", "median_seconds"),
        "rework_ratio": get("rework_rate", "value"),
    }
    levels = {
        metric: (report.get(metric) or {}).get("level")
        for metric in (
            "deployment_frequency",
            "lead_time",
            "change_failure_rate",
            "failed_deployment_recovery_time",
            "overall",
        )
    }
    return DoraSample(service, environment, values, levels)


async def _source_samples(ctx: ApiContext) -> list[SourceSample]:
    samples = []
    for entry in ctx.access.sources():
        try:
            health = await ctx.access.source_health(entry.id)
        except Exception as exc:
            logger.warning("health of source %s not read: %s", entry.id, type(exc).__name__)
            continue
        stats = health.get("stats") or {}
        counters = {key: float(value) for key, value in stats.items() if isinstance(value, int | float)}
        breaker = health.get("breaker")
        state = breaker.get("state") if isinstance(breaker, dict) else breaker
        samples.append(SourceSample(entry.id, entry.kind, counters, state if isinstance(state, str) else None))
    return samples
