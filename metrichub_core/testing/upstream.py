"""``FakeUpstream``: a scripted HTTP API served for real on 127.0.0.1 (uvicorn in a thread).

Tests point a source's ``base_url`` at it and script what each path answers:
pages of items with ``Link`` headers and ETags, statuses and headers in order,
delays, and a log of every request it received (with arrival times)::

    with FakeUpstream(latency=0.01) as upstream:
        upstream.pages("/deployments", items, page_size=50, since_field="updated_at")
        upstream.script("/flaky", Reply(503), Reply(503), Reply(200, json=[]))
        config = {"kind": "example", "base_url": upstream.url}
        ...
        assert len(upstream.requests_for("/flaky")) == 3
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn

__all__ = ["FakeUpstream", "RecordedRequest", "Reply", "max_requests_in_window", "refused_url"]

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status, a JSON or raw body, headers, and a delay before answering."""

    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """What the fake upstream received; ``at`` is ``time.monotonic()`` and ``wall`` is ``time.time()`` on arrival."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float
    wall: float
    query_string: str = ""
    """The raw query: ``query`` keeps the last of repeated keys, ``query_values`` all of them."""

    def query_values(self, name: str) -> list[str]:
        """Every value of ``name`` in the query, in order (``statuses[]=a&statuses[]=b``)."""
        return [value for key, value in parse_qsl(self.query_string, keep_blank_values=True) if key == name]


Responder = Reply | Callable[[RecordedRequest], Reply]


@dataclass
class _Pages:
    items: list[dict[str, Any]]
    page_size: int
    since_field: str | None
    since_param: str
    etag: bool


class FakeUpstream:
    """A scripted upstream API on a real socket; a context manager that starts and stops it.

    Parameters:
        latency: seconds added to every answer (a slow API).
        max_delay: upper bound of any delay, so a "hanging" answer still ends by itself.
    """

    def __init__(self, *, latency: float = 0.0, max_delay: float = 10.0) -> None:
        self.latency = latency
        self.max_delay = max_delay
        self.requests: list[RecordedRequest] = []
        self._scripts: dict[str, deque[Responder]] = {}
        self._last: dict[str, Responder] = {}
        self._pages: dict[str, _Pages] = {}
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- scripting ---------------------------------------------------------

    def script(self, path: str, *replies: Responder) -> FakeUpstream:
        """Answer ``path`` with ``replies`` in order; the last one repeats forever."""
        if not replies:
            raise ValueError("script() needs at least one reply")
        with self._lock:
            self._scripts[path] = deque(replies)
            self._last[path] = replies[-1]
        return self

    def pages(
        self,
        path: str,
        items: Sequence[Mapping[str, Any]],
        *,
        page_size: int = 100,
        since_field: str | None = None,
        since_param: str = "since",
        etag: bool = True,
    ) -> FakeUpstream:
        """Serve ``items`` as JSON pages (``?page=N&per_page=M``) linked by ``Link: rel="next"``.

        With ``since_field``, a ``?since=<ISO datetime>`` query keeps only items whose
        field is at or after it. With ``etag``, pages carry an ETag and answer a
        matching ``If-None-Match`` with 304.
        """
        with self._lock:
            self._pages[path] = _Pages([dict(item) for item in items], page_size, since_field, since_param, etag)
        return self

    def set_items(self, path: str, items: Sequence[Mapping[str, Any]]) -> None:
        """Replace the items behind a ``pages()`` path (the upstream changed)."""
        with self._lock:
            self._pages[path].items = [dict(item) for item in items]

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [request for request in list(self.requests) if request.path == path]

    # -- lifecycle -----------------------------------------------------------

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the fake upstream is not running (use it as a context manager)")
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> FakeUpstream:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: uvicorn writes a response's head and body separately,
        # and Nagle's algorithm would hold the body for the client's delayed ACK (~40 ms a request).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            interface="asgi3",
            ws="none",
            timeout_graceful_shutdown=1,
            backlog=256,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-upstream", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope["query_string"].decode())),
            headers={key.decode().lower(): value.decode() for key, value in scope["headers"]},
            body=body,
            at=time.monotonic(),
            wall=time.time(),
            query_string=scope["query_string"].decode(),
        )
        self.requests.append(request)
        reply = self._reply_for(request)
        delay = min(self.latency + reply.delay, self.max_delay)
        if delay > 0:
            await asyncio.sleep(delay)
        payload = _payload(reply)
        headers = {key.lower(): value for key, value in reply.headers.items()}
        if reply.json is not None and "content-type" not in headers:
            headers["content-type"] = "application/json"
        headers["content-length"] = str(len(payload))
        raw_headers = [(key.encode(), value.encode()) for key, value in headers.items()]
        try:
            await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": payload})
        except OSError:  # the client gave up (timeout) before we answered
            pass

    def _reply_for(self, request: RecordedRequest) -> Reply:
        with self._lock:
            script = self._scripts.get(request.path)
            if script is not None:
                responder = script.popleft() if script else self._last[request.path]
                return responder(request) if callable(responder) else responder
            pages = self._pages.get(request.path)
        if pages is not None:
            return self._page(pages, request)
        return Reply(404, json={"message": f"no route for {request.path}"})

    def _page(self, pages: _Pages, request: RecordedRequest) -> Reply:
        try:
            page = max(1, int(request.query.get("page", "1")))
            per_page = max(1, min(pages.page_size, int(request.query.get("per_page", pages.page_size))))
        except ValueError:
            return Reply(400, json={"message": "page and per_page must be integers"})
        items = pages.items
        since = request.query.get(pages.since_param)
        if pages.since_field is not None and since:
            try:
                floor = _parse_time(since)
            except ValueError:
                return Reply(400, json={"message": f"bad {pages.since_param}"})
            items = [item for item in items if _parse_time(str(item[pages.since_field])) >= floor]
        chunk = items[(page - 1) * per_page : page * per_page]
        body = json.dumps(chunk).encode()
        headers: dict[str, str] = {"content-type": "application/json"}
        if page * per_page < len(items):
            query = {**request.query, "page": str(page + 1), "per_page": str(per_page)}
            host = request.headers.get("host", f"127.0.0.1:{self._port}")
            headers["link"] = f'<http://{host}{request.path}?{urlencode(query)}>; rel="next"'
        if pages.etag:
            tag = '"' + hashlib.sha256(body + headers.get("link", "").encode()).hexdigest()[:32] + '"'
            headers["etag"] = tag
            if request.headers.get("if-none-match") == tag:
                return Reply(304, headers={"etag": tag})
        return Reply(200, body=body, headers=headers)


def _payload(reply: Reply) -> bytes:
    if reply.body is not None:
        return reply.body.encode() if isinstance(reply.body, str) else reply.body
    if reply.json is not None:
        return json.dumps(reply.json).encode()
    return b""


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def max_requests_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most requests that arrived within any ``window``-second span (``[t, t + window)``)."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
