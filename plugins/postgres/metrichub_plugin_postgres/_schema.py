"""Versioned migrations of the PostgreSQL schema; append, never edit, a released step.

The tables mirror the SQLite backend's: times are ``BIGINT`` microseconds since the
Unix epoch (UTC), so keyset cursors and ordering are the same on both backends, and
``source``/``id`` use the ``"C"`` collation, so rows sort by code point (as SQLite and
Python do) whatever the database's locale. Each step runs in its own transaction and
is recorded in ``schema_version``; a session advisory lock makes concurrent processes
migrate one after the other instead of racing.
"""

from __future__ import annotations

from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow

from metrichub_core.storage.sql.deliveries import DELIVERIES_DDL
from metrichub_core.storage.sql.migrations import check_version
from metrichub_plugin_postgres._dora_schema import (
    CODE_POINT_KEYS,
    DDL,
    LEAD_STAGES,
    LINKS_NAMED,
    REBUILT,
    SHARED_LAYOUT,
    STAGES,
)

__all__ = ["DORA_LOCK", "LOCK_NAMESPACE", "MIGRATIONS", "MIGRATION_LOCK", "SOURCE_LOCK_NAMESPACE", "migrate"]

# Two-key advisory locks ``(namespace, key)``: the first key keeps MetricHub's locks
# apart from any other application's locks in the same database.
LOCK_NAMESPACE = 0x4D480001  # migrations: (LOCK_NAMESPACE, MIGRATION_LOCK)
MIGRATION_LOCK = 1
DORA_LOCK = 2  # (LOCK_NAMESPACE, DORA_LOCK): held by every event write and every refresh, see _dora_write
SOURCE_LOCK_NAMESPACE = 0x4D480002  # per-source collection: (SOURCE_LOCK_NAMESPACE, hashtext(source_id))

MIGRATIONS: list[str] = [
    # 1: events (``rework``: the deployment is labelled rework, by the reference rule), per-source
    # state, derived DORA data (see _dora_schema).
    """
    CREATE TABLE deployments (
        source TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        service TEXT NOT NULL,
        environment TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        finished_at BIGINT,
        listed_at BIGINT NOT NULL,
        commit_sha TEXT,
        change_ids JSONB NOT NULL,
        url TEXT,
        labels JSONB NOT NULL,
        rework BOOLEAN NOT NULL,
        PRIMARY KEY (source, id)
    );
    -- also the DORA timeline: the last successful deployment before an incident, the first after it.
    CREATE INDEX deployments_by_scope ON deployments (service, environment, listed_at, source, id);
    CREATE INDEX deployments_by_time ON deployments (listed_at, source, id);
    CREATE TABLE changes (
        source TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        service TEXT NOT NULL,
        committed_at BIGINT NOT NULL,
        merged_at BIGINT,
        url TEXT,
        PRIMARY KEY (source, id)
    );
    CREATE INDEX changes_by_time ON changes (committed_at, source, id);
    CREATE TABLE incidents (
        source TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        service TEXT NOT NULL,
        environment TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        resolved_at BIGINT,
        severity TEXT,
        caused_by TEXT,
        deployment_related BOOLEAN NOT NULL,
        title TEXT,
        url TEXT,
        PRIMARY KEY (source, id)
    );
    CREATE INDEX incidents_by_scope ON incidents (service, environment, started_at);
    CREATE INDEX incidents_by_time ON incidents (started_at, source, id);
    CREATE TABLE source_state (
        source_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    """
    + DDL,
    # 2: the queue of derived DORA work (see _dora_write): ingest queued, the next DORA query derived
    # (released so; now each write derives its own batch and the queue stays empty).
    """
    CREATE TABLE dora_pending (
        id BIGSERIAL PRIMARY KEY,
        old JSONB NOT NULL,
        deployments JSONB NOT NULL,
        changes JSONB NOT NULL,
        incidents JSONB NOT NULL
    );
    ALTER TABLE dora_pending ALTER old SET STORAGE EXTERNAL, ALTER deployments SET STORAGE EXTERNAL,
        ALTER changes SET STORAGE EXTERNAL, ALTER incidents SET STORAGE EXTERNAL;
    """,
    # 3: a counter every event write moves in its transaction: other processes poll it to
    # empty their report caches (``data_version``).
    """
    CREATE TABLE data_version (
        singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
        version BIGINT NOT NULL
    );
    INSERT INTO data_version (version) VALUES (0);
    """,
    # 4: the day rollups of SQLite (see _dora_schema.SHARED_LAYOUT).
    SHARED_LAYOUT,
    # 5: the links' named columns (see _dora_schema.LINKS_NAMED).
    LINKS_NAMED,
    # 6: buckets from a millisecond (see _dora_schema.REBUILT: migration 11 rebuilds).
    REBUILT,
    # 7: when the upstream last changed each event (microseconds; NULL: unknown), which keeps upserts
    # monotonic (see metrichub_core.storage.versions). Existing rows know no time.
    """
    ALTER TABLE deployments ADD COLUMN updated_at BIGINT;
    ALTER TABLE changes ADD COLUMN updated_at BIGINT;
    ALTER TABLE incidents ADD COLUMN updated_at BIGINT;
    """,
    # 8: webhook delivery ids already received, shared by every process (see metrichub_core.storage.sql.deliveries).
    DELIVERIES_DDL.format(serial="BIGSERIAL PRIMARY KEY", integer="BIGINT"),
    # 9: the lead-time breakdown's derived tables (see _dora_schema.STAGES: migration 11 fills them).
    STAGES,
    # 10: incidents by resolution time: each write relinks the incidents of its scopes that end after
    # its earliest deployment (their fix may move) by this index, not by scanning the scope's incidents.
    "CREATE INDEX incidents_by_resolution ON incidents (service, environment, resolved_at)",
    # 11: the breakdown's stages in the lead rows; every derived table rebuilt (see _dora_schema.LEAD_STAGES).
    LEAD_STAGES,
    # 12: the text keys of the events and derived tables compare by code point (see _dora_schema.CODE_POINT_KEYS).
    CODE_POINT_KEYS,
]


async def migrate(
    conn: AsyncConnection[TupleRow],
    *,
    schema: str | None = None,
    migrations: list[str] | None = None,
    database: str = "the PostgreSQL database",
) -> int:
    """Apply pending migrations on ``conn`` (autocommit); return the schema version.

    Holds the migration advisory lock throughout, so a second process waits here and
    then finds nothing left to do. ``schema`` (already first on the connection's
    ``search_path``) is created when missing. Raises ``MigrationError`` when ``database``
    was written by a newer MetricHub.
    """
    steps = MIGRATIONS if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, MIGRATION_LOCK))
    try:
        if schema is not None:
            await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_version")
        row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        check_version(current, len(steps), database=database, package="metrichub-plugin-postgres")
        for version, script in enumerate(steps[current:], start=current + 1):
            async with conn.transaction():
                await conn.execute(script)  # no parameters: sent as one multi-statement query
                await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        return len(steps)
    finally:
        if not conn.broken:
            await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, MIGRATION_LOCK))
