"""``/metrics/dora/{deployments,failures,changes,incidents,services,profiles}``: the events behind a report.

Each list takes the report's own parameters, so a link from a figure of ``/metrics/dora``
lists exactly what made it. Lists are paged with ``limit``/``cursor``; the cursor holds the
window of the first page, so a window relative to now does not move between pages.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from metrichub_core.api.context import context
from metrichub_core.api.envelope import ok
from metrichub_core.api.errors import ApiError, field_error, invalid
from metrichub_core.api.operations import Operations
from metrichub_core.api.params import DoraQuery, DoraWindow, parse_query
from metrichub_core.dora import DoraQueryError, DoraReport
from metrichub_core.dora.drilldown import DoraDrilldown, DrillChange, DrillDeployment, DrillIncident
from metrichub_core.dora.profiles import LEVELS, PROFILES, Band, Bound, Level, get_profile
from metrichub_core.filters import parse_labels

__all__ = ["DrillPage", "ProfileThresholds", "operations"]

operations = Operations("metrics")

T = TypeVar("T")

_Cursor = Annotated[str, Field(min_length=1, max_length=2048)]


class DrillQuery(DoraQuery):
    """The report's parameters, and a page."""

    limit: int = Field(100, ge=1, le=1000, description="Page size.")
    cursor: _Cursor | None = Field(None, description="`next_cursor` of the previous page (keeps its window).")


class ServicesQuery(DrillQuery):
    environment: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(  # type: ignore[assignment]
        None, description="Only this environment (default: every environment)."
    )


class DrillPage(BaseModel, Generic[T]):
    window: DoraWindow = Field(description="The report window these items belong to.")
    items: list[T]
    total: int = Field(description="Items on all pages.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; `null` on the last page.")


class Threshold(BaseModel):
    level: Level
    value: float
    strict: bool = Field(description="Figures strictly below `value` meet it (else at or below).")


class ProfileThresholds(BaseModel):
    name: str
    year: int
    default: bool
    lead_time_seconds: list[Threshold] = Field(description="Elite, high and medium bounds of the median.")
    change_failure_rate: list[Threshold]
    recovery_time_seconds: list[Threshold]
    frequency: dict[Band, Level] = Field(description="The level of each deployment-frequency band.")


_ERRORS: dict[str, Any] = {"errors": ("validation_error",)}


@operations.route(
    "GET", "/metrics/dora/deployments", summary="Deployments behind a report", query=DrillQuery,
    response=DrillPage[DrillDeployment], **_ERRORS,
)  # fmt: skip
async def dora_deployments(request: Request) -> Response:
    """The window's deployments of any status, newest first, with the changes they shipped, their lead
    times and the incidents attributed to them. Those with `counted` are `deployment_frequency.count`."""
    return await _drill_page(request, lambda drill: drill.deployments)


@operations.route(
    "GET", "/metrics/dora/failures", summary="Failed deployments behind a report", query=DrillQuery,
    response=DrillPage[DrillDeployment], **_ERRORS,
)  # fmt: skip
async def dora_failures(request: Request) -> Response:
    """The window's deployments that count as failed (`change_failure_rate.failed`), newest first, with
    their incidents and recovery times."""
    return await _drill_page(request, lambda drill: drill.failures)


@operations.route(
    "GET", "/metrics/dora/changes", summary="Changes behind a report", query=DrillQuery,
    response=DrillPage[DrillChange], **_ERRORS,
)  # fmt: skip
async def dora_changes(request: Request) -> Response:
    """The changes with a lead time in the window (`lead_time.count`), slowest first, with their `url`."""
    return await _drill_page(request, lambda drill: drill.changes)


@operations.route(
    "GET", "/metrics/dora/incidents", summary="Incidents behind a report", query=DrillQuery,
    response=DrillPage[DrillIncident], **_ERRORS,
)  # fmt: skip
async def dora_incidents(request: Request) -> Response:
    """The incidents that started in the window, newest first, with their deployment and recovery time
    (those with `recovery_seconds` are `failed_deployment_recovery_time.count`)."""
    return await _drill_page(request, lambda drill: drill.incidents)


