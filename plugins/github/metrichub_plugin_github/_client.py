"""A thin GitHub REST client over the host's ``httpx.AsyncClient``: auth, ``Link`` paging, ETags.

Retries, rate-limit waits and the circuit breaker are the host's job (its client wraps
every request); this module only shapes requests and reads answers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["API_VERSION", "PER_PAGE", "GitHubClient", "GitHubError", "Page"]

API_VERSION = "2022-11-28"
PER_PAGE = 100


class GitHubError(Exception):
    """GitHub answered with an error the source cannot work around."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass
class Page:
    """One page of a list endpoint; ``not_modified`` when the server answered 304."""

    items: list[dict[str, Any]]
    next_url: str | None = None
    not_modified: bool = False


@dataclass
class GitHubClient:
    """Sends GitHub REST requests through ``http``.

    ``etags`` holds the ETags of the previous successful run (URL → ETag): conditional
    requests send them as ``If-None-Match``; a ``304`` costs no rate limit. ``fresh_etags``
    collects this run's ETags; the source persists them when the run succeeds.
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

    def _headers(self, etag: str | None) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if etag:
            headers["If-None-Match"] = etag
        return headers

    async def get(
        self, url: str, params: dict[str, str | int] | None = None, *, conditional: bool = False
    ) -> httpx.Response | None:
        """GET ``url``; ``None`` when a conditional request was answered ``304 Not Modified``."""
        key = str(httpx.URL(url, params=params)) if params else url
        etag = self.etags.get(key) if conditional else None
        self.requests += 1
        response = await self.http.get(url, params=params, headers=self._headers(etag))
        if response.status_code == 304 and etag:
            self.fresh_etags[key] = etag
            return None
        if response.is_error:
            raise _error(response)
        if conditional and (new_etag := response.headers.get("ETag")):
            self.fresh_etags[key] = new_etag
        return response

    def forget(self, path: str) -> None:
        """Drop this run's ETags for ``path`` (it will not be asked for conditionally again)."""
        url = self.url(path)
        for key in [key for key in self.fresh_etags if key == url or key.startswith(url + "?")]:
            del self.fresh_etags[key]

    async def get_json(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        response = await self.get(self.url(path), params)
        assert response is not None
        return response.json()

    async def pages(
        self,
        path: str,
        params: dict[str, str | int] | None = None,
        *,
        items_key: str | None = None,
        conditional: bool = False,
    ) -> AsyncIterator[Page]:
        """Yield the pages of a list endpoint, following ``Link: rel="next"``.

        With ``conditional``, the first page is requested with its stored ETag; when it is
        unchanged a single ``Page(not_modified=True)`` is yielded and paging stops.
        """
        url: str | None = self.url(path)
        query: dict[str, str | int] | None = {"per_page": PER_PAGE, **(params or {})}
        first = True
        while url is not None:
            response = await self.get(url, query, conditional=conditional and first)
            if response is None:
                yield Page(items=[], not_modified=True)
                return
            body = response.json() if response.status_code != 204 else []
            items = body.get(items_key, []) if items_key and isinstance(body, dict) else body
            if not isinstance(items, list):
                raise GitHubError(f"GET {_path(response)}: expected a list, got {type(items).__name__}")
            url = response.links.get("next", {}).get("url")
            query = None  # the next link carries the query, per_page included
            first = False
            yield Page(items=items, next_url=url)


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
