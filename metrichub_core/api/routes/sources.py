"""``/sources``: configured sources, their health, and collections on demand."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from metrichub_core.api._hub import SourceEntry
from metrichub_core.api.context import ApiContext, context
from metrichub_core.api.envelope import ok
from metrichub_core.api.errors import ApiError
from metrichub_core.api.operations import Operations
from metrichub_core.api.params import CollectQuery, parse_query
from metrichub_core.scheduling import CollectionBusy, CollectionOutcome

__all__ = ["CollectionOut", "SourceHealthOut", "SourceOut", "operations"]

operations = Operations("sources")

_ID = {"id": "The source id: its table name in `[sources.<id>]`."}


class CollectionOut(BaseModel):
    source: str
    status: str = Field(description="`started`, `succeeded` or `failed`.")
    trigger: str = Field(description="`api` or `schedule`.")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    events: int | None = None
    error: str | None = None


class SourceOut(BaseModel):
    id: str
    kind: str
    base_url: str | None
    schedule_minutes: float | None
    webhooks: bool
    fault: str | None = Field(None, description="Why the source cannot be used (its table or plugin), one line.")
    ok: bool
    running: bool
    breaker: str | None
    last_success_at: str | None
    last_run: dict[str, Any] | None


class SourceHealthOut(BaseModel):
    id: str
    kind: str
    ok: bool
    running: bool
    breaker: dict[str, Any]
    stats: dict[str, Any]
    budget: dict[str, Any]
    last_run: dict[str, Any] | None
    last_success_at: str | None
    fault: str | None = Field(None, description="Why the source cannot be used (its table or plugin), one line.")
    schedule_minutes: float | None
    last_api_collection: CollectionOut | None


@operations.route("GET", "/sources", summary="Configured sources", response=list[SourceOut])
async def list_sources(request: Request) -> Response:
    """Every `[sources.<id>]`: kind, schedule, breaker state and last collection; never config values."""
    ctx = context(request)
    listing = []
    for entry in ctx.access.sources():
        health = await ctx.hub.source_health(entry.id)
        listing.append(
            SourceOut(
                id=entry.id,
                kind=entry.kind,
                base_url=entry.base_url,
                schedule_minutes=entry.schedule_minutes,
                webhooks=entry.webhooks,
                fault=entry.fault,
                ok=health.ok,
                running=health.running or entry.id in ctx.runner.running,
                breaker=health.breaker.get("state"),
                last_success_at=health.last_success_at,
                last_run=health.last_run,
            )
        )
    return ok(request, listing)


@operations.route(
    "GET",
    "/sources/{id}/health",
    summary="Source health",
    response=SourceHealthOut,
    errors=("not_found",),
    path_params=_ID,
)
async def source_health(request: Request) -> Response:
    """Breaker state, collector counters, rate-limit budget and the last collection of one source."""
    ctx = context(request)
    entry = _entry(ctx, request.path_params["id"])
    health = await ctx.hub.source_health(entry.id)
    out = SourceHealthOut.model_validate(
        {
            **health.as_dict(),
            "running": health.running or entry.id in ctx.runner.running,
            "schedule_minutes": entry.schedule_minutes,
            "last_api_collection": _outcome(ctx.runner.last.get(entry.id)),
        }
    )
    return ok(request, out)


@operations.route(
    "POST",
    "/sources/{id}/collect",
    summary="Collect a source now",
    query=CollectQuery,
    response=CollectionOut,
    status_code=202,
    statuses={200: "With `wait=true`: the finished collection."},
    errors=("not_found", "conflict"),
    write=True,
    path_params=_ID,
)
async def collect_source(request: Request) -> Response:
    """Start a collection in the background (202), or with `wait=true` answer when it is done (200).

    The collection goes on if the request times out. 409 when one of this source is already running,
    here or in another process sharing the storage (another worker, `metrichub collect`): the message names it.
    """
    ctx = context(request)
    query = parse_query(request, CollectQuery)
    entry = _entry(ctx, request.path_params["id"])
    holder = await ctx.access.collection_holder(entry.id)
    if holder is not None:
        raise ApiError("conflict", f"{entry.id} is being collected by another process ({holder}).")
    try:
        task = ctx.runner.start(entry.id, full=query.full)
    except CollectionBusy as exc:
        raise ApiError("conflict", f"{str(exc).capitalize()}.") from None
    if not query.wait:
        return ok(request, CollectionOut(source=entry.id, status="started", trigger="api"), status_code=202)
    outcome = await asyncio.shield(task)
    if outcome.result and outcome.result.locked_by:  # another process took the lock in the meantime
        raise ApiError("conflict", f"{outcome.error}.")
    return ok(request, _outcome(outcome))


def _entry(ctx: ApiContext, source_id: str) -> SourceEntry:
    entry = ctx.access.source(source_id)
    if entry is None:
        raise ApiError("not_found", f"No source {source_id!r} is configured.")
    return entry


def _outcome(outcome: CollectionOutcome | None) -> CollectionOut | None:
    if outcome is None:
        return None
    return CollectionOut(
        source=outcome.source,
        status="succeeded" if outcome.ok else "failed",
        trigger=outcome.trigger,
        started_at=outcome.started_at,
        finished_at=outcome.finished_at,
        events=None if outcome.result is None else outcome.result.events,
        error=outcome.error,
    )
