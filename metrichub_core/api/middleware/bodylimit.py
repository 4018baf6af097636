"""Refuse request bodies over ``max_body_bytes`` with 413, counting chunks as they arrive (never buffering them)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metrichub_core.api.envelope import error_response, trace_id_of
from metrichub_core.api.errors import ApiError

__all__ = ["BodyLimitMiddleware", "PayloadTooLarge"]


class PayloadTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "payload_too_large", f"The request body is larger than {limit} bytes.", {"max_body_bytes": limit}
        )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            # Answer before reading a byte of it; the server drops the unread body.
            error = PayloadTooLarge(limit)
            response = error_response(error.code, error.message, details=error.details, trace_id=trace_id_of(scope))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
