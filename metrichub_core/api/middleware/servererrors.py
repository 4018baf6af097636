"""Turn any unhandled exception into a logged ``internal_error`` envelope (never a traceback to the client)."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from metrichub_core.api.envelope import error_response, trace_id_of
from metrichub_core.api.logsafe import loggable
from metrichub_core.api.middleware._started import StartTrackingSend

__all__ = ["ServerErrorsMiddleware"]

logger = logging.getLogger("metrichub.api")


class ServerErrorsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracking_send = StartTrackingSend(send)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            trace_id = trace_id_of(scope)
            logger.exception(
                "unhandled error in %s %s (trace_id=%s)", loggable(scope["method"]), loggable(scope["path"]), trace_id
            )
            if tracking_send.started:
                raise
            response = error_response("internal_error", "Internal server error.", trace_id=trace_id)
            await response(scope, receive, send)
