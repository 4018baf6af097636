"""PostgreSQL specifics beyond the contract: URLs, registration, migrations, locks, collation."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from metrichub_plugin_postgres import PostgresStorage, source_lock_key
from metrichub_plugin_postgres._schema import MIGRATIONS, migrate
from metrichub_plugin_postgres._urls import parse_url, redact
from metrichub_plugin_postgres.testing import TemporaryServer

from metrichub_core import MetricHub
from metrichub_core.errors import MigrationError
from metrichub_core.models import Change, Deployment
from metrichub_core.plugins import PluginHost
from metrichub_core.storage.base import EventQuery, StorageError
from metrichub_core.storage.memory import MemoryStorage

T0 = datetime(2026, 3, 2, tzinfo=UTC)


# -- URLs ------------------------------------------------------------------------------


def test_url_keeps_libpq_parameters_and_takes_its_own() -> None:
    parsed = parse_url("postgres://u:s%40cret@db:5433/mh?sslmode=require&pool_max_size=4&pool_timeout=2.5&schema=mh")
    assert parsed.pool_max_size == 4 and parsed.pool_timeout == 2.5 and parsed.schema == "mh"
    assert parsed.conninfo.startswith("postgresql://u:s%40cret@db:5433/mh?")
    assert "sslmode=require" in parsed.conninfo and "pool_" not in parsed.conninfo
    assert "application_name=metrichub" in parsed.conninfo and "search_path%3Dmh" in parsed.conninfo
    assert parsed.redacted == "postgres://u:***@db:5433/mh?sslmode=require&pool_max_size=4&pool_timeout=2.5&schema=mh"
    assert "cret" not in repr(parsed)
    assert parsed.scrub("auth failed for s@cret and s%40cret") == "auth failed for *** and ***"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://h/db?password=pw&sslmode=disable", "postgresql://h/db?password=%2A%2A%2A&sslmode=disable"),
        ("postgresql:///db?host=/run/postgresql", "postgresql:///db?host=/run/postgresql"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    "url",
    ["mysql://u:pw@h/db", "postgresql://u:pw@h/db?pool_max_size=x", "postgresql://u:pw@h/db?schema=Bad-Name"],
)
def test_unusable_urls_are_storage_errors_without_the_password(url: str) -> None:
    with pytest.raises(StorageError) as caught:
        PostgresStorage(url)
    assert "pw" not in str(caught.value)


def test_both_schemes_are_registered() -> None:
    host = PluginHost.load()
    for scheme in ("postgresql", "postgres"):
        storage = host.create_storage(f"{scheme}://u:pw@127.0.0.1/db")
        assert isinstance(storage, PostgresStorage)
        assert storage.url == f"{scheme}://u:***@127.0.0.1/db"


async def test_postgres_scheme_works_end_to_end(pg_url: str) -> None:
    async with MetricHub(storage=pg_url.replace("postgresql://", "postgres://", 1)) as hub:
        assert await hub.ingest([Change(id="c1", source="gh", service="api", committed_at=T0)]) == 1
        health = await hub.storage.health()
        assert health.ok and health.backend == "postgresql" and health.schema_version == len(MIGRATIONS)


# -- errors never show the password ----------------------------------------------------


async def test_wrong_password_is_a_storage_error_without_the_password(
    pg_server: TemporaryServer, pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = pg_server.url(pg_database).replace(pg_server.password, "Wr0ng-Secret")
    storage = PostgresStorage(wrong)
    with pytest.raises(StorageError, match="password authentication failed") as caught:
        await storage.open()
    health = await storage.health()
    assert not health.ok
    for text in (str(caught.value), repr(caught.value.__cause__), str(health), repr(storage), caplog.text):
        assert "Wr0ng-Secret" not in text


async def test_outage_health_and_logs_never_show_the_password(
    pg_server: TemporaryServer, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    storage = PostgresStorage(pg_url + "?pool_timeout=1")
    await storage.open()
    try:
        pg_server.stop(keep=True)
        health = await storage.health()
        assert not health.ok
        with pytest.raises(StorageError) as caught:
            await storage.upsert([Change(id="c1", source="gh", service="api", committed_at=T0)])
    finally:
        pg_server.start()
        await storage.close()
    for text in (str(health), str(caught.value), caplog.text):
        assert pg_server.password not in text


# -- migrations -------------------------------------------------------------------------


async def test_concurrent_opens_migrate_once(pg_url: str) -> None:
    storages = [PostgresStorage(pg_url) for _ in range(6)]
    await asyncio.gather(*(storage.open() for storage in storages))
    try:
        assert {storage.schema_version for storage in storages} == {len(MIGRATIONS)}
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            versions = await (await conn.execute("SELECT version FROM schema_version ORDER BY version")).fetchall()
        assert [version for (version,) in versions] == list(range(1, len(MIGRATIONS) + 1))
    finally:
        for storage in storages:
            await storage.close()


async def test_a_new_migration_is_applied_once_and_recorded(pg_url: str) -> None:
    steps = [*MIGRATIONS, "ALTER TABLE changes ADD COLUMN note TEXT"]
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        assert await migrate(conn) == len(MIGRATIONS)
        assert await migrate(conn, migrations=steps) == len(steps)
        assert await migrate(conn, migrations=steps) == len(steps)
        rows = await (await conn.execute("SELECT count(*) FROM schema_version")).fetchone()
        assert rows == (len(steps),)


async def test_a_failing_migration_leaves_the_previous_version(pg_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await migrate(conn)
        with pytest.raises(psycopg.errors.UndefinedTable):
            await migrate(conn, migrations=[*MIGRATIONS, "CREATE TABLE ok (x int); ALTER TABLE missing ADD y int"])
        assert await (await conn.execute("SELECT max(version) FROM schema_version")).fetchone() == (len(MIGRATIONS),)
        assert await (await conn.execute("SELECT to_regclass('ok')")).fetchone() == (None,)
        # The lock was released: migrating again does not hang.
        assert await asyncio.wait_for(migrate(conn), timeout=5) == len(MIGRATIONS)


async def test_a_newer_database_is_refused(pg_url: str) -> None:
    storage = PostgresStorage(pg_url)
    await storage.open()
    await storage.close()
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (len(MIGRATIONS) + 1,))
    # Not "closed" nor a driver error: which MetricHub wrote it, and which version reads it.
    newer = len(MIGRATIONS) + 1
    expected = rf"written by a newer MetricHub.*version {newer}.*metrichub-plugin-postgres"
    with pytest.raises(MigrationError, match=expected):
        await PostgresStorage(pg_url).open()


async def test_schema_parameter_keeps_tables_apart(pg_url: str) -> None:
    one, two = PostgresStorage(pg_url + "?schema=team_one"), PostgresStorage(pg_url + "?schema=team_two")
    await one.open()
    await two.open()
    try:
        await one.upsert([Change(id="c1", source="gh", service="api", committed_at=T0)])
        assert await one.get("change", "gh", "c1") is not None
        assert await two.get("change", "gh", "c1") is None
    finally:
        await one.close()
        await two.close()


# -- ordering is the other backends' ordering, whatever the database's collation -------


async def test_listing_order_matches_memory_under_an_icu_collation(pg_url: str) -> None:
    names = ["a", "B", "b", "Z", "_x", "é", "e", "10", "9", "a b", "ab", "A", "ä", "日本", "😀"]
    events = [
        Deployment(id=name, source=source, service="api", status="success", started_at=T0)
        for name in names
        for source in ("gh", "GH", "Gh")
    ]
    memory, postgres = MemoryStorage(), PostgresStorage(pg_url)
    await memory.open()
    await postgres.open()
    try:
        await memory.upsert(events)
        await postgres.upsert(events)
        for backend in (memory, postgres):
            seen, cursor = [], None
            while True:
                page = await backend.list_events(EventQuery(kind="deployment", limit=4, cursor=cursor))
                seen.append([(event.source, event.id) for event in page.items])
                if (cursor := page.next_cursor) is None:
                    break
            if backend is memory:
                expected = seen
        assert seen == expected
    finally:
        await postgres.close()


async def test_text_keys_compare_by_code_point(pg_url: str) -> None:
    """Migration 12: the text keys the derivation's indexes compare use the "C" collation, not the
    database's (ICU here), on every table it names."""
    from metrichub_plugin_postgres._dora_schema import TEXT_KEYS

    storage = PostgresStorage(pg_url)
    await storage.open()
    await storage.close()
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        rows = await (
            await conn.execute(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND data_type = 'text'"
            )
        ).fetchall()
    collations = {(table, column): collation for table, column, collation in rows}
    keys = [(table, column) for table, columns in TEXT_KEYS.items() for column in columns]
    assert len(keys) == 30 and {collations[key] for key in keys} == {"C"}
    assert collations[("deployments", "commit_sha")] is None  # the database's default elsewhere


