"""A thin GitHub REST client over the host's ``httpx.AsyncClient``: auth, errors, ``Link`` paging.

Retries, rate-limit waits, the circuit breaker and the ETag cache are the host's job:
its client wraps every request, sends ``If-None-Match`` for GETs it has seen, and
answers a ``304`` with the cached body marked ``X-MetricHub-Cache: hit``.

The host's cache is a bounded LRU over every GET, so after a big sync the few URLs a
re-run asks again (each list's first page, the statuses of running deployments) may
have been evicted by one-off requests (compares, final statuses). For those few URLs
the client therefore keeps its own ETags (in the source's state) and sends
``If-None-Match`` itself; the host leaves such requests alone and passes the ``304``
through. Everything else is left to the host's cache.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import httpx

from metrichub_core.resilience import CACHE_HEADER

__all__ = ["API_VERSION", "PER_PAGE", "GitHubClient", "GitHubError", "Page"]

API_VERSION = "2022-11-28"
PER_PAGE = 100
MAX_PAGES = 1000  # a guard against a server whose next links never end


class GitHubError(Exception):
    """GitHub answered with an error the source cannot work around."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass
class Page:
    """One page of a list endpoint.

    ``unchanged``: the upstream answered ``304``, to the client's own ``If-None-Match``
    (``items`` is then empty: the caller already has them) or to the host cache's
    (``items`` holds the replayed copy).
    """

    items: list[dict[str, Any]]
    unchanged: bool = False

    @property
    def not_modified(self) -> bool:
        """A ``304`` to this client's own ETag: nothing new and no items to read."""
        return self.unchanged and not self.items


def unchanged(response: httpx.Response) -> bool:
    """The upstream said ``304 Not Modified``: the host replayed its cached copy."""
    return response.status_code == 304 or response.headers.get(CACHE_HEADER) == "hit"


@dataclass
class GitHubClient:
    """Sends GitHub REST requests through ``http`` (the host's policy-wrapped client).

    ``etags`` are the previous successful run's ETags of conditional URLs; ``fresh_etags``
    collects this run's, which the source persists when the run succeeds.
    """

    http: httpx.AsyncClient
    base_url: str
    token: str | None
    logger: logging.Logger
    etags: dict[str, str] = field(default_factory=dict)
    fresh_etags: dict[str, str] = field(default_factory=dict)
    requests: int = 0

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _headers(self, etag: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if etag:
            headers["If-None-Match"] = etag
        return headers

    async def get(
        self, url: str, params: dict[str, str | int] | None = None, *, conditional: bool = False
    ) -> httpx.Response:
        """GET ``url``; with ``conditional``, send the stored ETag and remember the new one.

        A ``304`` is returned as is (see ``unchanged``); error statuses raise ``GitHubError``.
        """
        key = str(httpx.URL(url, params=params))
        etag = self.etags.get(key) if conditional else None
        self.requests += 1
        response = await self.http.get(url, params=params, headers=self._headers(etag))
        if response.is_error:
            raise _error(response)
        if conditional:
            new_etag = etag if response.status_code == 304 else response.headers.get("ETag")
            if new_etag:
                self.fresh_etags[key] = new_etag
        return response

    def forget(self, path: str) -> None:
        """Drop this run's ETags for ``path``: it will not be asked for conditionally again."""
        url = self.url(path)
        for key in [key for key in self.fresh_etags if key == url or key.startswith(url + "?")]:
            del self.fresh_etags[key]

    async def get_json(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        return (await self.get(self.url(path), params)).json()

    async def pages(
        self,
        path: str,
        params: dict[str, str | int] | None = None,
        *,
        items_key: str | None = None,
        conditional: bool = False,
    ) -> AsyncGenerator[Page, None]:
        """Yield the pages of a list endpoint, following ``Link: rel="next"`` (never built by hand).

        ``conditional`` applies to the first page: when it is unchanged, look at ``Page.unchanged``.
        """
        url: str | None = self.url(path)
        query: dict[str, str | int] | None = {"per_page": PER_PAGE, **(params or {})}
        seen: set[str] = set()
        while url is not None:
            response = await self.get(url, query, conditional=conditional and not seen)
            if response.status_code == 304:
                yield Page(items=[], unchanged=True)
                return
            body = response.json() if response.content else []
            items = body.get(items_key, []) if items_key and isinstance(body, dict) else body
            if not isinstance(items, list):
                raise GitHubError(f"GET {_path(response)}: expected a list, got {type(items).__name__}")
            yield Page(items=items, unchanged=unchanged(response))
            link = response.links.get("next", {}).get("url")
            url = str(response.url.join(link)) if link else None
            if url is not None and (url in seen or len(seen) >= MAX_PAGES):
                raise GitHubError(f"GET {_path(response)}: the next links loop or never end")
            if url is not None:
                seen.add(url)
            query = None  # the next link carries the query, per_page included


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
