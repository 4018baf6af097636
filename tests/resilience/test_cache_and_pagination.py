"""The ETag cache's state round trip and the Link pagination helper (single functions: MockTransport)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from metrichub_core.resilience import (
    CACHE_EXTENSION,
    CACHE_HEADER,
    HttpCache,
    PaginationLoop,
    Policy,
    SourceResilience,
    json_items,
    paginate,
    paginate_pages,
)


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


def test_cache_bounds_the_compressed_body_and_reads_state_saved_uncompressed() -> None:
    import base64

    page = (
        b"[" + b",".join(b'{"id": %d, "creator": {"login": "octocat", "type": "User"}}' % n for n in range(2000)) + b"]"
    )
    cache = HttpCache(max_body_bytes=64 * 1024)
    assert len(page) > 64 * 1024
    cache.store("list", httpx.Response(200, headers={"ETag": '"p1"'}), page)
    replayed = HttpCache.from_state(cache.to_state()).replay("list", httpx.Response(304))
    assert replayed is not None and replayed.read() == page
    older = {
        "u": {
            "etag": '"e"',
            "headers": [["content-type", "application/json"]],
            "body": base64.b64encode(b"[1]").decode(),
        }
    }
    restored = HttpCache.from_state(older).replay("u", httpx.Response(304))
    assert restored is not None and restored.read() == b"[1]"
    assert len(HttpCache.from_state({"u": {"etag": '"e"', "headers": [], "zbody": "bm90IHpsaWI="}})) == 0


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


class _Stream(httpx.AsyncByteStream):
    """A body not read yet, as a network transport returns it (the resilient transport reads it raw)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body


def etag_upstream(bodies: dict[str, bytes], seen: list[httpx.Request]) -> httpx.MockTransport:
    """200 with an ETag per path, 304 to a matching ``If-None-Match``; records every request."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = bodies[request.url.path]
        etag = f'"{hash(body) & 0xFFFF:x}"'
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, stream=_Stream(b""), headers={"ETag": etag})
        return httpx.Response(200, stream=_Stream(body), headers={"ETag": etag, "Content-Type": "application/json"})

    return httpx.MockTransport(handle)


def cached_client(transport: httpx.MockTransport, cache: HttpCache) -> httpx.AsyncClient:
    policy = Policy(rate_limit_per_second=1000)
    return SourceResilience("s", policy).client(base_url="http://api", inner=transport, cache=cache)


async def test_one_off_urls_marked_uncached_keep_the_first_page_in_a_small_cache() -> None:
    bodies = {"/list": b"[1]", **{f"/one-off/{n}": b"{}" for n in range(5)}}
    seen: list[httpx.Request] = []
    cache = HttpCache(max_entries=2)
    async with cached_client(etag_upstream(bodies, seen), cache) as client:
        await client.get("/list")
        for n in range(5):
            response = await client.get(f"/one-off/{n}", extensions={CACHE_EXTENSION: False})
            assert response.status_code == 200 and CACHE_HEADER not in response.headers
        again = await client.get("/list")
    assert again.status_code == 200 and again.headers[CACHE_HEADER] == "hit" and again.json() == [1]
    assert seen[-1].headers.get("if-none-match") is not None
    assert len(cache) == 1  # only the list: the one-off answers took no room


async def test_an_uncached_request_sends_no_etag_and_forgets_the_entry() -> None:
    seen: list[httpx.Request] = []
    cache = HttpCache()
    async with cached_client(etag_upstream({"/a": b"[]"}, seen), cache) as client:
        await client.get("/a")
        assert len(cache) == 1
        response = await client.get("/a", extensions={CACHE_EXTENSION: False})
    assert response.status_code == 200 and CACHE_HEADER not in response.headers
    assert "if-none-match" not in seen[-1].headers
    assert len(cache) == 0


async def test_a_keep_predicate_decides_on_the_response() -> None:
    bodies = {"/status": b'{"state": "running"}'}
    seen: list[httpx.Request] = []
    cache = HttpCache()

    def still_running(response: httpx.Response) -> bool:
        return bool(response.json()["state"] == "running")

    async with cached_client(etag_upstream(bodies, seen), cache) as client:
        await client.get("/status", extensions={CACHE_EXTENSION: still_running})
        assert len(cache) == 1
        hit = await client.get("/status", extensions={CACHE_EXTENSION: still_running})
        assert hit.headers[CACHE_HEADER] == "hit" and hit.json() == {"state": "running"}
        bodies["/status"] = b'{"state": "success"}'
        final = await client.get("/status", extensions={CACHE_EXTENSION: still_running})
    assert final.json() == {"state": "success"} and CACHE_HEADER not in final.headers
    assert len(cache) == 0  # finished: never asked again, so not kept


async def test_a_cache_extension_of_the_wrong_type_is_refused() -> None:
    async with cached_client(etag_upstream({"/a": b"[]"}, []), HttpCache()) as client:
        with pytest.raises(TypeError, match=r"metrichub\.cache.*bool or a callable"):
            await client.get("/a", extensions={CACHE_EXTENSION: "no"})


async def test_paginate_sends_headers_and_extensions_with_every_page() -> None:
    seen: list[httpx.Request] = []
    bodies = {"/a": ([1], "/b"), "/b": ([2], "/c"), "/c": ([3], None)}

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        items, next_path = bodies[request.url.path]
        headers = {"Link": f'<{next_path}>; rel="next"'} if next_path else {}
        return httpx.Response(200, json=items, headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://api") as client:
        pages = paginate(
            client, "/a", headers={"X-Api-Version": "2"}, extensions={CACHE_EXTENSION: False, "trace": None}
        )
        assert [item async for item in pages] == [1, 2, 3]
    assert [request.headers["x-api-version"] for request in seen] == ["2", "2", "2"]
    assert [request.extensions.get(CACHE_EXTENSION) for request in seen] == [False, False, False]
