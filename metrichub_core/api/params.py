"""Query-string models: what each route accepts, validated once, documented in the OpenAPI schema."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request

from metrichub_core.api.errors import ApiError, field_error, field_errors
from metrichub_core.api.nul import nul_parameter_error
from metrichub_core.dora import DEFAULT_DAYS
from metrichub_core.filters import LABEL_PATTERN, MAX_LABEL_FILTERS, parse_moment

__all__ = [
    "MAX_WINDOW_DAYS",
    "ChangeListQuery",
    "CollectQuery",
    "DoraQuery",
    "DoraWindow",
    "EventListQuery",
    "IncidentListQuery",
    "ResolveQuery",
    "TrendQuery",
    "next_minute",
    "parse_query",
    "path_param",
    "resolve_window",
]

MAX_WINDOW_DAYS = 3660

_Moment = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="ISO date (`2026-03-02`, midnight UTC), ISO datetime with offset, or relative `30d`/`12h`/`2w`.",
        examples=["2026-03-02", "2026-03-02T10:00:00Z"],
    ),
]
_Name = Annotated[str, Field(min_length=1, max_length=512)]

_Label = Annotated[
    str,
    Field(
        pattern=LABEL_PATTERN,
        max_length=400,
        description="`KEY=VALUE`, e.g. `team=payments`: KEY is 1-128 of `A-Za-z0-9_.:/-` (starting with a letter, "
        "digit or `_`), VALUE up to 256 characters without control characters.",
    ),
]
_Labels = Annotated[
    list[_Label],
    Field(
        max_length=MAX_LABEL_FILTERS, description=f"Deployment label filters, repeatable (at most {MAX_LABEL_FILTERS})."
    ),
]


def _sane_cursor(cursor: str) -> str:
    """Cursors are opaque; one that is base64 JSON (as the storages make them) must hold 64-bit integers only."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, UnicodeError, RecursionError):
        return cursor  # not ours to read: the storage refuses it
    for item in decoded if isinstance(decoded, list) else [decoded]:
        if isinstance(item, int) and not -(2**63) <= item < 2**63:
            raise ValueError("not a cursor this API returned")
    return cursor


class DoraQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    since: _Moment | None = Field(None, description="Window start (inclusive). Default: `until` minus `days`.")
    until: _Moment | None = Field(None, description="Window end (exclusive). Default: now, rounded up to the minute.")
    days: int | None = Field(None, ge=1, le=MAX_WINDOW_DAYS, description="Window length when `since` is not given.")
    service: _Name | None = Field(None, description="Only this service (default: all).")
    environment: _Name = Field("production", description="Deployment environment.")
    label: _Labels = Field(default_factory=list)
    profile: _Name | None = Field(
        None, description="Benchmark profile: dora-2021, dora-2023, dora-2024 (default newest)."
    )

    def window(self, now: datetime | None = None) -> DoraWindow:
        return resolve_window(self.since, self.until, self.days, now=now)


class TrendQuery(DoraQuery):
    bucket: Literal["day", "week", "month"] = Field("week", description="Bucket size; weeks start on Monday.")


class _ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service: _Name | None = None
    source: _Name | None = None
    since: _Moment | None = Field(None, description="Only events whose main time is at or after this.")
    until: _Moment | None = Field(None, description="Only events whose main time is before this.")
    limit: int = Field(100, ge=1, le=1000, description="Page size.")
    cursor: Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(_sane_cursor)] | None = Field(
        None, description="`next_cursor` of the previous page."
    )

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        since = _moment("since", self.since) if self.since is not None else None
        until = _moment("until", self.until) if self.until is not None else None
        return since, until


class ChangeListQuery(_ListQuery):
    """Changes, newest commit first."""


class EventListQuery(_ListQuery):
    """Deployments, newest first (by finish, else start)."""

    environment: _Name | None = None
    label: _Labels = Field(default_factory=list)


