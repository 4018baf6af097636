"""A report through the API while a backfill is writing: answered at once, from the batches committed.

Each batch is derived in its own write transaction, so a report never waits for the writer:
it reads the last committed batch, whose derived tables are complete. The test pauses a real
``hub.ingest`` in the middle of its derivation (a trace callback on its writer connection
blocks on the lead rows' INSERT) and asks for a report meanwhile. Nothing here depends on
timing: the waits are bounds for a failure, never what the assertions rely on.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import httpx
from api_helpers import NOW, data, deployment, make_hub

from metrichub_core import Change, Event, MetricHub
from metrichub_core.api import create_app
from metrichub_core.storage.sqlite import SQLiteStorage

BOUND = 30.0
"""Seconds after which a wait has failed (a passing run never comes near it)."""


def batch(first: int, count: int) -> list[Event]:
    """``count`` deployments of one change each; deployment n finishes n hours before NOW minus a day,
    its change committed 2 hours before that (lead time 7,200 s each)."""
    events: list[Event] = []
    for n in range(first, first + count):
        finished = NOW - timedelta(days=1, hours=n)
        events.append(Change(id=f"c{n}", source="ci", service="checkout", committed_at=finished - timedelta(hours=2)))
        events.append(
            deployment(
                f"d{n}",
                source="ci",
                change_ids=[f"c{n}"],
                finished_at=finished,
                started_at=finished - timedelta(minutes=5),
            )
        )
    return events


async def test_a_report_during_a_backfill_is_answered_from_the_batches_committed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'backfill.db'}"
    deriving, release = threading.Event(), threading.Event()

    def pause_in_derivation(statement: str) -> None:  # runs on the backfill's writer thread
        if statement.lstrip().startswith("INSERT INTO dora_leads"):
            deriving.set()
            release.wait(BOUND)

    window = {"since": (NOW - timedelta(days=30)).isoformat(), "until": NOW.isoformat()}
    app = create_app(make_hub(storage=url), schedule=False, cache_ttl_seconds=0)
    async with (
        MetricHub(url) as backfill,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        await backfill.ingest(batch(0, 10))  # committed: ten deployments, ten leads of 7,200 s
        before = await client.get("/api/v1/metrics/dora", params=window)  # (opens the API's hub)
        storage = backfill.storage
        assert isinstance(storage, SQLiteStorage)
        await storage.write(lambda conn: conn.set_trace_callback(pause_in_derivation))
        writing = asyncio.create_task(backfill.ingest(batch(10, 5)))
        try:
            assert await asyncio.to_thread(deriving.wait, BOUND), "the second batch never reached its derivation"
            during = await asyncio.wait_for(client.get("/api/v1/metrics/dora", params=window), BOUND)
            assert not writing.done()  # answered while the batch was still being derived
            release.set()
            await writing
            after = await client.get("/api/v1/metrics/dora", params=window)
        finally:
            release.set()
            await storage.write(lambda conn: conn.set_trace_callback(None))
            await asyncio.gather(writing, return_exceptions=True)
            await app.state.metrichub.hub.close()

    assert data(before)["deployment_frequency"]["count"] == 10
    # While the second batch was being derived: the first batch, whole (10 deployments, 10 leads).
    report = data(during)
    assert report["deployment_frequency"]["count"] == 10
    assert report["lead_time"]["count"] == 10 and report["lead_time"]["median_seconds"] == 7200.0
    # Once it committed: both batches (10 + 5).
    report = data(after)
    assert report["deployment_frequency"]["count"] == 15
    assert report["lead_time"]["count"] == 15


async def test_nothing_is_left_to_derive_after_a_batch(tmp_path: Path) -> None:
    """The queue a batch fills is applied before its transaction commits: the next report
    never goes to the writer."""
    async with MetricHub(f"sqlite:///{tmp_path / 'queue.db'}") as hub:
        await hub.ingest(batch(0, 3))
        storage = hub.storage
        assert isinstance(storage, SQLiteStorage)
        assert await storage.read(lambda conn: conn.execute("SELECT count(*) FROM dora_pending").fetchone()[0]) == 0
        assert await storage.read(lambda conn: conn.execute("SELECT count(*) FROM dora_leads").fetchone()[0]) == 3
        assert await storage.refresh_dora() == 0


def test_sqlite_is_what_the_backfill_test_pauses() -> None:
    # The pause relies on the statement text SQLite hands to trace callbacks.
    seen: list[str] = []
    conn = sqlite3.connect(":memory:")
    conn.set_trace_callback(seen.append)
    conn.execute("SELECT 1")
    assert seen == ["SELECT 1"]
