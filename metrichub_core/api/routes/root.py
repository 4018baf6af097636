"""Outside ``/api/v1``: the OpenAPI document, the Prometheus exposition and the dashboard page."""

from __future__ import annotations

import asyncio
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

from metrichub_core.api.context import context
from metrichub_core.api.envelope import JSONResponse
from metrichub_core.api.operations import Operations
from metrichub_core.api.prometheus import CONTENT_TYPE
from metrichub_core.api.scrape import refresh

__all__ = ["ASSETS", "BROWSER_HEADERS", "operations"]

operations = Operations("meta", prefix="")

ASSETS = {"js": "text/javascript", "css": "text/css"}

SCRAPE_REFRESH_SECONDS = 10.0


@operations.route(
    "GET", "/openapi.json", summary="This API's OpenAPI document", response=None, media_type="application/json"
)
async def openapi(request: Request) -> Response:
    """The OpenAPI 3.1 schema of every route, generated from the route table and the pydantic models."""
    return JSONResponse(context(request).openapi_document)


@operations.route("GET", "/metrics", summary="Prometheus metrics", response=None, media_type=CONTENT_TYPE)
async def prometheus_metrics(request: Request) -> Response:
    """`metrichub_*` DORA gauges per service and environment (last 30 days), HTTP and collector counters."""
    ctx = context(request)
    if ctx.scrape_task is None or ctx.scrape_task.done():
        ctx.scrape_task = asyncio.create_task(refresh(ctx))
    try:
        # A slow DORA refresh must not make the scrape itself time out: the previous figures are served.
        await asyncio.wait_for(asyncio.shield(ctx.scrape_task), timeout=SCRAPE_REFRESH_SECONDS)
    except TimeoutError:
        pass
    return Response(ctx.metrics.exposition(), media_type=CONTENT_TYPE)


@operations.route("GET", "/", summary="Dashboard", response=None, media_type="text/html")
async def dashboard(request: Request) -> Response:
    """A one-page dashboard that reads this API. With `[api] auth = "all"` the page (which holds no data)
    asks for a token before it fetches anything, keeps it in the tab's sessionStorage and sends it as a
    bearer token."""
    page = _dashboard_html(reads_need_token=context(request).auth.reads)
    return Response(page, media_type="text/html", headers={"Cache-Control": "no-cache", **BROWSER_HEADERS})


@operations.route("GET", "/assets/dashboard.js", summary="Dashboard script", response=None, media_type=ASSETS["js"])
async def dashboard_script(request: Request) -> Response:
    """The dashboard's script: it reads this API and draws the charts as SVG (no library, no CDN)."""
    return _asset_response("dashboard.js", ASSETS["js"])


@operations.route(
    "GET", "/assets/dashboard.css", summary="Dashboard style sheet", response=None, media_type=ASSETS["css"]
)
async def dashboard_style(request: Request) -> Response:
    """The dashboard's style sheet."""
    return _asset_response("dashboard.css", ASSETS["css"])


def _asset_response(name: str, media_type: str) -> Response:
    return Response(_static(name), media_type=media_type, headers={"Cache-Control": "no-cache", **BROWSER_HEADERS})


@cache
def _dashboard_html(*, reads_need_token: bool) -> bytes:
    page = resources.files("metrichub_core.api").joinpath("static/dashboard.html").read_bytes()
    if reads_need_token:  # the page reads this mark before its first fetch
        page = page.replace(_AUTH_MARK % b"writes", _AUTH_MARK % b"all", 1)
    return page


_AUTH_MARK = b'<meta name="metrichub-auth" content="%s">'


# The page loads only its own script and style sheet and reads only this API; nobody may frame it.
BROWSER_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _static(name: str) -> bytes:
    return resources.files("metrichub_core.api").joinpath(f"static/{name}").read_bytes()
