"""Several processes on one database: overlapping concurrent ingest stores exactly the
distinct set, and every process answers the same DORA report. First with two plain
Python processes (``MetricHub.ingest``), then with two ``metrichub serve`` processes
taking the events over HTTP."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from metrichub_core import MetricHub
from metrichub_core.models import Event
from metrichub_core.storage.base import EventQuery

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pg_concurrent_writer import SINCE, UNTIL, history  # noqa: E402

pytestmark = pytest.mark.slow


async def stored(url: str) -> dict[tuple[str, str, str], Event]:
    async with MetricHub(storage=url) as hub:
        found: dict[tuple[str, str, str], Event] = {}
        for kind in ("deployment", "change", "incident"):
            page = await hub.storage.list_events(EventQuery(kind=kind, limit=1_000_000))
            found.update({(event.kind, event.source, event.id): event for event in page.items})
        return found


def signal(writers: list[subprocess.Popen[str]], expect: str) -> None:
    """Wait until every writer printed ``expect``, then release them all at once."""
    for writer in writers:
        assert writer.stdout is not None
        line = writer.stdout.readline().strip()
        assert line == expect, (line, writer.stderr.read() if writer.stderr and writer.poll() is not None else "")
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()


async def dora(url: str) -> dict[str, Any]:
    async with MetricHub(storage=url) as hub:
        if url == "memory://":
            await hub.ingest(history())
        return (await hub.dora(since=SINCE, until=UNTIL)).model_dump(mode="json")


def test_two_processes_ingesting_overlapping_events_store_the_distinct_set(pg_url: str) -> None:
    events = history()
    assert len(events) == 10_000
    # Process one writes events 0..6999, process two 3000..9999: 4,000 overlap, in different orders.
    writers = [
        subprocess.Popen(
            [sys.executable, str(HERE / "pg_concurrent_writer.py"), pg_url, str(start), str(stop), str(seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for start, stop, seed in ((0, 7_000, 1), (3_000, 10_000, 2))
    ]  # fmt: skip
    try:
        signal(writers, "ready")  # both start writing at once
        signal(writers, "done")  # both report once every write is in
        outputs = [writer.communicate(timeout=300) for writer in writers]
    finally:
        for writer in writers:
            writer.kill()
    for writer, (_, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, stderr[-3000:]
    reports = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]

    expected = {(event.kind, event.source, event.id): event for event in events}
    assert asyncio.run(stored(pg_url)) == expected

    # Both writers, a third process reading afterwards and the in-memory reference agree.
    after, truth = asyncio.run(dora(pg_url)), asyncio.run(dora("memory://"))
    assert reports[0] == reports[1] == after == truth
    assert truth["deployment_frequency"]["count"] > 0 and truth["change_failure_rate"]["failed"] > 0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def post_all(client: httpx.AsyncClient, base: str, events: list[Event]) -> None:
    """POST ``events`` to one server in lists of 250, one list per kind at a time."""
    for start in range(0, len(events), 250):
        chunk = events[start : start + 250]
        for kind, path in (("deployment", "deployments"), ("change", "changes"), ("incident", "incidents")):
            items = [event.model_dump(mode="json") for event in chunk if event.kind == kind]
            if items:
                response = await client.post(f"{base}/api/v1/{path}", json=items)
                assert response.status_code == 200, response.text


async def two_servers_ingest(bases: list[str], slices: list[list[Event]]) -> list[dict[str, Any]]:
    query = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(post_all(client, base, events) for base, events in zip(bases, slices, strict=True)))
        reports = []
        for base in bases:
            response = await client.get(f"{base}/api/v1/metrics/dora", params=query)
            assert response.status_code == 200, response.text
            reports.append(response.json()["data"])
        return reports


def test_two_serve_processes_on_one_database(pg_url: str, tmp_path: Path) -> None:
    """``metrichub serve`` twice on one database; 10,000 events posted to both, 4,000 of them to each."""
    metrichub = Path(sys.executable).with_name("metrichub")
    if not metrichub.exists():
        pytest.skip("the metrichub command is not installed in this environment")
    events = history()
    ports = [free_port(), free_port()]
    logs = [(tmp_path / f"serve{port}.log").open("w") for port in ports]
    servers = [
        subprocess.Popen(
            [str(metrichub), "serve", "--storage", pg_url, "--port", str(port), "--no-access-log",
             "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=log, cwd=tmp_path,
        )
        for port, log in zip(ports, logs, strict=True)
    ]  # fmt: skip
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 60
        for server, base in zip(servers, bases, strict=True):
            while True:
                assert server.poll() is None, (tmp_path / f"serve{base.rsplit(':', 1)[1]}.log").read_text()
                try:
                    if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        one, two = events[:7_000], events[3_000:]
        random.Random(1).shuffle(one)
        random.Random(2).shuffle(two)
        reports = asyncio.run(two_servers_ingest(bases, [one, two]))
    finally:
        for server in servers:
            server.terminate()
        for server, log in zip(servers, logs, strict=True):
            server.wait(timeout=30)
            log.close()
    assert asyncio.run(stored(pg_url)) == {(event.kind, event.source, event.id): event for event in events}
    truth = asyncio.run(dora("memory://"))
    assert reports[0] == reports[1] == truth
