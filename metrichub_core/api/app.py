"""``create_app(hub)``: the Starlette application serving the MetricHub API."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from metrichub_core.api._hub import HubAccess
from metrichub_core.api.auth import BearerAuth
from metrichub_core.api.cache import DEFAULT_TTL_SECONDS, DoraCache, follow_writes
from metrichub_core.api.context import ApiContext
from metrichub_core.api.deliveries import delivery_log
from metrichub_core.api.envelope import error_response, to_json, trace_id_of
from metrichub_core.api.errors import ApiError, ErrorCode, field_error
from metrichub_core.api.mediatype import require_json, takes_json_body
from metrichub_core.api.middleware.bodylimit import BodyLimitMiddleware
from metrichub_core.api.middleware.instrumentation import InstrumentationMiddleware
from metrichub_core.api.middleware.requestid import RequestIdMiddleware
from metrichub_core.api.middleware.servererrors import ServerErrorsMiddleware
from metrichub_core.api.middleware.slashes import TrailingSlashMiddleware
from metrichub_core.api.middleware.timeout import TimeoutMiddleware
from metrichub_core.api.openapi import build_openapi
from metrichub_core.api.operations import API_PREFIX, Endpoint, Operation
from metrichub_core.api.prometheus import ApiMetrics
from metrichub_core.api.routes import OPERATIONS
from metrichub_core.config import ApiSettings
from metrichub_core.hookspecs import hookimpl
from metrichub_core.hub import MetricHub
from metrichub_core.scheduling import DEFAULT_GRACE_SECONDS, CollectionOutcome

__all__ = ["create_app"]

logger = logging.getLogger("metrichub.api")

_STATUS_CODES: dict[int, ErrorCode] = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    504: "timeout",
}


def create_app(
    hub: MetricHub,
    *,
    settings: ApiSettings | None = None,
    schedule: bool = True,
    close_hub: bool = True,
    cache_ttl_seconds: float = DEFAULT_TTL_SECONDS,
    shutdown_grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> Starlette:
    """The API for ``hub``.

    Parameters:
        hub: the hub to serve; opened at startup (or on first use), closed at shutdown when ``close_hub``.
        settings: the ``[api]`` table; defaults to ``hub.settings.api``.
        schedule: run each source's ``schedule_minutes`` collections in the background.
        cache_ttl_seconds: how long a DORA result is reused when nothing is ingested through this app.
        shutdown_grace_seconds: how long shutdown waits for a collection in flight.
    """
    settings = settings or hub.settings.api
    metrics = ApiMetrics()
    access = HubAccess(hub)
    ctx: ApiContext

    def collected(outcome: CollectionOutcome) -> None:  # its batches emptied the cache as they were stored
        metrics.collections.labels(outcome.source, "succeeded" if outcome.ok else "failed").inc()

    auth = BearerAuth.from_settings(settings)
    ctx = ApiContext(
        hub=hub,
        settings=settings,
        access=access,
        auth=auth,
        metrics=metrics,
        cache=DoraCache(ttl_seconds=cache_ttl_seconds),
        runner=hub.runner(on_finished=collected, grace_seconds=shutdown_grace_seconds),
        deliveries=delivery_log(hub.storage),
        operations=list(OPERATIONS),
        openapi_document=to_json(build_openapi(OPERATIONS, auth=auth)),
    )

    observer = _IngestObserver(ctx)
    hub.plugins.manager.register(observer, name=f"metrichub.api.observer.{id(observer)}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.open()
        ctx.writes_task = asyncio.create_task(follow_writes(ctx.cache, hub.data_version), name="metrichub-writes")
        async with contextlib.AsyncExitStack() as stack:
            if schedule:
                schedules = hub.schedules()
                if schedules:
                    logger.info(
                        "scheduled collection: %s",
                        ", ".join(f"{key} every {value:g} min" for key, value in schedules.items()),
                    )
                await stack.enter_async_context(hub.scheduled(ctx.runner))
            try:
                yield
            finally:
                await ctx.runner.close()
                ctx.writes_task.cancel()
                await asyncio.gather(ctx.writes_task, return_exceptions=True)
                await ctx.cache.close()
                if ctx.scrape_task is not None:
                    ctx.scrape_task.cancel()
                    with contextlib.suppress(BaseException):
                        await ctx.scrape_task
                await access.close()
                hub.plugins.manager.unregister(observer)
                if close_hub:
                    await hub.close()

    routes = [_route(operation, auth) for operation in OPERATIONS]
    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(InstrumentationMiddleware, metrics=metrics),
        Middleware(ServerErrorsMiddleware),
        Middleware(TrailingSlashMiddleware),
        # Outside the timeout: draining an oversized body after the 413 has its own bounds.
        Middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes),
        Middleware(TimeoutMiddleware, seconds=settings.request_timeout_seconds),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_exception,
        },
        lifespan=lifespan,
    )
    app.state.metrichub = ctx
    return app


class _IngestObserver:
    """Empties the DORA cache whenever this process stores events (collections store batch by batch)."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    @hookimpl
    def on_events_ingested(self) -> None:
        self.ctx.data_changed()


def _route(operation: Operation, auth: BearerAuth) -> Route:
    endpoint: Endpoint = operation.endpoint
    if operation.query is None and operation.path.startswith(API_PREFIX):
        endpoint = _without_query(endpoint)
    if takes_json_body(operation):
        endpoint = require_json(endpoint, optional=not operation.body_required)
    if auth.guards(operation):
        endpoint = _authenticated(endpoint, auth, write=operation.write)
    return Route(operation.path, endpoint, methods=[operation.method], name=operation.operation_id)


def _without_query(endpoint: Endpoint) -> Endpoint:
    """A route that takes no query parameters refuses them, as the others refuse unknown ones."""

    @functools.wraps(endpoint)
    async def checked(request: Request) -> Response:
        if request.scope["query_string"]:
            names = sorted(set(request.query_params.keys()))
            details = [field_error("unknown parameter", "query", name, kind="extra_forbidden") for name in names]
            raise ApiError("validation_error", "This route takes no query parameters.", details)
        return await endpoint(request)

    return checked


def _authenticated(endpoint: Endpoint, auth: BearerAuth, *, write: bool) -> Endpoint:
    @functools.wraps(endpoint)
    async def checked(request: Request) -> Response:
        auth.check(request, write=write)
        return await endpoint(request)

    return checked


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(
        exc.code, exc.message, details=exc.details, trace_id=trace_id_of(request), headers=exc.headers
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _STATUS_CODES.get(exc.status_code, "internal_error" if exc.status_code >= 500 else "validation_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"No route {request.method} {request.url.path}."
    elif exc.status_code == 405:
        allowed = _allowed_methods(request.app.routes, request)
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.url.path} does not take {request.method}; it takes {', '.join(allowed)}."
    else:
        message = str(exc.detail)
    return error_response(code, message, trace_id=trace_id_of(request), headers=headers)


def _allowed_methods(routes: Sequence[BaseRoute], request: Request) -> list[str]:
    methods: set[str] = set()
    scope = {"type": "http", "path": request.url.path, "method": "", "root_path": request.scope.get("root_path", "")}
    for route in routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)
