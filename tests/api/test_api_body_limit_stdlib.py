"""Oversized bodies against a real server with stdlib clients: every client reads its 413, never a reset."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from real_server import serve

LIMIT = 1_048_576
BODY = b"[" + b" " * (3 * 1024 * 1024) + b"]"  # 3 MiB of valid JSON, three times the limit
POSTS = 200


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # No tokens: writes are open, so the only reason to refuse is the size.
    with serve(tmp_path_factory.mktemp("bodylimit"), f"[api]\nmax_body_bytes = {LIMIT}\n") as url:
        yield url


def _assert_payload_too_large(status: int, body: bytes) -> None:
    assert status == 413
    error = json.loads(body)["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"max_body_bytes": LIMIT}
    assert error["trace_id"]


@pytest.mark.slow
def test_declared_oversized_bodies_always_read_413_with_urllib(base_url: str) -> None:
    outcomes: dict[str, int] = {}
    for _ in range(POSTS):
        request = urllib.request.Request(
            f"{base_url}/api/v1/deployments", data=BODY, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # pragma: no cover - must not succeed
                outcomes[f"status {response.status}"] = outcomes.get(f"status {response.status}", 0) + 1
        except urllib.error.HTTPError as exc:
            _assert_payload_too_large(exc.code, exc.read())
            outcomes["413"] = outcomes.get("413", 0) + 1
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            outcomes[type(reason).__name__] = outcomes.get(type(reason).__name__, 0) + 1
    assert outcomes == {"413": POSTS}


@pytest.mark.slow
def test_chunked_oversized_bodies_always_read_413_with_http_client(base_url: str) -> None:
    address = urlsplit(base_url)
    outcomes: dict[str, int] = {}
    piece = b" " * 65_536

    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(len(BODY) // len(piece)):
            yield piece
        yield b"]"

    for _ in range(POSTS):
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
        try:
            connection.request(
                "POST",
                "/api/v1/changes",
                body=chunks(),
                headers={"Content-Type": "application/json"},
                encode_chunked=True,
            )
            response = connection.getresponse()
            _assert_payload_too_large(response.status, response.read())
            outcomes["413"] = outcomes.get("413", 0) + 1
        except OSError as exc:
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
        finally:
            connection.close()
    assert outcomes == {"413": POSTS}


def _raw_exchange(base_url: str, head: bytes, body: bytes) -> tuple[bytes, bool]:
    """Send ``head`` and ``body`` on a raw socket; return everything read and whether the server closed cleanly."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(head)
        if body:
            sock.sendall(body)
        received = b""
        while True:
            data = sock.recv(65_536)
            if not data:
                return received, True
            received += data


def _status_and_json(raw: bytes) -> tuple[int, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


@pytest.mark.slow
def test_expect_100_continue_gets_the_413_without_sending_the_body(base_url: str) -> None:
    head = (
        b"POST /api/v1/deployments HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(BODY)
    )
    received, closed = _raw_exchange(base_url, head, b"")
    status, payload = _status_and_json(received)
    assert status == 413 and payload["error"]["code"] == "payload_too_large" and closed
    assert b"100 Continue" not in received
