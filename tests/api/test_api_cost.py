"""Bounded cost per report request (issue 19 item 1): a cost cap, and work that stops at the deadline.

The deadline tests make the work endless on purpose (a recursive query that never ends),
so they pass only if the work is stopped, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from api_helpers import assert_error, data, make_hub
from real_server import serve

from metrichub_core.deadline import DeadlineExceeded, deadline
from metrichub_core.dora import DoraScope, FactsRequest
from metrichub_core.storage.sqlite import SQLiteStorage

ENDLESS = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
"""A query that never ends by itself."""


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_trend_over_the_bucket_limit_is_refused_with_400_naming_the_limit(tmp_path: Path) -> None:
    with serve(tmp_path, "[api]\nmax_trend_buckets = 100\n") as url:
        trend = f"{url}/api/v1/metrics/dora/trend"
        status, body = _get(f"{trend}?bucket=day&days=365&label=team=x")  # 365 or 366 day buckets
        assert status == 400
        error = body["error"]
        assert error["code"] == "validation_error"
        assert "max_trend_buckets" in error["message"] and "limit of 100" in error["message"]
        assert [(d["field"], d["type"]) for d in error["details"]] == [("query.bucket", "cost_limit")]
        status, body = _get(f"{trend}?bucket=week&days=365&label=team=x")  # 53 or 54 weeks
        assert status == 200 and 53 <= len(body["data"]["points"]) <= 54


class _EndlessReports(SQLiteStorage):
    """SQLite whose DORA query never ends by itself: only its deadline or cancellation stops it."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.started = threading.Event()

    async def dora_facts(self, request: FactsRequest) -> Any:
        def endless(conn: sqlite3.Connection) -> Any:
            self.started.set()
            return conn.execute(ENDLESS).fetchall()

        return await self.read(endless)


async def test_a_report_past_its_deadline_gets_504_and_its_query_is_stopped(
    tmp_path: Path, make_app: Any, client_for: Any
) -> None:
    storage = _EndlessReports(f"sqlite:///{tmp_path}/endless.db")
    async with make_hub(storage=storage, request_timeout_seconds=0.5) as hub:
        client = client_for(make_app(hub))
        error = assert_error(await client.get("/api/v1/metrics/dora?label=team=x"), 504, "timeout")
        assert "0.5 seconds" in error["message"]
        async with asyncio.timeout(30):  # the next read waits for the endless one: only its stop lets it run
            assert await storage.read(lambda conn: conn.execute("SELECT 42").fetchone()[0]) == 42
        assert storage.reads_stopped == 1
        assert data(await client.get("/api/v1/health"))["status"] == "ok"


async def test_a_read_whose_caller_goes_away_is_stopped(tmp_path: Path) -> None:
    storage = _EndlessReports(f"sqlite:///{tmp_path}/endless.db")
    await storage.open()
    try:
        task = asyncio.create_task(storage.dora_facts(FactsRequest(DoraScope(), ())))
        async with asyncio.timeout(30):
            assert await asyncio.to_thread(storage.started.wait, 30)
            task.cancel()  # no deadline at all: the cancellation alone stops the statement
            assert await storage.read(lambda conn: conn.execute("SELECT 1").fetchone()[0]) == 1
        assert storage.reads_stopped == 1
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await storage.close()


async def test_a_read_past_its_deadline_raises_deadline_exceeded(tmp_path: Path) -> None:
    storage = _EndlessReports(f"sqlite:///{tmp_path}/endless.db")
    await storage.open()
    try:
        with deadline(0.2), pytest.raises(DeadlineExceeded):
            await asyncio.wait_for(storage.dora_facts(FactsRequest(DoraScope(), ())), 30)
        assert storage.reads_stopped == 1
    finally:
        await storage.close()
