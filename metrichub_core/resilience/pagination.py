"""Following ``Link: <…>; rel="next"`` (GitHub, GitLab) without building page URLs by hand."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from typing import Any

import httpx

from metrichub_core.resilience.errors import HTTPLayerError

__all__ = ["PaginationLoop", "json_items", "paginate", "paginate_pages"]


class PaginationLoop(HTTPLayerError):
    """The upstream sent a ``next`` link we already followed."""


def json_items(response: httpx.Response) -> list[Any]:
    """The page's items: a JSON list, or the first list value of a JSON object (``{"items": […]}``)."""
    if response.status_code == 204 or not response.content:
        return []
    data = response.json()
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, list):
                return value
    raise ValueError(f"expected a JSON list of items, got {type(data).__name__}")


async def paginate_pages(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
    max_pages: int | None = None,
) -> AsyncGenerator[httpx.Response, None]:
    """Yield each page's response, following ``rel="next"`` until there is none.

    ``params`` apply to the first request only: the next links already carry them.
    ``headers`` (auth, API version...) and ``extensions`` (e.g. ``{CACHE_EXTENSION: False}``)
    go with every page's request. Raises ``httpx.HTTPStatusError`` for error statuses (the
    client has already retried the transient ones). Stop early by leaving the loop; wrap
    the iterator in ``contextlib.aclosing`` to close it at once.
    """
    seen: set[str] = set()
    next_url: str | None = url
    first = True
    pages = 0
    while next_url is not None:
        response = await client.get(
            next_url, params=params if first else None, headers=headers, extensions=dict(extensions or {})
        )
        response.raise_for_status()
        first = False
        pages += 1
        yield response
        if max_pages is not None and pages >= max_pages:
            return
        link = response.links.get("next", {}).get("url")
        if link is None:
            return
        absolute = str(response.url.join(link))
        if absolute in seen:
            raise PaginationLoop(f"next link repeats after {pages} page(s)")
        seen.add(absolute)
        next_url = absolute


async def paginate(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
    items: Callable[[httpx.Response], list[Any]] = json_items,
    max_pages: int | None = None,
) -> AsyncGenerator[Any, None]:
    """Yield every item of every page (see ``paginate_pages``); ``items`` extracts a page's list."""
    pages = paginate_pages(client, url, params=params, headers=headers, extensions=extensions, max_pages=max_pages)
    async with aclosing(pages):  # a caller that stops early closes the page iterator too
        async for page in pages:
            for item in items(page):
                yield item