@operations.route(
    "GET", "/metrics/dora/services", summary="DORA report per service", query=ServicesQuery,
    response=DrillPage[DoraReport], **_ERRORS,
)  # fmt: skip
async def dora_services(request: Request) -> Response:
    """One report per service and environment that deployed in the window, by service then environment."""
    ctx = context(request)
    query = parse_query(request, ServicesQuery)
    window, offset = _window_and_offset(query)
    with _refused():
        reports = await ctx.hub.dora_by_service(
            since=window.since,
            until=window.until,
            service=query.service,
            environment=query.environment,
            labels=parse_labels(query.label),
            profile=query.profile,
        )
    return ok(request, _page(reports, window, offset, query.limit))


@operations.route("GET", "/metrics/dora/profiles", summary="Benchmark profiles", response=list[ProfileThresholds])
async def dora_profiles(request: Request) -> Response:
    """Each benchmark profile's published bounds, for drawing reference lines (the first is the default)."""
    default = get_profile(None).name
    ordered = sorted(PROFILES.values(), key=lambda profile: (profile.name != default, -profile.year))
    return ok(
        request,
        [
            ProfileThresholds(
                name=profile.name,
                year=profile.year,
                default=profile.name == default,
                lead_time_seconds=_thresholds(profile.lead_time),
                change_failure_rate=_thresholds(profile.change_failure_rate),
                recovery_time_seconds=_thresholds(profile.recovery_time),
                frequency=dict(profile.frequency),
            )
            for profile in ordered
        ],
    )


def _thresholds(bounds: Sequence[Bound]) -> list[Threshold]:
    return [
        Threshold(level=level, value=bound.value, strict=bound.strict)
        for level, bound in zip(LEVELS[:3], bounds, strict=True)
    ]


async def _drill_page(request: Request, pick: Callable[[DoraDrilldown], Sequence[BaseModel]]) -> Response:
    ctx = context(request)
    query = parse_query(request, DrillQuery)
    window, offset = _window_and_offset(query)
    with _refused():
        get_profile(query.profile)  # the report's parameters, checked as the report checks them
        drill = await ctx.hub.dora_drilldown(
            since=window.since,
            until=window.until,
            service=query.service,
            environment=query.environment,
            labels=parse_labels(query.label),
        )
    return ok(request, _page(pick(drill), window, offset, query.limit))


def _page(items: Sequence[Any], window: DoraWindow, offset: int, limit: int) -> DrillPage[Any]:
    end = offset + limit
    more = end < len(items)
    return DrillPage(
        window=window,
        items=list(items[offset:end]),
        total=len(items),
        next_cursor=_encode(end, window) if more else None,
    )


def _window_and_offset(query: DrillQuery) -> tuple[DoraWindow, int]:
    if query.cursor is None:
        return query.window(datetime.now(UTC)), 0
    return _decode(query.cursor)


def _encode(offset: int, window: DoraWindow) -> str:
    text = f"1|{offset}|{window.since.isoformat()}|{window.until.isoformat()}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[DoraWindow, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, offset, since, until = text.split("|")
        window = DoraWindow(since=datetime.fromisoformat(since), until=datetime.fromisoformat(until))
        if version != "1" or int(offset) < 0 or window.since.tzinfo is None or window.until.tzinfo is None:
            raise ValueError(cursor)
        return window, int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("The cursor is not one this API returned.", "query", "cursor") from None


@contextlib.contextmanager
def _refused() -> Iterator[None]:
    """Turns the engine's refusal of a parameter (unknown profile, ...) into a 400 naming it."""
    try:
        yield
    except DoraQueryError as exc:
        detail = field_error(str(exc), "query", exc.parameter)
        raise ApiError("validation_error", f"Invalid query parameter {exc}.", [detail]) from None
