"""Refuse request bodies over ``max_body_bytes`` with 413, counting chunks as they arrive (never buffering them).

A server that answers early and closes while the client is still sending makes the kernel reset the
connection, and the client loses the answer (``ConnectionResetError``/``BrokenPipeError`` in Python's
``urllib``). So the 413 is sent first, then the rest of the body is read and discarded (a lingering
close, as nginx and Apache do) up to ``drain_bytes`` and ``drain_seconds``; only then does the
response end and the connection close. A client that sends more than that is cut off.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metrichub_core.api.envelope import error_response, trace_id_of
from metrichub_core.api.errors import ApiError

__all__ = ["DRAIN_BYTES", "DRAIN_SECONDS", "BodyLimitMiddleware", "PayloadTooLarge"]

DRAIN_BYTES = 32 * 1024 * 1024
DRAIN_SECONDS = 10.0


class PayloadTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "payload_too_large", f"The request body is larger than {limit} bytes.", {"max_body_bytes": limit}
        )


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        *,
        drain_bytes: int = DRAIN_BYTES,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.drain_bytes = drain_bytes
        self.drain_seconds = drain_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send)  # the app never sees the request
            return
        received = 0
        overflowed = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise PayloadTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if overflowed and not started:
                return  # the app's own answer to PayloadTooLarge: this middleware answers and drains instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except PayloadTooLarge:
            if not overflowed or started:
                raise
        if overflowed and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the whole 413, read and discard the rest of the body (bounded), then end the response."""
        error = PayloadTooLarge(self.max_body_bytes)
        response = error_response(error.code, error.message, details=error.details, trace_id=trace_id_of(scope))
        response.headers["Connection"] = "close"
        await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
        # The body goes out complete (Content-Length is set), so the client can read it while we drain.
        await send({"type": "http.response.body", "body": response.body, "more_body": True})
        if not _expects_continue(scope):  # a client waiting for "100 Continue" sends no body; nothing to drain
            await self._drain(receive)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _drain(self, receive: Receive) -> None:
        discarded = 0
        try:
            async with asyncio.timeout(self.drain_seconds):
                while discarded <= self.drain_bytes:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client went away
                    discarded += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return
        except TimeoutError:
            pass


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _expects_continue(scope: Scope) -> bool:
    return any(name == b"expect" and value.lower() == b"100-continue" for name, value in scope["headers"])
