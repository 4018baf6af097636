"""``/health``: liveness; ``/health/storage``: whether storage answers (503 when it does not)."""

from __future__ import annotations

import logging

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from metrichub_core import __version__
from metrichub_core.api.context import context
from metrichub_core.api.envelope import ok
from metrichub_core.api.operations import Operations
from metrichub_core.redaction import redact_url

__all__ = ["Health", "StorageHealthOut", "operations"]

logger = logging.getLogger("metrichub.api")

operations = Operations("health")


class Health(BaseModel):
    status: str
    version: str


class StorageHealthOut(BaseModel):
    ok: bool
    backend: str
    schema_version: int | None = None
    detail: str | None = None


@operations.route("GET", "/health", summary="Liveness", response=Health)
async def health(request: Request) -> Response:
    """Answers as long as the process serves requests."""
    return ok(request, Health(status="ok", version=__version__))


@operations.route(
    "GET",
    "/health/storage",
    summary="Storage health",
    response=StorageHealthOut,
    statuses={503: "Storage does not answer (the body still holds the health report)."},
)
async def storage_health(request: Request) -> Response:
    """Whether the storage backend answers, and its schema version; 503 with the same body when it does not."""
    state = await context(request).hub.storage_health()
    if not state.ok:
        logger.warning("storage health check failed: %s", redact_url(state.detail or ""))
    result = StorageHealthOut(
        ok=state.ok,
        backend=state.backend,
        schema_version=state.schema_version,
        detail=redact_url(state.detail) if state.detail else None,
    )
    return ok(request, result, status_code=200 if result.ok else 503)
