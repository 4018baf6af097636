"""Several processes on one database: overlapping concurrent ingest stores exactly the
distinct set, and every process answers the same DORA report."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from metrichub_core import MetricHub
from metrichub_core.models import Event
from metrichub_core.storage.base import EventQuery

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pg_concurrent_writer import REPORT_WINDOW, history  # noqa: E402

pytestmark = pytest.mark.slow


async def stored(url: str) -> dict[tuple[str, str, str], Event]:
    async with MetricHub(storage=url) as hub:
        found: dict[tuple[str, str, str], Event] = {}
        for kind in ("deployment", "change", "incident"):
            page = await hub.storage.list_events(EventQuery(kind=kind, limit=1_000_000))  # type: ignore[arg-type]
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


async def dora(url: str) -> dict[str, object]:
    async with MetricHub(storage=url) as hub:
        if url == "memory://":
            await hub.ingest(history())
        return (await hub.dora(**REPORT_WINDOW)).model_dump(mode="json")


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
