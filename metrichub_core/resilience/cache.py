"""ETag / ``If-None-Match`` cache for GETs, persisted in the source's stored state.

A 304 is answered from the cache as the 200 it stands for (with an
``X-MetricHub-Cache: hit`` header), so plugins need no special case, and GitHub
does not count it against the primary rate limit.

The cache is a small LRU, so a request may say what it is worth keeping with the
``metrichub.cache`` request extension (``CACHE_EXTENSION``):

* absent or ``True``: use the cache and keep the 200 (the default);
* ``False``: a one-off URL: send no cached ETag, keep nothing, forget any entry;
* a callable ``keep(response) -> bool``: use the cache, and keep a new 200 only
  when ``keep`` says so (decided on the response, e.g. "still running").

Bodies are kept zlib-compressed, and ``max_body_bytes`` bounds the compressed size
(what the state holds): a 100-item JSON list page of 150 kB fits in a few kB.
"""

from __future__ import annotations

import base64
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["CACHE_EXTENSION", "CACHE_HEADER", "CacheControl", "HttpCache", "replayed"]

CACHE_HEADER = "X-MetricHub-Cache"
CACHE_EXTENSION = "metrichub.cache"
CacheControl = bool | Callable[[httpx.Response], bool]
"""What ``extensions={CACHE_EXTENSION: ...}`` accepts (see the module docstring)."""
_KEPT_HEADERS = ("content-type", "content-encoding", "link", "etag", "last-modified")


@dataclass(frozen=True)
class _Entry:
    etag: str
    headers: tuple[tuple[str, str], ...]
    compressed: bytes  # the raw body, zlib-compressed


class HttpCache:
    """Bounded LRU of ``url -> (etag, kept headers, compressed raw body)``."""

    def __init__(self, *, max_entries: int = 64, max_body_bytes: int = 64 * 1024) -> None:
        self.max_entries = max_entries
        self.max_body_bytes = max_body_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def etag_for(self, url: str) -> str | None:
        entry = self._entries.get(url)
        return None if entry is None else entry.etag

    def store(self, url: str, response: httpx.Response, raw_body: bytes) -> None:
        etag = response.headers.get("etag")
        compressed = zlib.compress(raw_body) if response.status_code == 200 and etag else b""
        if not etag or not compressed or len(compressed) > self.max_body_bytes:
            self._entries.pop(url, None)
            return
        headers = tuple((name, response.headers[name]) for name in _KEPT_HEADERS if name in response.headers)
        self._entries[url] = _Entry(etag, headers, compressed)
        self._entries.move_to_end(url)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, url: str) -> None:
        self._entries.pop(url, None)

    def replay(self, url: str, not_modified: httpx.Response) -> httpx.Response | None:
        """The cached 200 for a 304, or ``None`` when nothing is cached for ``url``."""
        entry = self._entries.get(url)
        if entry is None:
            return None
        self._entries.move_to_end(url)
        headers = httpx.Headers(list(entry.headers))
        for name in ("x-ratelimit-remaining", "x-ratelimit-reset", "ratelimit-remaining", "ratelimit-reset", "date"):
            if name in not_modified.headers:
                headers[name] = not_modified.headers[name]
        headers[CACHE_HEADER] = "hit"
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(zlib.decompress(entry.compressed)))

    def to_state(self) -> dict[str, Any]:
        return {
            url: {
                "etag": e.etag,
                "headers": [list(h) for h in e.headers],
                "zbody": base64.b64encode(e.compressed).decode(),
            }
            for url, e in self._entries.items()
        }

    @classmethod
    def from_state(cls, data: Any, **limits: int) -> HttpCache:
        cache = cls(**limits)
        if not isinstance(data, dict):
            return cache
        for url, item in data.items():
            try:
                headers = tuple((str(name), str(value)) for name, value in item["headers"])
                if "zbody" in item:
                    compressed = base64.b64decode(item["zbody"])
                    zlib.decompress(compressed)  # damaged data fails here, not at replay
                else:  # saved before bodies were compressed
                    compressed = zlib.compress(base64.b64decode(item["body"]))
                cache._entries[str(url)] = _Entry(str(item["etag"]), headers, compressed)
            except (KeyError, TypeError, ValueError, zlib.error):
                continue  # a damaged entry only costs a full fetch
        while len(cache._entries) > cache.max_entries:
            cache._entries.popitem(last=False)
        return cache


def replayed(response: httpx.Response) -> bool:
    """Whether the upstream said ``304 Not Modified`` and the host replayed its cached copy.

    The host saves its cache only with a successful run, so this means "as the last successful
    run saw it": a collector may stop reading a list there.
    """
    return response.status_code == 304 or response.headers.get(CACHE_HEADER) == "hit"