class IncidentListQuery(_ListQuery):
    """Incidents, newest start first."""

    environment: _Name | None = None


class ResolveQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: _Name | None = Field(None, description="The incident's source, when its id is not unique.")


class CollectQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    full: bool = Field(False, description="Collect everything, not only what changed since the last success.")
    wait: bool = Field(False, description="Answer with the result instead of 202 once the collection has started.")

    @field_validator("full", "wait", mode="before")
    @classmethod
    def _strict_bool(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() not in {"true", "false", "1", "0"}:
            raise ValueError("expected true or false")
        return value


class DoraWindow(BaseModel):
    since: datetime
    until: datetime


M = TypeVar("M", bound=BaseModel)


def parse_query(request: Request, model: type[M]) -> M:
    """Validate the query string against ``model``; list fields take every occurrence, others exactly one.

    A NUL anywhere is refused (PostgreSQL cannot store or compare it), naming the parameter.
    """
    raw: dict[str, Any] = {}
    repeated = []
    for key in request.query_params.keys():
        values = request.query_params.getlist(key)
        if "\x00" in key or any("\x00" in value for value in values):
            raise nul_parameter_error("query", key.replace("\x00", "\\x00"))
        field = model.model_fields.get(key)
        if field is not None and _is_list(field.annotation):
            raw[key] = values
        elif len(values) > 1:
            repeated.append(key)
        else:
            raw[key] = values[0]
    if repeated:
        details = [field_error("given more than once", "query", key, kind="repeated") for key in repeated]
        raise ApiError("validation_error", "Invalid query parameters.", details)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        details = field_errors(exc.errors(include_input=False, include_url=False), prefix=("query",))
        raise ApiError("validation_error", "Invalid query parameters.", details) from None


def path_param(request: Request, name: str) -> str:
    """The path parameter ``name``; a NUL in it is ``400 validation_error`` naming it."""
    value = str(request.path_params[name])
    if "\x00" in value:
        raise nul_parameter_error("path", name)
    return value


def resolve_window(
    since_text: str | None, until_text: str | None, days: int | None, *, now: datetime | None = None
) -> DoraWindow:
    """Turn the query's window parameters into ``[since, until)``; refuse contradictions and absurd spans."""
    if since_text is not None and days is not None:
        raise _window_error("since", "give since or days, not both")
    # "Now" is rounded up to the minute (default until, relative 30d...), so repeated requests share one report.
    now = next_minute(now or datetime.now(UTC))
    until = _moment("until", until_text, now=now) if until_text is not None else now
    if since_text is not None:
        since = _moment("since", since_text, now=now)
    else:
        try:
            since = until - timedelta(days=days or DEFAULT_DAYS)
        except OverflowError:
            raise _window_error("days", "the window starts before year 1") from None
    if since >= until:
        raise _window_error("since", "since must be before until")
    if (until - since) > timedelta(days=MAX_WINDOW_DAYS):
        raise _window_error("since", f"the window is longer than {MAX_WINDOW_DAYS} days")
    return DoraWindow(since=since, until=until)


def next_minute(moment: datetime) -> datetime:
    """``moment`` rounded up to a whole minute (unchanged when it is one)."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def _moment(name: str, text: str, *, now: datetime | None = None) -> datetime:
    # A "+" in an unencoded query string arrives as a space: "10:00:00 02:00" meant "+02:00".
    candidate = text.strip()
    if " " in candidate and "T" in candidate:
        candidate = candidate.replace(" ", "+")
    try:
        moment = parse_moment(candidate, now=now)
    except (ValueError, OverflowError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else "out of range"
        raise _window_error(name, message) from None
    if not math.isfinite(moment.timestamp()):  # pragma: no cover - defensive
        raise _window_error(name, "out of range")
    return moment


def _window_error(name: str, message: str) -> ApiError:
    return ApiError(
        "validation_error", f"Invalid query parameter {name}: {message}.", [field_error(message, "query", name)]
    )


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list
