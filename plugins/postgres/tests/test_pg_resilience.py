"""Connection loss: killed backends and server restarts never half-write a batch, and the pool recovers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from metrichub_plugin_postgres import PostgresStorage
from metrichub_plugin_postgres.testing import TemporaryServer

from metrichub_core.models import Change, Deployment, Event
from metrichub_core.storage.base import EventQuery, StorageError

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def batch(prefix: str, count: int) -> list[Event]:
    events: list[Event] = []
    for n in range(count):
        events.append(Change(id=f"{prefix}c{n}", source="gh", service="api", committed_at=T0 + timedelta(seconds=n)))
        events.append(
            Deployment(
                id=f"{prefix}d{n}", source="ci", service="api", status="success",
                started_at=T0 + timedelta(seconds=n), change_ids=[f"{prefix}c{n}"],
            )
        )  # fmt: skip
    return events


async def count(storage: PostgresStorage, kind: str) -> int:
    page = await storage.list_events(EventQuery(kind=kind, limit=1_000_000))  # type: ignore[arg-type]
    return len(page.items)


@pytest.fixture
async def storage(pg_url: str) -> AsyncIterator[PostgresStorage]:
    opened = PostgresStorage(pg_url + "?pool_timeout=5")
    await opened.open()
    yield opened
    await opened.close()


async def test_a_backend_killed_mid_batch_writes_nothing_and_the_next_batch_succeeds(
    storage: PostgresStorage, pg_server: TemporaryServer, pg_database: str
) -> None:
    with pg_server.connect(pg_database) as admin:
        # Deployments are written before changes; the change "slow" parks the batch
        # half-way, after 2,000 deployments are already in the open transaction.
        admin.execute(
            "CREATE FUNCTION park() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$"
        )
        admin.execute(
            "CREATE TRIGGER park BEFORE INSERT ON changes FOR EACH ROW WHEN (NEW.id = 'slow') EXECUTE FUNCTION park()"
        )
        write = asyncio.ensure_future(
            storage.upsert([*batch("a", 2_000), Change(id="slow", source="gh", service="api", committed_at=T0)])
        )
        deadline = time.monotonic() + 20
        killed: list[tuple[bool]] = []
        while not killed and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()"
            ).fetchall()
        assert killed == [(True,)]
        with pytest.raises(StorageError, match="terminating connection due to administrator command"):
            await write
        assert await count(storage, "deployment") == 0
        assert await count(storage, "change") == 0
        assert await storage.upsert(batch("b", 100)) == 200
        assert await count(storage, "deployment") == 100
        assert (await storage.health()).ok


async def test_idle_pooled_connections_killed_between_batches_are_replaced(
    storage: PostgresStorage, pg_server: TemporaryServer, pg_database: str
) -> None:
    await storage.upsert(batch("a", 10))
    with pg_server.connect(pg_database) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'metrichub'"
        ).fetchall()
    assert killed and all(ok for (ok,) in killed)
    await asyncio.sleep(0.1)
    assert await storage.upsert(batch("b", 10)) == 20
    assert await count(storage, "deployment") == 20


async def test_server_restart_shows_in_health_fails_batches_whole_and_recovers(
    storage: PostgresStorage, pg_server: TemporaryServer
) -> None:
    await storage.upsert(batch("a", 10))
    pg_server.stop(keep=True)
    try:
        health = await storage.health()
        assert not health.ok and health.schema_version is not None
        assert "unreachable" in (health.detail or "")
        with pytest.raises(StorageError):
            await storage.upsert(batch("b", 10))
    finally:
        pg_server.start()
    assert await storage.upsert(batch("c", 10)) == 20
    assert (await storage.health()).ok
    assert await count(storage, "deployment") == 20  # "a" and "c"; "b" was never written


async def test_server_restart_between_batches_is_invisible(
    storage: PostgresStorage, pg_server: TemporaryServer
) -> None:
    await storage.upsert(batch("a", 10))
    pg_server.restart()
    assert await storage.upsert(batch("b", 10)) == 20
    assert await count(storage, "deployment") == 20
