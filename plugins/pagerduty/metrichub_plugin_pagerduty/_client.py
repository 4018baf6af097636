"""A thin PagerDuty REST v2 client over the host's ``httpx.AsyncClient``: auth, errors, offset paging.

Retries, the wait a ``429`` asks for (``ratelimit-reset`` is delta seconds), backoff for a
header-less ``429``, the circuit breaker and client-side pacing are the host's job: every
request goes through ``ctx.http``. PagerDuty's ETag support is unconfirmed and its list
windows move with the clock, so no request is kept in the host's ETag cache.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from metrichub_core.errors import UpstreamError
from metrichub_core.resilience import CACHE_EXTENSION

__all__ = ["ACCEPT", "MAX_RECORDS", "PAGE_LIMIT", "OffsetPages", "PagerDutyClient", "PagerDutyError"]

ACCEPT = "application/vnd.pagerduty+json;version=2"
PAGE_LIMIT = 100  # PagerDuty's maximum ``limit``
MAX_RECORDS = 10_000  # ``offset + limit`` above this answers 400 (classic pagination's upper limit)

Params = Mapping[str, str | int | Sequence[str]]


class PagerDutyError(UpstreamError):
    """PagerDuty answered with an error the source cannot work around."""


@dataclass
class PagerDutyClient:
    """Sends PagerDuty REST v2 requests through ``http`` (the host's policy-wrapped client)."""

    http: httpx.AsyncClient
    base_url: str
    token: str
    logger: logging.Logger
    requests: int = 0

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Token token={self.token}", "Accept": ACCEPT}

    async def get(self, path: str, params: Params | None = None) -> Any:
        """GET ``path`` and return its JSON; error statuses raise ``PagerDutyError``."""
        self.requests += 1
        response = await self.http.get(
            f"{self.base_url}{path}",
            params=dict(params or {}),
            headers=self._headers(),
            extensions={CACHE_EXTENSION: False},
        )
        if response.is_error:
            raise _error(response)
        return response.json()

    def pages(self, path: str, params: Params, items_key: str) -> OffsetPages:
        """The pages of a classic-paginated list (``limit``/``offset``/``more``); see ``OffsetPages``."""
        return OffsetPages(self, path, params, items_key)


class OffsetPages:
    """Iterate the pages of a classic-paginated list, each a list of items.

    The offset advances by the number of items a page held (PagerDuty may return fewer than
    the ``limit`` asked for), and the last request asks only what ``offset + limit <=
    10,000`` still allows. ``truncated`` is ``True`` after the loop when PagerDuty said there
    was ``more`` but the cap was reached: the caller must narrow its filter to see the rest.
    """

    def __init__(self, client: PagerDutyClient, path: str, params: Params, items_key: str) -> None:
        self.client = client
        self.path = path
        self.params = params
        self.items_key = items_key
        self.truncated = False

    async def __aiter__(self) -> AsyncIterator[list[dict[str, Any]]]:
        offset = 0
        while True:
            limit = min(PAGE_LIMIT, MAX_RECORDS - offset)
            body = await self.client.get(self.path, {**self.params, "limit": limit, "offset": offset})
            items = body.get(self.items_key) if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise PagerDutyError(f"GET {self.path}: expected a JSON object with a {self.items_key!r} list")
            if items:
                yield items
            if not body.get("more") or not items:
                return
            offset += len(items)
            if offset >= MAX_RECORDS:
                self.truncated = True
                return


def _error(response: httpx.Response) -> PagerDutyError:
    where = f"GET {response.request.url.path}"
    status = response.status_code
    try:
        error = response.json().get("error") or {}
        details = "; ".join(str(item) for item in error.get("errors") or [])
        message = " ".join(part for part in (str(error.get("message", "")), details) if part)
    except (ValueError, AttributeError):
        message = response.reason_phrase
    if status == 401:
        return PagerDutyError(f"{where}: 401 {message or 'Unauthorized'}: check the source's token and base_url", 401)
    if status == 403:
        return PagerDutyError(f"{where}: 403 {message or 'Forbidden'}: the token cannot read incidents", 403)
    if status == 404:
        return PagerDutyError(f"{where}: 404 {message or 'Not Found'}", 404)
    return PagerDutyError(f"{where}: {status} {message}".rstrip(), status)
