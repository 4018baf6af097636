"""The DORA query side of ``sqlite:///``: facts from the derived tables.

The questions are the core's SQL kit's (``metrichub_core.storage.sql.facts.window_facts``),
shared with the PostgreSQL plugin; SQLite answers them one by one on the reader's
connection. A label filter cannot use the rollups: the reference rules count the events the
request's windows depend on (``metrichub_core.storage.sql.bounded``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from metrichub_core.dora import DoraFacts, FactsRequest
from metrichub_core.dora.reference import facts_of
from metrichub_core.storage.sql.bounded import window_events
from metrichub_core.storage.sql.dialect import SQLITE
from metrichub_core.storage.sql.facts import run, window_facts
from metrichub_core.storage.sqlite._dora_derive import refresh

__all__ = ["SQLiteDoraData"]

T = TypeVar("T")


class SQLiteDoraData:
    """Mixed into ``SQLiteStorage``."""

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def refresh_dora(self) -> int:
        """Derive the DORA tables for the events ingested since the last query; return how many."""
        return await self.write(refresh)

    async def dora_facts(self, request: FactsRequest) -> list[DoraFacts]:
        answer = _labelled_facts if request.scope.labels else _facts

        def facts(conn: sqlite3.Connection, unless_pending: bool = True) -> list[DoraFacts] | None:
            with snapshot(conn):
                # Only hop to the writer when something is queued: reports stay one round trip.
                if unless_pending and conn.execute("SELECT EXISTS (SELECT 1 FROM dora_pending)").fetchone()[0]:
                    return None
                return answer(conn, request)

        found = await self.read(facts)
        if found is None:
            await self.refresh_dora()
            found = await self.read(lambda conn: facts(conn, unless_pending=False))
        assert found is not None
        return found


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """Read one consistent state of the database in the block (a read transaction)."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:  # (a stopped statement may have ended it)
            conn.execute("ROLLBACK")


def _execute(conn: sqlite3.Connection) -> Callable[[str, tuple[Any, ...]], list[Any]]:
    return lambda sql, params: conn.execute(sql, params).fetchall()


def _labelled_facts(conn: sqlite3.Connection, request: FactsRequest) -> list[DoraFacts]:
    """The facts of a request with labels: the reference rules over the events its windows depend on."""
    events = run(window_events(SQLITE, request), _execute(conn))
    return facts_of(events, request.windows, request.options)


_SECONDS = f"coalesce({SQLITE.seconds('lead_us')}, 0)"


def _facts(conn: sqlite3.Connection, request: FactsRequest) -> list[DoraFacts]:
    """The facts of every window of a request without labels (``window_facts``)."""

    execute = _execute(conn)
    return [run(window_facts(SQLITE, request, window), execute) for window in request.windows]
