"""Writes take JSON only: a body sent as anything but ``application/json`` is ``415 unsupported_media_type``.

Why: a web page can make a browser POST ``text/plain``, form or multipart bodies to any address without
asking (no CORS preflight); ``application/json`` it cannot. So a page on the network cannot write to an
API that has no tokens.
"""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import Response

from metrichub_core.api.errors import ApiError, field_error
from metrichub_core.api.operations import Endpoint, Operation

__all__ = ["JSON", "require_json", "takes_json_body"]

JSON = "application/json"


def takes_json_body(operation: Operation) -> bool:
    """Whether ``operation`` refuses bodies of another media type: every write route with a body."""
    return operation.write and operation.body is not None


def require_json(endpoint: Endpoint, *, optional: bool) -> Endpoint:
    """``endpoint`` behind the media-type check; with ``optional`` a request without body nor type passes."""

    @functools.wraps(endpoint)
    async def checked(request: Request) -> Response:
        content_type = request.headers.get("content-type")
        if content_type is None and optional and not _has_body(request):
            return await endpoint(request)
        if content_type is None or content_type.partition(";")[0].strip().lower() != JSON:
            given = "no Content-Type" if content_type is None else "another Content-Type"
            message = f"This route takes {JSON} bodies only ({given} was sent)."
            detail = field_error(message, "header", "content-type", kind="media_type")
            raise ApiError("unsupported_media_type", message, [detail])
        return await endpoint(request)

    return checked


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return "transfer-encoding" in request.headers or (length is not None and length.strip() not in {"", "0"})
