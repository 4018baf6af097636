"""``/deployments``, ``/changes``, ``/incidents``: ingest (one or a list, all or nothing), list, resolve."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from metrichub_core.api.context import context
from metrichub_core.api.envelope import ok
from metrichub_core.api.errors import ApiError, field_errors, invalid
from metrichub_core.api.nul import refuse_nul_in_events
from metrichub_core.api.operations import Operations
from metrichub_core.api.params import (
    ChangeListQuery,
    EventListQuery,
    IncidentListQuery,
    ResolveQuery,
    parse_query,
    path_param,
)
from metrichub_core.errors import ResolveConflict, ResolveError, UnknownIncident
from metrichub_core.filters import parse_labels
from metrichub_core.models import Change, Deployment, EventKind, Incident, UTCDateTime
from metrichub_core.storage.base import EventQuery

__all__ = ["EventPage", "Ingested", "ResolveBody", "operations", "parse_body"]

operations = Operations("events")

E = TypeVar("E", Deployment, Change, Incident)
M = TypeVar("M", bound=BaseModel)


class EventPage(BaseModel, Generic[E]):
    items: list[E]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; `null` on the last page.")


class Ingested(BaseModel):
    kind: EventKind
    ingested: int = Field(description="Events stored (inserted or updated by their (source, id) key).")


class DeploymentsIn(RootModel[Deployment | list[Deployment]]):
    """One deployment or a list of them."""


class ChangesIn(RootModel[Change | list[Change]]):
    """One change or a list of them."""


class IncidentsIn(RootModel[Incident | list[Incident]]):
    """One incident or a list of them."""


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolved_at: UTCDateTime | None = Field(None, description="When the incident was resolved; default now.")


def _body_error(message: str, kind: str) -> ApiError:
    return invalid(message, kind=kind)


_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {
    Deployment: TypeAdapter(list[Deployment]),
    Change: TypeAdapter(list[Change]),
    Incident: TypeAdapter(list[Incident]),
}


def parse_body(body: bytes, model: type[M]) -> list[M]:
    """Validate a JSON object or list of ``model`` strictly as JSON (a number is no timestamp); all or nothing."""
    stripped = body.lstrip()
    if not stripped:
        raise _body_error(f"Expected a {_kind(model)} object or a list of them; the body is empty.", "missing")
    many = stripped[:1] == b"["
    try:
        items = (
            list(_ADAPTERS[model].validate_json(body, strict=True))
            if many
            else [model.model_validate_json(body, strict=True)]
        )
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_input=False, include_url=False))
        invalid = len({error["loc"][0] for error in errors if error["loc"]}) if many else 1
        what = f"{max(invalid, 1)} invalid {_kind(model)}(s)" if many else f"Invalid {_kind(model)}"
        raise ApiError("validation_error", f"{what}; nothing was stored.", errors) from None
    if b"\\u0000" in body:  # JSON's only way to carry a NUL
        refuse_nul_in_events(items, indexed=many, message="NUL characters are not allowed; nothing was stored.")
    return items


def _kind(model: type[BaseModel]) -> str:
    return str(getattr(model, "kind", model.__name__.lower()))


async def _ingest(request: Request, model: type[E]) -> Response:
    ctx = context(request)
    events = parse_body(await request.body(), model)
    stored = await ctx.hub.ingest(events)  # the cache is emptied by the app's ingest observer
    if stored:
        ctx.metrics.events_ingested.labels(model.kind, "api").inc(stored)
    return ok(request, Ingested(kind=model.kind, ingested=stored))


async def _list(
    request: Request,
    kind: EventKind,
    query_model: type[ChangeListQuery] | type[EventListQuery] | type[IncidentListQuery],
) -> Response:
    ctx = context(request)
    query = parse_query(request, query_model)
    since, until = query.bounds()
    labels = parse_labels(getattr(query, "label", []))
    event_query = EventQuery(
        kind=kind,
        service=query.service,
        environment=getattr(query, "environment", None),
        source=query.source,
        since=since,
        until=until,
        labels=labels,
        limit=query.limit,
        cursor=query.cursor,
    )
    try:
        page = await ctx.hub.event_page(event_query)
    except (ValueError, OverflowError):  # OverflowError: an integer SQLite cannot hold
        raise invalid("The cursor is not one this API returned.", "query", "cursor") from None
    return ok(request, {"items": page.items, "next_cursor": page.next_cursor})


_INGEST = {"body": None, "response": Ingested, "errors": ("validation_error",), "write": True}


@operations.route("POST", "/deployments", summary="Ingest deployments", **{**_INGEST, "body": DeploymentsIn})
async def ingest_deployments(request: Request) -> Response:
    """Store one deployment or a list; one invalid item rejects the request and stores nothing."""
    return await _ingest(request, Deployment)


@operations.route("POST", "/changes", summary="Ingest changes", **{**_INGEST, "body": ChangesIn})
async def ingest_changes(request: Request) -> Response:
    """Store one change or a list; one invalid item rejects the request and stores nothing."""
    return await _ingest(request, Change)


@operations.route("POST", "/incidents", summary="Ingest incidents", **{**_INGEST, "body": IncidentsIn})
async def ingest_incidents(request: Request) -> Response:
    """Store one incident or a list; one invalid item rejects the request and stores nothing."""
    return await _ingest(request, Incident)


@operations.route(
    "GET",
    "/deployments",
    summary="List deployments",
    query=EventListQuery,
    response=EventPage[Deployment],
    errors=("validation_error",),
)
async def list_deployments(request: Request) -> Response:
    """Deployments, newest first (by finish, else start), one page at a time."""
    return await _list(request, "deployment", EventListQuery)


@operations.route(
    "GET",
    "/changes",
    summary="List changes",
    query=ChangeListQuery,
    response=EventPage[Change],
    errors=("validation_error",),
)
async def list_changes(request: Request) -> Response:
    """Changes, newest first commit first, one page at a time."""
    return await _list(request, "change", ChangeListQuery)


@operations.route(
    "GET",
    "/incidents",
    summary="List incidents",
    query=IncidentListQuery,
    response=EventPage[Incident],
    errors=("validation_error",),
)
async def list_incidents(request: Request) -> Response:
    """Incidents, newest start first, one page at a time."""
    return await _list(request, "incident", IncidentListQuery)


@operations.route(
    "POST",
    "/incidents/{id}/resolve",
    summary="Resolve an incident",
    query=ResolveQuery,
    body=ResolveBody,
    body_required=False,
    response=Incident,
    errors=("validation_error", "not_found", "conflict"),
    write=True,
    path_params={"id": "The incident id."},
)
async def resolve_incident(request: Request) -> Response:
    """Set `resolved_at` (default now). Resolving again at the same time is a no-op; at another time, 409.

    When sources share the id, name one with `?source=` (else 409).
    """
    ctx = context(request)
    query = parse_query(request, ResolveQuery)
    incident_id = path_param(request, "id")
    raw = await request.body()
    try:
        body = ResolveBody.model_validate_json(raw if raw.strip() else b"{}", strict=True)
    except ValidationError as exc:
        raise ApiError(
            "validation_error", "Invalid body.", field_errors(exc.errors(include_input=False, include_url=False))
        ) from None
    try:
        resolved, changed = await ctx.hub.resolve_incident(
            incident_id, source=query.source, resolved_at=body.resolved_at
        )
    except UnknownIncident as exc:
        raise ApiError("not_found", f"{str(exc).capitalize()}.") from None
    except ResolveConflict as exc:
        hint = "; pass ?source=" if "sources" in exc.details else ""
        raise ApiError("conflict", f"{str(exc).capitalize()}{hint}.", exc.details) from None
    except ResolveError as exc:  # the time itself
        raise invalid(f"{exc}.", "resolved_at") from None
    if changed:
        ctx.metrics.events_ingested.labels("incident", "resolve").inc()
    return ok(request, resolved)
