"""The API's error codes and the one exception every route raises to report them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["ERROR_STATUS", "ApiError", "ErrorCode", "field_errors"]

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


def field_errors(errors: list[Any], *, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic's ``errors(include_input=False)`` as ``{"field", "loc", "message", "type"}`` (inputs never echoed)."""
    result = []
    for error in errors:
        loc = [*prefix, *error.get("loc", ())]
        result.append(
            {
                "field": _dotted(loc),
                "loc": loc,
                "message": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return result


def _dotted(loc: list[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(body)"
