"""Redirect ``/path/`` to ``/path`` with a relative ``Location``, never one built from the client's ``Host``."""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["TrailingSlashMiddleware"]


class TrailingSlashMiddleware:
    """Starlette's router answers ``/api/v1/health/`` with an absolute URL made from the request's
    ``Host`` header, so a forged Host lands in ``Location`` (cache poisoning, open redirect). This
    answers first, with the path and query alone; other paths go on to the router unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path != "/" and path.endswith("/"):
            # One leading slash: "//host/" must never become a protocol-relative "//host".
            stripped = "/" + path.strip("/")
            routes = scope["app"].router.routes
            if any(route.matches({**scope, "path": stripped})[0] != Match.NONE for route in routes):
                query = scope.get("query_string", b"").decode("latin-1")
                location = scope.get("root_path", "") + stripped + (f"?{query}" if query else "")
                await RedirectResponse(location, status_code=307)(scope, receive, send)
                return
        await self.app(scope, receive, send)
