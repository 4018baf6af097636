"""The ETag cache's state round trip and the Link pagination helper (single functions: MockTransport)."""

from __future__ import annotations

import httpx
import pytest

from metrichub_core.resilience import HttpCache, PaginationLoop, json_items, paginate, paginate_pages


def test_cache_round_trips_through_json_state_and_stays_bounded() -> None:
    import json

    cache = HttpCache(max_entries=2)
    for n in range(3):
        ok = httpx.Response(200, headers={"ETag": f'"e{n}"', "Link": "<x>; rel=next", "Set-Cookie": "s=1"})
        cache.store(f"url{n}", ok, f"body{n}".encode())
    assert len(cache) == 2 and cache.etag_for("url0") is None
    restored = HttpCache.from_state(json.loads(json.dumps(cache.to_state())), max_entries=2)
    assert restored.etag_for("url2") == '"e2"'
    replayed = restored.replay("url2", httpx.Response(304, headers={"X-RateLimit-Remaining": "99"}))
    assert replayed is not None
    assert replayed.status_code == 200 and replayed.read() == b"body2"
    assert replayed.headers["link"] == "<x>; rel=next" and "set-cookie" not in replayed.headers
    assert replayed.headers["x-ratelimit-remaining"] == "99"


def test_cache_skips_uncacheable_responses_and_damaged_state() -> None:
    cache = HttpCache(max_body_bytes=4)
    cache.store("a", httpx.Response(200, headers={"ETag": '"x"'}), b"too long")
    cache.store("b", httpx.Response(200), b"ok")
    cache.store("c", httpx.Response(500, headers={"ETag": '"x"'}), b"ok")
    assert len(cache) == 0
    assert len(HttpCache.from_state({"u": {"etag": 1}, "v": "junk"})) == 0
    assert len(HttpCache.from_state(None)) == 0


def pages_handler(pages: dict[str, tuple[list[int], str | None]]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        items, next_path = pages[request.url.path]
        headers = {"Link": f'<{next_path}>; rel="next"'} if next_path else {}
        return httpx.Response(200, json=items, headers=headers)

    return httpx.MockTransport(handle)


async def test_paginate_follows_next_links_and_keeps_first_params_in_links() -> None:
    seen: list[str] = []
    transport = pages_handler({"/a": ([1, 2], "/b?per_page=2"), "/b": ([3], None)})

    async def record(request: httpx.Request) -> None:
        seen.append(str(request.url))

    async with httpx.AsyncClient(transport=transport, base_url="http://api", event_hooks={"request": [record]}) as c:
        items = [item async for item in paginate(c, "/a", params={"per_page": 2}, headers={"X-Token": "t"})]
    assert items == [1, 2, 3]
    assert seen == ["http://api/a?per_page=2", "http://api/b?per_page=2"]


async def test_paginate_detects_a_loop_and_honours_max_pages() -> None:
    transport = pages_handler({"/a": ([1], "/b"), "/b": ([2], "/a")})
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        with pytest.raises(PaginationLoop):
            _ = [item async for item in paginate(client, "/a")]
        pages = [page async for page in paginate_pages(client, "/a", max_pages=1)]
    assert len(pages) == 1


async def test_paginate_raises_for_client_errors() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(404, json={"message": "gone"}))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        with pytest.raises(httpx.HTTPStatusError):
            _ = [item async for item in paginate(client, "/a")]


@pytest.mark.parametrize(
    ("response", "items"),
    [
        (httpx.Response(200, json=[1, 2]), [1, 2]),
        (httpx.Response(200, json={"total_count": 2, "workflow_runs": [3]}), [3]),
        (httpx.Response(204), []),
    ],
)
def test_json_items(response: httpx.Response, items: list[int]) -> None:
    assert json_items(response) == items
