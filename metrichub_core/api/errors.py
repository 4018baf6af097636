"""The API's error codes and the one exception every route raises to report them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["ERROR_STATUS", "ApiError", "ErrorCode", "field_error", "field_errors", "invalid"]

ErrorCode = Literal[
    "validation_error",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "payload_too_large",
    "unsupported_media_type",
    "timeout",
    "internal_error",
]

ERROR_STATUS: dict[ErrorCode, int] = {
    "validation_error": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "internal_error": 500,
    "timeout": 504,
}


class ApiError(Exception):
    """An error response: ``code`` picks the HTTP status, ``details`` is JSON-ready."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})

    @property
    def status_code(self) -> int:
        return ERROR_STATUS[self.code]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


def field_error(message: str, *loc: str | int, kind: str = "value_error") -> dict[str, Any]:
    """One ``{"field", "loc", "message", "type"}`` detail naming the field at ``loc`` (``()``: the whole body)."""
    return {"field": _dotted(list(loc)), "loc": list(loc), "message": message, "type": kind}


def invalid(message: str, *loc: str | int, kind: str = "value_error") -> ApiError:
    """``400 validation_error`` with one detail naming the field at ``loc``."""
    return ApiError("validation_error", message, [field_error(message, *loc, kind=kind)])


def field_errors(errors: list[Any], *, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic's ``errors(include_input=False)`` as ``{"field", "loc", "message", "type"}`` (inputs never echoed)."""
    return [
        field_error(str(error.get("msg", "")), *prefix, *error.get("loc", ()), kind=str(error.get("type", "")))
        for error in errors
    ]


def _dotted(loc: list[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(body)"
