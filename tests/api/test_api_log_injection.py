"""A request cannot forge log lines: control characters from the path or method are escaped in every log line."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from metrichub_core.api.logsafe import loggable
from metrichub_core.api.middleware.servererrors import ServerErrorsMiddleware
from metrichub_core.api.middleware.timeout import TimeoutMiddleware

FORGED = "/api/v1/no%0D%0A2026-11-30 05:00:00,000 INFO metrichub.api.access: POST /api/v1/deployments 200"


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name.startswith("metrichub")]


def _assert_one_line_each(messages: list[str]) -> None:
    assert messages
    for message in messages:
        assert "\n" not in message and "\r" not in message, message
        assert "\\x0d\\x0a2026-11-30" in message


async def test_the_access_log_escapes_the_decoded_path(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="metrichub.api.access"):
        response = await client.get(FORGED)
    assert response.status_code == 404
    _assert_one_line_each(_lines(caplog))


async def _boom(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("boom")


async def _slow(scope: Scope, receive: Receive, send: Send) -> None:
    await asyncio.sleep(5)


@pytest.mark.parametrize(
    ("app", "status"),
    [(ServerErrorsMiddleware(_boom), 500), (TimeoutMiddleware(_slow, seconds=0.01), 504)],
    ids=["server-error", "timeout"],
)
async def test_error_logs_escape_the_path(app: ASGIApp, status: int, caplog: pytest.LogCaptureFixture) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with caplog.at_level(logging.INFO):
            response = await client.get(FORGED)
    assert response.status_code == status
    messages = [message for message in _lines(caplog) if "2026-11-30" in message]
    _assert_one_line_each(messages)


def test_loggable() -> None:
    assert loggable("a\nb\r\x00\x1b[31m\u2028\u202e\x85c") == "a\\x0ab\\x0d\\x00\\x1b[31m\\u2028\\u202e\\x85c"
    assert loggable("/api/v1/équipe") == "/api/v1/équipe"  # printable text stays readable
    assert loggable("x" * 5000).endswith("...(cut)") and len(loggable("x" * 5000)) < 2100
