"""Answer ``504 timeout`` when the app has not started its response within the configured time.

The request runs under a deadline (``metrichub_core.deadline``) at the same moment, so
that the work it started (storage queries, DORA rules, in threads too) stops with it.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from metrichub_core.api.envelope import error_response, trace_id_of
from metrichub_core.api.logsafe import loggable
from metrichub_core.api.middleware._started import StartTrackingSend
from metrichub_core.deadline import DeadlineExceeded
from metrichub_core.deadline import deadline as work_deadline

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
            with work_deadline(self.seconds):
                async with deadline:
                    await self.app(scope, receive, tracking_send)
        except (TimeoutError, DeadlineExceeded) as exc:
            # The work may notice the deadline (DeadlineExceeded) just before the timer fires.
            if not (deadline.expired() or isinstance(exc, DeadlineExceeded)) or tracking_send.started:
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
