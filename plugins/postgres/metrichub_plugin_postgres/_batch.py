"""A batch's events upserted through the session's temporary tables, with what they replaced.

Each table's rows are copied (binary ``COPY``) into a temporary table of the same columns
(``BATCH_TABLES``, created on every pooled connection, emptied at each commit), then one
statement per table upserts them and returns, for each row it wrote, the version it
replaced: the derivation (``_dora_write``) needs both, and reading the stored versions in
the same statement costs neither a round trip nor a second parse of the batch. A row the
monotonic ``updated_at`` rule refused (``Dialect.upsert``) is not returned: nothing about
it changed, so there is nothing to derive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from metrichub_core.storage.sql.dialect import POSTGRES
from metrichub_core.storage.sql.events import COLUMNS, KEY, Rows, conflict_sql

__all__ = ["BATCH_TABLES", "Version", "Written", "upsert"]

Connection = AsyncConnection[TupleRow]

Version = tuple[str, str, int, list[str], str, str, str]
"""A deployment as derived: service, environment, listed_at, change_ids, id, source, status."""

BATCH_TABLES = ";\n".join(
    f"CREATE TEMPORARY TABLE batch_{table} (LIKE {table}) ON COMMIT DELETE ROWS" for table in COLUMNS
)
"""The session's tables a batch is copied into: the event tables' columns (and collations), no index."""

_STORED = {
    "deployments": ("service", "environment", "listed_at", "change_ids", "status"),
    "changes": ("service",),
    "incidents": ("service",),
}
"""What each table's upsert returns of the version a written row replaced (after its source and id)."""


@dataclass
class Written:
    """What an upsert wrote and replaced: the derivation's input.

    ``old`` and ``current`` are the replaced and the written versions of the deployments;
    ``changes`` the (service, id) of the written changes, before (if stored) and after;
    ``incidents`` the (source, id) of the written incidents.
    """

    old: list[Version] = field(default_factory=list)
    current: list[Version] = field(default_factory=list)
    changes: set[tuple[str, str]] = field(default_factory=set)
    incidents: list[tuple[str, str]] = field(default_factory=list)


def _upsert_returning(table: str) -> str:
    """Upsert the batch rows of ``table``; per row written: source, id, the replaced version (``_STORED``, or NULLs)."""
    names = ", ".join(name for name, _ in COLUMNS[table])
    conflict = conflict_sql(POSTGRES, table)  # the monotonic rule, as upsert_sql has it
    stored = ", ".join(f"d.{name}" for name in _STORED[table])
    # The whole statement reads the snapshot taken before it: the SELECT sees the versions the INSERT
    # replaced. ``xmax`` is 0 in a row version the INSERT inserted and not in one its conflict updated
    # (it carries the lock the conflict took), so only the keys that were stored are looked up.
    return f"""
WITH new AS (
    INSERT INTO {table} ({names}) SELECT {names} FROM pg_temp.batch_{table} {conflict}
    RETURNING source, id, xmax <> 0 AS replaced
)
SELECT new.source, new.id, d.* FROM new LEFT JOIN LATERAL (
    SELECT {stored} FROM {table} d WHERE new.replaced AND d.source = new.source AND d.id = new.id OFFSET 0
) d ON true
"""


_UPSERTS = {table: _upsert_returning(table) for table in COLUMNS}
_COPIES = {
    table: f"COPY pg_temp.batch_{table} ({', '.join(name for name, _ in columns)}) FROM STDIN (FORMAT BINARY)"
    for table, columns in COLUMNS.items()
}
_TYPES = {table: [POSTGRES.types[kind] for _, kind in columns] for table, columns in COLUMNS.items()}


async def _copy(conn: Connection, table: str, rows: Sequence[Sequence[Any]]) -> list[TupleRow]:
    """Copy ``rows`` into the batch table, upsert them; the rows of ``_upsert_returning``."""
    async with conn.cursor() as cursor:
        async with cursor.copy(_COPIES[table]) as copy:
            copy.set_types(_TYPES[table])
            for row in rows:
                await copy.write_row(row)
        await cursor.execute(_UPSERTS[table])
        return await cursor.fetchall()


def _positions(table: str, names: Sequence[str]) -> list[int]:
    columns = [name for name, _ in COLUMNS[table]]
    return [columns.index(name) for name in names]


_VERSION = _positions("deployments", ("service", "environment", "listed_at", "change_ids", "id", "source", "status"))
_SERVICE = _positions("changes", ("service",))[0]
assert KEY == ("source", "id")  # the statements above match rows by these two columns


async def upsert(conn: Connection, batch: Rows) -> Written:
    """Write ``batch`` (in the caller's transaction); return what it wrote and replaced."""
    written = Written()
    for table, rows in batch.tables():
        returned = await _copy(conn, table, rows)
        if table == "deployments":
            for source, id_, service, environment, listed_at, change_ids, status in returned:
                row = batch.deployments[(source, id_)]
                written.current.append(cast(Version, tuple(row[index] for index in _VERSION)))
                if service is not None:
                    written.old.append((service, environment, listed_at, change_ids, id_, source, status))
        elif table == "changes":
            for source, id_, service in returned:
                written.changes.add((batch.changes[(source, id_)][_SERVICE], id_))
                if service is not None:
                    written.changes.add((service, id_))
        else:
            written.incidents = sorted((source, id_) for source, id_, _ in returned)
    return written
