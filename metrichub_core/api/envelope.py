"""The response envelope: ``{"data": ..., "trace_id": ...}`` or ``{"error": {...}}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import pydantic_core
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Scope

from metrichub_core.api.errors import ERROR_STATUS, ErrorCode

__all__ = [
    "REQUEST_ID_KEY",
    "Envelope",
    "ErrorBody",
    "ErrorEnvelope",
    "JSONResponse",
    "error_response",
    "ok",
    "ok_json",
    "to_json",
    "trace_id_of",
]

REQUEST_ID_KEY = "metrichub.request_id"

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """A successful response."""

    data: T
    trace_id: str = Field(description="The request id, also sent as the X-Request-ID header.")


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str
    details: Any = Field(None, description="Field errors ({field, loc, message, type}) or other specifics.")
    trace_id: str


class ErrorEnvelope(BaseModel):
    """An error response."""

    error: ErrorBody


def to_json(value: Any) -> bytes:
    """Serialise models, datetimes and plain data the way pydantic does (``Z``-less ISO 8601, UTC offsets kept)."""
    return pydantic_core.to_json(value, by_alias=True)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else to_json(content)


def trace_id_of(conn: HTTPConnection | Scope) -> str:
    scope = conn.scope if isinstance(conn, HTTPConnection) else conn
    return str(scope.get(REQUEST_ID_KEY, ""))


def ok(
    conn: HTTPConnection, data: Any, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return ok_json(conn, to_json(data), status_code=status_code, headers=headers)


def ok_json(
    conn: HTTPConnection, data_json: bytes, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Wrap already serialised ``data`` (e.g. a cached report) without parsing it again."""
    body = b'{"data":' + data_json + b',"trace_id":' + to_json(trace_id_of(conn)) + b"}"
    return JSONResponse(body, status_code=status_code, headers=headers)


def error_response(
    code: ErrorCode,
    message: str,
    *,
    trace_id: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details, "trace_id": trace_id}}
    return JSONResponse(body, status_code=ERROR_STATUS[code], headers=headers)
