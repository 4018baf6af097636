"""What processes sharing one database learn from it: who collects a source, and whether someone wrote."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from metrichub_plugin_postgres import PostgresStorage
from metrichub_plugin_postgres._schema import MIGRATIONS, migrate

from metrichub_core import Deployment, MetricHub
from metrichub_core.storage import DataVersioned, SourceLocking
from metrichub_core.storage.sql.dialect import POSTGRES
from metrichub_core.storage.sql.events import Rows, json_records, upsert_sql
from metrichub_core.testing.served import check_every_worker_sees_writes

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def deployment(id_: str) -> Deployment:
    return Deployment(id=id_, source="ci", service="api", status="success", started_at=NOW, finished_at=NOW)


async def test_the_holder_of_a_source_lock_is_named(pg_url: str) -> None:
    holder, other = PostgresStorage(pg_url), PostgresStorage(pg_url)
    await holder.open()
    await other.open()
    try:
        assert isinstance(other, SourceLocking)
        assert await other.source_lock_holder("acme-gl") is None
        async with holder.source_lock("acme-gl") as acquired:
            assert acquired
            named = await other.source_lock_holder("acme-gl")
            # The server session (pg_stat_activity.pid), its client and application_name.
            assert named is not None and named.startswith("PostgreSQL session ")
            assert named.endswith(" from 127.0.0.1 (metrichub)")
            assert await other.source_lock_holder("another-source") is None
            async with other.source_lock("acme-gl") as again:
                assert not again
        assert await other.source_lock_holder("acme-gl") is None
    finally:
        await holder.close()
        await other.close()


async def test_data_version_moves_with_every_write_of_any_process(pg_url: str) -> None:
    writer, reader = PostgresStorage(pg_url), PostgresStorage(pg_url)
    await writer.open()
    await reader.open()
    try:
        assert isinstance(reader, DataVersioned)
        before = await reader.data_version()
        await writer.upsert([deployment("d1")])
        after_one = await reader.data_version()
        await asyncio.gather(writer.upsert([deployment("d2")]), reader.upsert([deployment("d3")]))
        assert before < after_one < await reader.data_version()
        await reader.set_state("ci", {"cursor": "x"})  # state is not DORA data
        assert await writer.data_version() == await reader.data_version()
    finally:
        await writer.close()
        await reader.close()


async def test_a_database_written_before_migration_3_keeps_its_events_and_gains_the_version(pg_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:  # the 0.1.0 schema
        await migrate(conn, migrations=MIGRATIONS[:2])
        ((table, rows),) = Rows([deployment("d1")], POSTGRES).tables()
        await conn.execute(upsert_sql(POSTGRES, table), (json_records(table, rows),))
    hub = MetricHub(PostgresStorage(pg_url))
    async with hub:
        assert isinstance(hub.storage, PostgresStorage) and hub.storage.schema_version == len(MIGRATIONS) >= 6
        version = await hub.data_version()
        await hub.ingest([deployment("d2")])
        assert await hub.data_version() == (version or 0) + 1
        report = await hub.dora(since=NOW.date(), until=NOW.date() + timedelta(days=1), service="api")
        assert report.deployment_frequency.count == 2


def test_every_worker_sees_a_write_from_anywhere_within_a_second(pg_url: str, tmp_path: Path) -> None:
    """``serve --workers 2`` on PostgreSQL, a separate ``metrichub collect`` and a POST to one worker."""
    config = tmp_path / "metrichub.toml"
    config.write_text(f'storage = "{pg_url}"\n[sources.demo]\nkind = "demo"\ndays = 10\n', encoding="utf-8")
    check_every_worker_sees_writes(config)
