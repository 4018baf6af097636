"""Count and time every request (Prometheus) and write one access-log line, by route template, never the query."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metrichub_core.api.envelope import trace_id_of
from metrichub_core.api.logsafe import loggable

if TYPE_CHECKING:
    from metrichub_core.api.prometheus import ApiMetrics

__all__ = ["InstrumentationMiddleware"]

logger = logging.getLogger("metrichub.api.access")


class InstrumentationMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], route, status, elapsed)
            if logger.isEnabledFor(logging.INFO):  # the path is decoded: %0A would start a forged line
                method, path = loggable(scope["method"]), loggable(scope["path"])
                logger.info("%s %s %d %.1fms trace_id=%s", method, path, status, elapsed * 1000, trace_id_of(scope))
