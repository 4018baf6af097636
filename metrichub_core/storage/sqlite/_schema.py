"""Versioned migrations of the SQLite schema; append, never edit, a released step.

Times are stored as integer microseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from metrichub_core.storage.sql.deliveries import DELIVERIES_DDL
from metrichub_core.storage.sql.dora import LINKS_NAMED_DDL, SHIPS_AND_LEADS_DDL
from metrichub_core.storage.sql.migrations import check_version
from metrichub_core.storage.sql.rollups import MONTHS_BY_BUCKET
from metrichub_core.storage.sql.stages import LEAD_STAGES_DDL, stages_ddl
from metrichub_core.storage.sqlite._dora_schema import DORA_MIGRATION

__all__ = ["MIGRATIONS", "migrate", "transaction"]

MIGRATIONS: list[str] = [
    # 1: events, per-source state.
    """
    CREATE TABLE deployments (
        source TEXT NOT NULL,
        id TEXT NOT NULL,
        service TEXT NOT NULL,
        environment TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        listed_at INTEGER NOT NULL,
        commit_sha TEXT,
        change_ids TEXT NOT NULL,
        url TEXT,
        labels TEXT NOT NULL,
        PRIMARY KEY (source, id)
    );
    CREATE INDEX deployments_by_scope ON deployments (service, environment, listed_at);
    CREATE INDEX deployments_by_time ON deployments (listed_at, source, id);
    CREATE TABLE changes (
        source TEXT NOT NULL,
        id TEXT NOT NULL,
        service TEXT NOT NULL,
        committed_at INTEGER NOT NULL,
        merged_at INTEGER,
        url TEXT,
        PRIMARY KEY (source, id)
    );
    CREATE INDEX changes_by_scope ON changes (service, committed_at);
    CREATE INDEX changes_by_time ON changes (committed_at, source, id);
    CREATE TABLE incidents (
        source TEXT NOT NULL,
        id TEXT NOT NULL,
        service TEXT NOT NULL,
        environment TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        resolved_at INTEGER,
        severity TEXT,
        caused_by TEXT,
        deployment_related INTEGER NOT NULL,
        title TEXT,
        url TEXT,
        PRIMARY KEY (source, id)
    );
    CREATE INDEX incidents_by_scope ON incidents (service, environment, started_at);
    CREATE INDEX incidents_by_time ON incidents (started_at, source, id);
    CREATE TABLE source_state (
        source_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    """,
    # 2: derived DORA data (see _dora_schema); filled from existing events on open.
    DORA_MIGRATION,
    # 3: whether a deployment is labelled rework, computed when it is written (as on PostgreSQL);
    # existing rows get the value the queries computed until now.
    """
    ALTER TABLE deployments ADD COLUMN rework INTEGER NOT NULL DEFAULT 0;
    UPDATE deployments SET rework = lower(trim(coalesce(json_extract(labels, '$.rework'), ''))) IN ('1', 'true', 'yes')
    """,
    # 4: the derived tables of the PostgreSQL backend: dora_ships (successful deployments' changes)
    # for dora_deployment_changes, lead microseconds for seconds (see metrichub_core.storage.sql.dora);
    # rebuilt from the events on open.
    """
    DROP TABLE dora_deployment_changes;
    DROP TABLE dora_leads;
    """
    + SHIPS_AND_LEADS_DDL
    + """;
    DELETE FROM dora_pending;
    UPDATE dora_meta SET value = '1' WHERE key = 'needs_rebuild'
    """,
    # 5: the links keep whether an incident names a deployment and the failed run it names (what
    # caused_by may name depends on the options, see metrichub_core.storage.sql.dora); rebuilt on open.
    LINKS_NAMED_DDL.format(boolean="INTEGER", false="0", collate="", integer="INTEGER")
    + """;
    DELETE FROM dora_pending;
    UPDATE dora_meta SET value = '1' WHERE key = 'needs_rebuild'
    """,
    # 6: duration buckets start at a millisecond (all under it share bucket 0), so sub-second
    # values keep their own buckets; the rollups are rebuilt on open.
    """
    DELETE FROM dora_pending;
    UPDATE dora_meta SET value = '1' WHERE key = 'needs_rebuild'
    """,
    # 7: when the upstream last changed each event (microseconds; NULL: unknown), which keeps upserts
    # monotonic (see metrichub_core.storage.versions). Existing rows know no time.
    """
    ALTER TABLE deployments ADD COLUMN updated_at INTEGER;
    ALTER TABLE changes ADD COLUMN updated_at INTEGER;
    ALTER TABLE incidents ADD COLUMN updated_at INTEGER
    """,
    # 8: webhook delivery ids already received, shared by every process (see metrichub_core.storage.sql.deliveries).
    DELIVERIES_DDL.format(serial="INTEGER PRIMARY KEY", integer="INTEGER"),
    # 9: the lead-time breakdown (commit to merge, merge to deploy: metrichub_core.storage.sql.stages),
    # per change and in day and month rollups; every derived table is rebuilt on open.
    stages_ddl(integer="INTEGER", real="REAL", suffix=" WITHOUT ROWID")
    + """;
    DELETE FROM dora_pending;
    UPDATE dora_meta SET value = '1' WHERE key = 'needs_rebuild'
    """,
    # 10: incidents by resolution time: each write relinks the incidents of its scopes that end after
    # its earliest deployment (their fix may move) by this index, not by scanning the scope's incidents.
    "CREATE INDEX incidents_by_resolution ON incidents (service, environment, resolved_at)",
    # 11: the lead-time breakdown moves into the lead rows (metrichub_core.storage.sql.stages), which a
    # backfill then writes once, not twice; every derived table is rebuilt on open.
    LEAD_STAGES_DDL.format(integer="INTEGER")
    + """;
    DELETE FROM dora_pending;
    UPDATE dora_meta SET value = '1' WHERE key = 'needs_rebuild'
    """,
    # 12: the month rollups in bucket order, which a report of a year or more sums as it reads them;
    # the lead rows by time with the columns their day rollups sum, which a batch's recount reads.
    MONTHS_BY_BUCKET,
]


def migrate(
    conn: sqlite3.Connection, *, database: str = "the SQLite database", migrations: list[str] | None = None
) -> int:
    """Apply pending ``migrations`` (``MIGRATIONS``), each in its own transaction; return the schema version.

    Several processes may open a new database at once (``serve --workers``): each step reads
    the version inside its write transaction, so a step another process applied is skipped.
    Raises ``MigrationError`` when ``database`` was written by a newer MetricHub.
    """
    steps = MIGRATIONS if migrations is None else migrations
    while True:
        with transaction(conn):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            current: int = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            check_version(current, len(steps), database=database, package="metrichub-core")
            if current == len(steps):
                return current
            for statement in steps[current].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, datetime('now'))", (current + 1,))


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run a block as one write transaction on an autocommit-mode connection."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
