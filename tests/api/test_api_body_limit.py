"""The 413-then-drain of ``BodyLimitMiddleware`` at the ASGI level: bounded in bytes and time, never buffered."""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from metrichub_core.api.middleware.bodylimit import BodyLimitMiddleware


async def _echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    body = await Request(scope, receive).body()
    await Response(str(len(body)))(scope, receive, send)


def _scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}


class _Client:
    """Endless (or ``chunks``-long) body of 1 KiB pieces; records what it sent and what it was sent."""

    def __init__(self, chunks: int | None = None, delay: float = 0.0) -> None:
        self.chunks = chunks
        self.delay = delay
        self.sent_bytes = 0
        self.messages: list[Message] = []

    async def receive(self) -> Message:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.sent_bytes += 1024
        more = self.chunks is None or self.sent_bytes < self.chunks * 1024
        return {"type": "http.request", "body": b"x" * 1024, "more_body": more}

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    def answer(self) -> tuple[int, dict[bytes, bytes], bytes, bool]:
        start = self.messages[0]
        body = b"".join(message.get("body", b"") for message in self.messages[1:])
        ended = not self.messages[-1].get("more_body", False)
        return start["status"], dict(start["headers"]), body, ended


async def test_the_413_is_sent_whole_before_the_body_is_drained() -> None:
    client = _Client(chunks=100)
    middleware = BodyLimitMiddleware(_echo_length, max_body_bytes=10_000)
    await middleware(_scope([(b"content-length", b"102400")]), client.receive, client.send)
    status, headers, body, ended = client.answer()
    assert status == 413 and headers[b"connection"] == b"close" and ended
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert int(headers[b"content-length"]) == len(body)
    # The whole error body went out in the first body message, before any draining.
    assert client.messages[1]["more_body"] is True and client.messages[1]["body"] == body
    assert client.sent_bytes == 100 * 1024  # drained to the end: the client is never cut off mid-send


async def test_a_chunked_body_over_the_limit_gets_the_middlewares_413_then_is_drained() -> None:
    client = _Client(chunks=100)
    middleware = BodyLimitMiddleware(_echo_length, max_body_bytes=10_000)
    await middleware(_scope([(b"transfer-encoding", b"chunked")]), client.receive, client.send)
    status, headers, body, ended = client.answer()
    assert status == 413 and headers[b"connection"] == b"close" and ended
    assert json.loads(body)["error"]["details"] == {"max_body_bytes": 10_000}
    assert [message["type"] for message in client.messages].count("http.response.start") == 1
    assert client.sent_bytes == 100 * 1024


async def test_draining_stops_at_its_byte_bound() -> None:
    client = _Client()  # never ends
    middleware = BodyLimitMiddleware(_echo_length, max_body_bytes=10_000, drain_bytes=50_000)
    await middleware(_scope([(b"content-length", b"999999999")]), client.receive, client.send)
    status, _, _, ended = client.answer()
    assert status == 413 and ended
    assert 50_000 < client.sent_bytes <= 50_000 + 2048


async def test_draining_stops_at_its_time_bound() -> None:
    client = _Client(delay=0.01)  # never ends, slowly
    middleware = BodyLimitMiddleware(_echo_length, max_body_bytes=10_000, drain_seconds=0.2)
    await middleware(_scope([(b"transfer-encoding", b"chunked")]), client.receive, client.send)
    status, _, _, ended = client.answer()
    assert status == 413 and ended


async def test_a_client_waiting_for_100_continue_is_answered_without_draining() -> None:
    client = _Client(chunks=100)
    middleware = BodyLimitMiddleware(_echo_length, max_body_bytes=10_000)
    headers = [(b"content-length", b"102400"), (b"expect", b"100-continue")]
    await middleware(_scope(headers), client.receive, client.send)
    assert client.answer()[0] == 413 and client.sent_bytes == 0


async def test_bodies_within_the_limit_pass_untouched() -> None:
    client = _Client(chunks=5)
    middleware = BodyLimitMiddleware(_echo_length, max_body_bytes=10_000)
    await middleware(_scope([(b"content-length", b"5120")]), client.receive, client.send)
    status, _, body, _ = client.answer()
    assert status == 200 and body == b"5120"
