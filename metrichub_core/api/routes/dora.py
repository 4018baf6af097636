"""``/metrics/dora``: the DORA report, and its trend per bucket, cached until the next ingest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from metrichub_core.api.cache import report_key
from metrichub_core.api.context import ApiContext, context
from metrichub_core.api.envelope import ok_json, to_json
from metrichub_core.api.errors import ApiError
from metrichub_core.api.operations import Operations
from metrichub_core.api.params import DoraQuery, TrendQuery, parse_labels, parse_query
from metrichub_core.dora import DoraQueryError, DoraReport, DoraTrend

__all__ = ["operations"]

operations = Operations("metrics")


@operations.route(
    "GET",
    "/metrics/dora",
    summary="DORA report",
    query=DoraQuery,
    response=DoraReport,
    errors=("validation_error",),
)
async def dora_report(request: Request) -> Response:
    """The four DORA metrics (and rework rate) for a window `[since, until)` and filters.

    `X-Cache: hit` when the report came from the cache; any ingest empties it.
    """
    ctx = context(request)
    query = parse_query(request, DoraQuery)
    window = query.window()
    labels = parse_labels(query.label)
    arguments: dict[str, Any] = {
        "since": window.since,
        "until": window.until,
        "service": query.service,
        "environment": query.environment,
        "labels": labels,
        "profile": query.profile,
    }
    return await _cached(request, ctx, report_key("report", arguments), lambda: ctx.hub.dora(**arguments))


@operations.route(
    "GET",
    "/metrics/dora/trend",
    summary="DORA trend",
    query=TrendQuery,
    response=DoraTrend,
    errors=("validation_error",),
)
async def dora_trend(request: Request) -> Response:
    """The DORA report of each `bucket` (day, week or month; weeks start on Monday) across the window."""
    ctx = context(request)
    query = parse_query(request, TrendQuery)
    window = query.window()
    arguments: dict[str, Any] = {
        "since": window.since,
        "until": window.until,
        "bucket": query.bucket,
        "service": query.service,
        "environment": query.environment,
        "labels": parse_labels(query.label),
        "profile": query.profile,
    }
    return await _cached(request, ctx, report_key("trend", arguments), lambda: ctx.hub.dora_trend(**arguments))


async def _cached(request: Request, ctx: ApiContext, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Response:
    async def serialised() -> bytes:
        return to_json(await compute())

    try:
        data, hit = await ctx.cache.get_or_compute(key, serialised)
    except DoraQueryError as exc:  # the engine refuses the query (unknown profile, ...)
        name = f"query.{exc.parameter}"
        detail = {"field": name, "loc": ["query", exc.parameter], "message": str(exc), "type": "value_error"}
        raise ApiError("validation_error", f"Invalid query parameter {exc}.", [detail]) from None
    ctx.metrics.dora_cache.labels("hit" if hit else "miss").inc()
    return ok_json(request, data, headers={"X-Cache": "hit" if hit else "miss"})
