"""A thin GitHub REST client over the host's ``httpx.AsyncClient``: auth, errors, ``Link`` paging.

Retries, rate-limit waits, the circuit breaker and the ETag cache are the host's job: its
client wraps every request, sends ``If-None-Match`` for GETs it has cached, and answers a
``304`` with the cached body marked ``X-MetricHub-Cache: hit``.

The host's cache is a small LRU, so every request says what it is worth keeping (the
``metrichub.cache`` request extension): a list's pages keep the default (a re-run asks
the first page again), one-off URLs (compares) pass ``False``, and the statuses of a
deployment or a run pass a predicate that keeps them only while it is still running.
A big sync therefore leaves in the cache exactly what the next run asks again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import httpx

from metrichub_core.errors import UpstreamError
from metrichub_core.resilience import CACHE_EXTENSION, CacheControl, PaginationLoop, paginate_pages, replayed

__all__ = ["API_VERSION", "PER_PAGE", "GitHubClient", "GitHubError", "Page"]

API_VERSION = "2022-11-28"
PER_PAGE = 100
MAX_PAGES = 1000  # a guard against a server whose next links never end


class GitHubError(UpstreamError):
    """GitHub answered with an error the source cannot work around."""


@dataclass
class Page:
    """One page of a list endpoint; ``unchanged``: the host replayed its cached copy (a free ``304``)."""

    items: list[dict[str, Any]]
    unchanged: bool = False


@dataclass
class GitHubClient:
    """Sends GitHub REST requests through ``http`` (the host's policy-wrapped client).

    ``cache`` (on ``get`` and ``pages``) is what the host's ETag cache keeps of the answer:
    ``True`` (the default), ``False`` for a one-off URL, or a ``keep(response)`` predicate.
    """

    http: httpx.AsyncClient
    base_url: str
    token: str | None
    logger: logging.Logger
    requests: int = 0

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def get(
        self, url: str, params: dict[str, str | int] | None = None, *, cache: CacheControl = True
    ) -> httpx.Response:
        """GET ``url``; error statuses raise ``GitHubError``."""
        self.requests += 1
        response = await self.http.get(url, params=params, headers=self._headers(), extensions={CACHE_EXTENSION: cache})
        if response.is_error:
            raise _error(response)
        return response

    async def get_json(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        return (await self.get(self.url(path), params)).json()

    async def pages(
        self,
        path: str,
        params: dict[str, str | int] | None = None,
        *,
        items_key: str | None = None,
        cache: CacheControl = True,
    ) -> AsyncGenerator[Page, None]:
        """Yield the pages of a list endpoint, following ``Link: rel="next"`` (never built by hand).

        Leave the loop to stop at a cursor: no further page is asked for, and closing this
        generator (``contextlib.aclosing``) closes the host's page iterator too.
        """
        query: dict[str, str | int] = {"per_page": PER_PAGE, **(params or {})}
        responses = paginate_pages(
            self.http, self.url(path), params=query, headers=self._headers(), extensions={CACHE_EXTENSION: cache}
        )
        count = 0
        try:
            async with aclosing(responses):
                async for response in responses:
                    self.requests += 1
                    count += 1
                    if count > MAX_PAGES:
                        raise GitHubError(f"GET {_path(response)}: the next links loop or never end")
                    yield Page(items=_items(response, items_key), unchanged=replayed(response))
        except httpx.HTTPStatusError as exc:
            self.requests += 1
            raise _error(exc.response) from None
        except PaginationLoop:
            raise GitHubError(f"GET {httpx.URL(self.url(path)).path}: the next links loop or never end") from None


def _items(response: httpx.Response, items_key: str | None) -> list[dict[str, Any]]:
    body = response.json() if response.content else []
    items = body.get(items_key, []) if items_key and isinstance(body, dict) else body
    if not isinstance(items, list):
        raise GitHubError(f"GET {_path(response)}: expected a list, got {type(items).__name__}")
    return items


def _path(response: httpx.Response) -> str:
    return response.request.url.raw_path.decode("ascii", "replace").split("?", 1)[0]


def _error(response: httpx.Response) -> GitHubError:
    try:
        message = str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        message = response.reason_phrase
    status = response.status_code
    where = f"GET {_path(response)}"
    if status == 401:
        return GitHubError(f"{where}: 401 {message or 'Bad credentials'}: check the source's token", status)
    if status in (403, 429) and response.headers.get("X-RateLimit-Remaining") == "0":
        reset = response.headers.get("X-RateLimit-Reset", "?")
        return GitHubError(f"{where}: {status} rate limit exhausted (resets at epoch {reset})", status)
    if status == 404:
        return GitHubError(f"{where}: 404 not found (wrong repository name, or the token cannot see it)", status)
    return GitHubError(f"{where}: {status} {message}".rstrip(), status)