# -- per-source collection lock ---------------------------------------------------------


async def test_source_lock_is_exclusive_across_storages(pg_url: str) -> None:
    first, second = PostgresStorage(pg_url), PostgresStorage(pg_url)  # as two processes would
    await first.open()
    await second.open()
    try:
        async with first.source_lock("acme-gh") as held:
            assert held
            async with second.source_lock("acme-gh") as other:
                assert not other
            async with second.source_lock("acme-gl") as different:
                assert different
        async with second.source_lock("acme-gh") as after:
            assert after
    finally:
        await first.close()
        await second.close()


async def test_source_lock_is_released_when_the_block_raises(pg_url: str) -> None:
    storage = PostgresStorage(pg_url)
    await storage.open()
    try:
        with pytest.raises(RuntimeError):
            async with storage.source_lock("s") as held:
                assert held
                raise RuntimeError("collection failed")
        async with storage.source_lock("s") as again:
            assert again
    finally:
        await storage.close()


async def test_source_lock_dies_with_its_connection(pg_url: str, pg_server: TemporaryServer) -> None:
    first, second = PostgresStorage(pg_url), PostgresStorage(pg_url)
    await first.open()
    await second.open()
    classid, objid = source_lock_key("s")
    try:
        async with first.source_lock("s") as held:
            assert held
            with pg_server.connect() as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND objsubid = 2",
                    (classid, objid & 0xFFFFFFFF),
                )
            await asyncio.sleep(0.2)
            async with second.source_lock("s") as taken_over:
                assert taken_over
    finally:
        await first.close()
        await second.close()


