"""A thin GitLab REST v4 client over the host's ``httpx.AsyncClient``: auth, errors, paging.

Retries, rate-limit waits (``RateLimit-Reset`` is an epoch, ``Retry-After`` on a ``429``),
the circuit breaker and the ETag cache are the host's job. The host's cache is a small LRU,
so each request says what it is worth keeping (the ``metrichub.cache`` request extension):
list pages keep the default (a re-run asks their first page again), compares pass ``False``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from metrichub_core.errors import UpstreamError
from metrichub_core.resilience import CACHE_EXTENSION, CacheControl, PaginationLoop, paginate_pages, replayed

__all__ = ["MAX_PAGES", "PER_PAGE", "GitLabClient", "GitLabError", "Page", "project_ref"]

PER_PAGE = 100  # GitLab's maximum
MAX_PAGES = 1000  # a guard against next links that never end

Params = dict[str, str | int]


class GitLabError(UpstreamError):
    """GitLab answered with an error the source cannot work around."""


@dataclass
class Page:
    """One page of a list; ``unchanged``: the host replayed its cached copy (a free ``304``)."""

    items: list[dict[str, Any]]
    unchanged: bool = False


def project_ref(project: str | int) -> str:
    """A project's ``:id`` in a URL: the numeric id, or the URL-encoded full path (``acme%2Fweb``)."""
    return str(project) if isinstance(project, int) else quote(project, safe="")


@dataclass
class GitLabClient:
    """Sends GitLab REST requests through ``http`` (the host's policy-wrapped client); counts them."""

    http: httpx.AsyncClient
    api_url: str
    token: str | None
    auth: str
    logger: logging.Logger
    per_page: int = PER_PAGE
    requests: int = 0

    def _headers(self) -> dict[str, str]:
        if not self.token:
            return {}
        if self.auth == "bearer":
            return {"Authorization": f"Bearer {self.token}"}
        return {"PRIVATE-TOKEN": self.token}

    async def get_json(self, path: str, params: Params | None = None, *, cache: CacheControl = True) -> Any:
        """GET one resource; error statuses raise ``GitLabError``.

        Redirects are followed: GitLab 16.7+ answers a renamed project's old path with a ``301``.
        """
        self.requests += 1
        response = await self.http.get(
            f"{self.api_url}{path}",
            params=params,
            headers=self._headers(),
            extensions={CACHE_EXTENSION: cache},
            follow_redirects=True,
        )
        if response.is_error:
            raise _error(response)
        return response.json()

    async def pages(
        self, path: str, params: Params | None = None, *, cache: CacheControl = True
    ) -> AsyncGenerator[Page, None]:
        """Yield the pages of a list, following ``Link: rel="next"`` (GitLab also sends ``X-Next-Page``).

        Leaving the loop asks for no further page; closing this generator closes the host's too.
        """
        query: Params = {"per_page": self.per_page, **(params or {})}
        responses = paginate_pages(
            self.http,
            f"{self.api_url}{path}",
            params=query,
            headers=self._headers(),
            extensions={CACHE_EXTENSION: cache},
            max_pages=MAX_PAGES,
        )
        try:
            async with aclosing(responses):
                async for response in responses:
                    self.requests += 1
                    yield Page(items=_items(response), unchanged=replayed(response))
        except httpx.HTTPStatusError as exc:
            self.requests += 1
            raise _error(exc.response) from None
        except PaginationLoop:
            raise GitLabError(f"GET {path}: the next links loop") from None


def _items(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json() if response.content else []
    if not isinstance(body, list):
        raise GitLabError(f"GET {_path(response)}: expected a list, got {type(body).__name__}")
    return body


def _path(response: httpx.Response) -> str:
    return response.request.url.raw_path.decode("ascii", "replace").split("?", 1)[0]


def _error(response: httpx.Response) -> GitLabError:
    status = response.status_code
    try:
        body = response.json()
        message = str(body.get("message") or body.get("error") or "") if isinstance(body, dict) else ""
    except ValueError:
        message = ""
    message = message.removeprefix(str(status)).strip() or response.reason_phrase  # GitLab: "401 Unauthorized"
    where = f"GET {_path(response)}"
    if status == 401:
        return GitLabError(f"{where}: 401 {message}: check the source's token", status)
    if status == 403:
        return GitLabError(f"{where}: 403 {message}: the token lacks the read_api scope or access", status)
    if status == 404:
        return GitLabError(f"{where}: 404 not found (wrong project path, or the token cannot see it)", status)
    return GitLabError(f"{where}: {status} {message}", status)
