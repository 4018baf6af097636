"""Slow clients: `metrichub serve` closes a connection whose request line and headers trickle in, idle ones,
and oversized headers, with the bounds of ``[api]`` (real server, stdlib sockets on loopback)."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from click.testing import CliRunner

from metrichub_core.cli import main
from metrichub_core.cli._connections import HeaderDeadlineProtocol
from metrichub_core.testing.served import ServedProcess

TRICKLE_BYTES = 60  # one every 0.1 s: the trickle lasts 6 s, the header deadline is 1 s
REQUEST = b"GET /api/v1/health HTTP/1.1\r\nHost: metrichub\r\n"


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    directory = tmp_path_factory.mktemp("slow")
    config = directory / "metrichub.toml"
    config.write_text(
        f'storage = "sqlite:///{directory / "m.db"}"\n'
        "[api]\nheader_timeout_seconds = 1\nkeep_alive_seconds = 1\nmax_header_bytes = 4096\n"
        "request_timeout_seconds = 1\n",
        encoding="utf-8",
    )
    with ServedProcess(config) as served:
        url = urlsplit(served.url)
        yield url.hostname or "127.0.0.1", url.port or 0


def _closed(connection: socket.socket, wait: float) -> bool:
    """Whether the server closed ``connection`` (readable with no data, or reset) within ``wait`` seconds."""
    readable, _, _ = select.select([connection], [], [], wait)
    if not readable:
        return False
    try:
        return connection.recv(65536) == b""
    except ConnectionResetError:
        return True


def _trickle(connection: socket.socket) -> int | None:
    """Send one header byte every 0.1 s; the number sent when the server closed the connection, else None."""
    for sent in range(TRICKLE_BYTES):
        try:
            connection.sendall(b"x-slow: a\r\n"[sent % 11 : sent % 11 + 1])
        except (BrokenPipeError, ConnectionResetError):
            return sent
        if _closed(connection, 0.1):
            return sent
    return None


def _response(connection: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received or not received.endswith(b"}"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_a_new_connection_trickling_its_headers_is_closed(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(REQUEST)
        sent = _trickle(connection)
    assert sent is not None, f"still open after {TRICKLE_BYTES} bytes in {TRICKLE_BYTES / 10:g} s"


def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(REQUEST + b"\r\n")
        assert _response(connection).startswith(b"HTTP/1.1 200")
        connection.sendall(REQUEST)
        assert _trickle(connection) is not None


def test_an_idle_connection_is_closed_and_a_prompt_one_is_served(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=10) as connection:
        assert _closed(connection, 6.0)  # nothing sent: closed after header_timeout_seconds
    with socket.create_connection(address, timeout=10) as connection:
        started = time.monotonic()
        connection.sendall(REQUEST + b"\r\n")
        assert _response(connection).startswith(b"HTTP/1.1 200"), time.monotonic() - started


def test_unfinished_headers_past_the_limit_get_400_and_a_close(address: tuple[str, int]) -> None:
    # h11 holds at most max_header_bytes of a request head it is still waiting for.
    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(REQUEST + b"x-big: " + b"a" * 8192)
        answer = _response(connection)
        assert answer.startswith(b"HTTP/1.1 400")
        assert _closed(connection, 6.0)


def test_a_trickled_body_gets_504_then_the_connection_closes(address: tuple[str, int]) -> None:
    head = b"POST /api/v1/changes HTTP/1.1\r\nHost: metrichub\r\nContent-Type: application/json\r\n"
    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(head + b"Content-Length: 1000\r\n\r\n[")
        answer = b""
        for _ in range(TRICKLE_BYTES):  # the body, a byte every 0.1 s, until the server answers
            readable, _, _ = select.select([connection], [], [], 0.1)
            if readable:
                answer = _response(connection)
                break
            connection.sendall(b" ")
        assert answer.startswith(b"HTTP/1.1 504"), answer
        assert b'"code":"timeout"' in answer
        assert _trickle(connection) is not None or _closed(connection, 6.0)


def _captured_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str) -> Any:
    captured: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "__init__", lambda self, config: captured.append(config))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)
    config = tmp_path / "metrichub.toml"
    config.write_text(f'storage = "sqlite:///{tmp_path / "m.db"}"\n[api]\n{table}', encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--config", str(config), "--port", "0"])
    assert result.exit_code == 0, result.output
    return captured[0]


def test_serve_passes_the_limits_to_uvicorn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = "header_timeout_seconds = 3\nkeep_alive_seconds = 7\nmax_header_bytes = 8192\nmax_concurrency = 99\n"
    config = _captured_config(tmp_path, monkeypatch, table)
    assert (config.timeout_keep_alive, config.h11_max_incomplete_event_size, config.limit_concurrency) == (7, 8192, 99)
    assert config.http.func is HeaderDeadlineProtocol and config.http.keywords == {"header_timeout": 3.0}
    defaults = _captured_config(tmp_path, monkeypatch, "")
    assert (defaults.timeout_keep_alive, defaults.h11_max_incomplete_event_size, defaults.limit_concurrency) == (
        5,
        16_384,
        512,
    )
    assert defaults.http.keywords == {"header_timeout": 10.0}
