"""``/metrics/dora``: the DORA report, and its trend per bucket, cached until the next ingest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from metrichub_core.api.cache import report_key
from metrichub_core.api.context import ApiContext, context
from metrichub_core.api.envelope import ok_json, to_json
from metrichub_core.api.errors import ApiError, field_error, invalid
from metrichub_core.api.operations import Operations
from metrichub_core.api.params import DoraQuery, TrendQuery, next_minute, parse_query
from metrichub_core.dora import DoraQueryError, DoraReport, DoraTrend, resolve_window, split
from metrichub_core.filters import parse_labels
from metrichub_core.hub import MetricHub

__all__ = ["operations"]

operations = Operations("metrics")

_MINUTE = timedelta(minutes=1)
_CACHE_HEADER = {"X-Cache": "`hit`, `miss` or `stale` (last minute's report of a now-relative window)."}


@operations.route(
    "GET",
    "/metrics/dora",
    summary="DORA report",
    query=DoraQuery,
    response=DoraReport,
    errors=("validation_error",),
    response_headers=_CACHE_HEADER,
)
async def dora_report(request: Request) -> Response:
    """The four DORA metrics (and rework rate) for a window `[since, until)` and filters.

    `X-Cache`: `hit` from the cache (any ingest empties it), `miss` computed now, `stale` last minute's
    report of a now-relative window while this minute's is computed.
    """
    return await _report_response(request, "report", DoraQuery, lambda hub, arguments: hub.dora(**arguments))


@operations.route(
    "GET",
    "/metrics/dora/trend",
    summary="DORA trend",
    query=TrendQuery,
    response=DoraTrend,
    errors=("validation_error",),
    response_headers=_CACHE_HEADER,
)
async def dora_trend(request: Request) -> Response:
    """The DORA report of each `bucket` (day, week or month; weeks start on Monday) across the window.

    A trend of more than `[api] max_trend_buckets` buckets (default 1,000) is refused with 400.
    """
    return await _report_response(request, "trend", TrendQuery, lambda hub, arguments: hub.dora_trend(**arguments))


async def _report_response(
    request: Request,
    what: str,
    query_model: type[DoraQuery],
    compute: Callable[[MetricHub, dict[str, Any]], Awaitable[Any]],
) -> Response:
    """Answer a report or trend request from the cache, computing it at most once per key."""
    ctx = context(request)
    now = datetime.now(UTC)
    minute = next_minute(now)
    alias = (what, request.scope["query_string"], minute)
    cached = ctx.cache.lookup(alias)
    if cached is not None:
        return _hit(request, ctx, cached)
    query = parse_query(request, query_model)
    window = query.window(now)
    arguments: dict[str, Any] = {
        "since": window.since,
        "until": window.until,
        "service": query.service,
        "environment": query.environment,
        "labels": parse_labels(query.label),
        "profile": query.profile,
    }
    if isinstance(query, TrendQuery):
        _within_cost_limit(ctx, window.since, window.until, query.bucket)
        arguments["bucket"] = query.bucket
    previous = (what, request.scope["query_string"], minute - _MINUTE)
    key = report_key(what, arguments)
    return await _cached(request, ctx, alias, previous, key, lambda: compute(ctx.hub, arguments))


def _within_cost_limit(ctx: ApiContext, since: datetime, until: datetime, bucket: str) -> None:
    """Refuse a trend whose work exceeds ``[api] max_trend_buckets`` before any of it is done."""
    limit = ctx.settings.max_trend_buckets
    try:
        buckets = len(split(resolve_window(since, until, None), bucket))  # the engine's checks first
    except DoraQueryError as exc:
        raise _query_error(exc) from None
    if buckets > limit:
        raise invalid(
            f"The trend has {buckets} {bucket} buckets, more than the limit of {limit} (max_trend_buckets): "
            "ask for a shorter window or a longer bucket.",
            "query",
            "bucket",
            kind="cost_limit",
        )


def _query_error(exc: DoraQueryError) -> ApiError:
    detail = field_error(str(exc), "query", exc.parameter)
    return ApiError("validation_error", f"Invalid query parameter {exc}.", [detail])


def _hit(request: Request, ctx: ApiContext, data: bytes) -> Response:
    ctx.metrics.dora_cache_hits.inc()
    return ok_json(request, data, headers={"X-Cache": "hit"})


async def _cached(
    request: Request,
    ctx: ApiContext,
    alias: Hashable,
    previous: Hashable,
    key: Hashable,
    compute: Callable[[], Awaitable[Any]],
) -> Response:
    async def serialised() -> bytes:
        return to_json(await compute())

    if not ctx.cache.fresh(key):
        # A window relative to now moved on by a minute, nothing was ingested meanwhile: answer with
        # last minute's report (its window says so) while this minute's is computed once, in the background.
        stale = ctx.cache.lookup(previous)
        if stale is not None:
            ctx.cache.refresh(alias, key, serialised)
            ctx.metrics.dora_cache_stale.inc()
            return ok_json(request, stale, headers={"X-Cache": "stale"})

    try:
        data, hit = await ctx.cache.get_or_compute(key, serialised)
    except DoraQueryError as exc:  # the engine refuses the query (unknown profile, ...)
        raise _query_error(exc) from None
    ctx.cache.alias(alias, key)
    (ctx.metrics.dora_cache_hits if hit else ctx.metrics.dora_cache_misses).inc()
    return ok_json(request, data, headers={"X-Cache": "hit" if hit else "miss"})
