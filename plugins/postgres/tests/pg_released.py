"""Events written as the releases before migration 7 did: without ``updated_at`` (for migration tests)."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from metrichub_core.models import Event
from metrichub_core.storage.sql.dialect import POSTGRES
from metrichub_core.storage.sql.events import COLUMNS, KEY, VERSION, Rows, json_records


async def write_as_released(conn: AsyncConnection[TupleRow], events: Sequence[Event]) -> None:
    """Upsert ``events`` into tables that have no ``updated_at`` column yet (it was added by migration 7)."""
    for table, rows in Rows(events, POSTGRES).tables():
        released = [column for column in COLUMNS[table] if column[0] != VERSION]
        await conn.execute(POSTGRES.upsert(table, released, KEY, batch=True), (json_records(table, rows),))