def test_source_lock_keys_are_stable_and_namespaced() -> None:
    assert source_lock_key("acme-gh") == source_lock_key("acme-gh")
    assert source_lock_key("acme-gh") != source_lock_key("acme-gl")
    assert source_lock_key("acme-gh") != source_lock_key("acme-gh", schema="other")
    assert all(-(2**31) <= part < 2**31 for part in source_lock_key("x"))


async def test_a_closed_storage_refuses_the_lock(pg_url: str) -> None:
    storage = PostgresStorage(pg_url)
    with pytest.raises(StorageError, match="not open"):
        async with storage.source_lock("s"):
            pass


async def test_open_is_idempotent_and_close_twice_is_harmless(pg_url: str) -> None:
    storage = PostgresStorage(pg_url)
    await storage.open()
    await storage.open()
    await storage.close()
    await storage.close()
    assert not (await storage.health()).ok


async def test_listing_window_bounds_are_half_open(pg_url: str) -> None:
    storage = PostgresStorage(pg_url)
    await storage.open()
    try:
        changes = [
            Change(id=f"c{n}", source="gh", service="api", committed_at=T0 + timedelta(hours=n)) for n in range(5)
        ]
        await storage.upsert(changes)
        page = await storage.list_events(
            EventQuery(kind="change", since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))
        )
        assert [change.id for change in page.items] == ["c2", "c1"]
    finally:
        await storage.close()


async def test_statistics_are_refreshed_as_the_tables_grow(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from metrichub_plugin_postgres import _storage

    monkeypatch.setattr(_storage, "ANALYZE_MIN_ROWS", 50)
    storage = PostgresStorage(pg_url)
    await storage.open()
    try:
        await storage.upsert([Change(id=f"c{n}", source="gh", service="api", committed_at=T0) for n in range(60)])
        assert storage._analyzing is not None
        await storage._analyzing
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            rows = await (
                await conn.execute(
                    "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL AND relname = ANY(%s)",
                    (list(_storage.ANALYZED_TABLES),),
                )
            ).fetchall()
        # Every table the derivation probes by key, the breakdown's too: without statistics the planner
        # probed a table of stage rows by (service, environment) and filtered a whole scope for each key.
        assert {name for (name,) in rows} == set(_storage.ANALYZED_TABLES) >= {"changes", "dora_stage_days"}
        assert storage._analyze_after >= 50
    finally:
        await storage.close()
