"""A batch the SQLite backend writes part by part is still one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from metrichub_core.models import Change, Deployment
from metrichub_core.storage.base import EventQuery
from metrichub_core.storage.sqlite import SQLiteStorage
from metrichub_core.storage.sqlite._storage import PART_EVENTS

START = datetime(2026, 1, 1, tzinfo=UTC)


def changes(count: int, prefix: str = "c") -> list[Change]:
    return [
        Change(id=f"{prefix}{i}", source="s", service="api", committed_at=START + timedelta(seconds=i))
        for i in range(count)
    ]


async def stored(storage: SQLiteStorage) -> int:
    return len((await storage.list_events(EventQuery(kind="change", limit=10_000))).items)


async def test_a_batch_that_cannot_be_turned_into_rows_leaves_nothing_written(tmp_path: Path) -> None:
    storage = SQLiteStorage(f"sqlite:///{tmp_path}/parts.db")
    await storage.open()
    try:
        batch = changes(PART_EVENTS * 2 + 500)
        # Built without validation, as a plugin might: its first two parts are written before this one fails.
        bad = Change.model_construct(id="bad", source="s", service="api", committed_at="today")  # type: ignore[arg-type]
        batch[PART_EVENTS * 2 + 200] = bad
        with pytest.raises(TypeError):
            await storage.upsert(batch)
        assert await stored(storage) == 0
        assert await storage.upsert(changes(10, "next")) == 10  # the writer is free again
        assert await stored(storage) == 10
    finally:
        await storage.close()


async def test_a_key_in_several_parts_of_a_batch_ends_as_upserting_its_events_one_by_one(tmp_path: Path) -> None:
    """A deployment given twice in one batch, more than a part apart, the later one older upstream:
    the newer version stays, and the derived rows move from where the deployment was before the
    batch to where the newer version puts it (the stale one's day holds nothing)."""
    storage = SQLiteStorage(f"sqlite:///{tmp_path}/parts.db")
    await storage.open()
    try:
        first = Deployment(
            id="d", source="s", service="api", status="success", started_at=START, change_ids=["c0"], updated_at=START
        )
        await storage.upsert([*changes(1), first])
        newer = first.model_copy(
            update={"service": "web", "started_at": START + timedelta(days=3), "updated_at": START + timedelta(hours=2)}
        )
        stale = first.model_copy(
            update={"started_at": START + timedelta(days=2), "updated_at": START + timedelta(hours=1)}
        )
        await storage.upsert([newer, *changes(PART_EVENTS * 2, "x"), stale])
        assert await storage.get("deployment", "s", "d") == newer
        days = await storage.read(
            lambda conn: conn.execute(
                "SELECT service, day, deployments FROM dora_deploy_days WHERE service <> '' ORDER BY 1, 2"
            ).fetchall()
        )
        # 2026-01-01 is day 20454 since the epoch; the deployment now sits on day 20457 of "web" alone
        assert [tuple(row) for row in days] == [("web", 20457, 1)]
    finally:
        await storage.close()


async def test_a_thread_of_its_own_copies_the_wal_into_the_database_after_a_batch(tmp_path: Path) -> None:
    """The writer leaves checkpoints to the checkpointer (its own backstop is 256 MiB of WAL): soon
    after a batch, the database file alone (without its WAL) holds it."""
    storage = SQLiteStorage(f"sqlite:///{tmp_path}/parts.db")
    await storage.open()
    try:
        await storage.upsert(changes(PART_EVENTS + 10))
        copied = 0
        for _ in range(100):  # up to 5 s, polling: the checkpoint runs beside the caller
            shutil.copy(tmp_path / "parts.db", tmp_path / "alone.db")  # the file without its -wal
            with contextlib.closing(sqlite3.connect(tmp_path / "alone.db")) as alone:
                try:
                    copied = alone.execute("SELECT count(*) FROM changes").fetchone()[0]
                except sqlite3.DatabaseError:  # copied while the checkpoint was writing it: look again
                    copied = 0
            if copied == PART_EVENTS + 10:
                break
            await asyncio.sleep(0.05)
        assert copied == PART_EVENTS + 10
    finally:
        await storage.close()
