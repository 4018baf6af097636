"""Answer ``504 timeout`` when the app has not started its response within the configured time."""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from metrichub_core.api.envelope import error_response, trace_id_of
from metrichub_core.api.logsafe import loggable
from metrichub_core.api.middleware._started import StartTrackingSend

__all__ = ["TimeoutMiddleware"]

logger = logging.getLogger("metrichub.api")


class TimeoutMiddleware:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracking_send = StartTrackingSend(send)

        deadline = asyncio.timeout(self.seconds)
        try:
            async with deadline:
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if not deadline.expired() or tracking_send.started:
                raise
            trace_id = trace_id_of(scope)
            logger.warning(
                "%s %s timed out after %.1fs (trace_id=%s)",
                loggable(scope["method"]),
                loggable(scope["path"]),
                self.seconds,
                trace_id,
            )
            message = f"The request did not complete within {self.seconds:g} seconds."
            await error_response("timeout", message, trace_id=trace_id)(scope, receive, send)
