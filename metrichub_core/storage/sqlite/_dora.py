"""The DORA query side of ``sqlite:///``: facts from the derived tables.

The questions are the core's SQL kit's (``metrichub_core.storage.sql.facts.window_facts``),
shared with the PostgreSQL plugin; SQLite answers them one by one on the reader's
connection. A label filter cannot use the rollups: it reads the scope's events and
applies the reference rules.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from metrichub_core.dora import DoraFacts, FactsRequest
from metrichub_core.dora.reference import facts_from_events
from metrichub_core.storage.sql.dialect import SQLITE
from metrichub_core.storage.sql.events import rule_events, scope_events_sql
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
        if request.scope.labels:
            await self.refresh_dora()
            return await self._facts_from_events(request)

        def facts(conn: sqlite3.Connection) -> list[DoraFacts] | None:
            # Only hop to the writer when something is queued: reports stay one round trip.
            if conn.execute("SELECT EXISTS (SELECT 1 FROM dora_pending)").fetchone()[0]:
                return None
            return _facts(conn, request)

        found = await self.read(facts)
        if found is None:
            await self.refresh_dora()
            found = await self.read(lambda conn: _facts(conn, request))
        return found

    async def _facts_from_events(self, request: FactsRequest) -> list[DoraFacts]:
        def load(conn: sqlite3.Connection) -> list[DoraFacts]:
            deployments, changes, incidents = (
                rule_events(kind, conn.execute(sql, params).fetchall(), SQLITE)
                for kind, sql, params in scope_events_sql(request.scope, SQLITE)
            )
            return facts_from_events(deployments, changes, incidents, request)

        return await self.read(load)


_SECONDS = f"coalesce({SQLITE.seconds('lead_us')}, 0)"


def _facts(conn: sqlite3.Connection, request: FactsRequest) -> list[DoraFacts]:
    """The facts of every window of a request without labels (``window_facts``)."""

    def execute(sql: str, params: tuple[Any, ...]) -> list[Any]:
        return conn.execute(sql, params).fetchall()

    return [run(window_facts(SQLITE, request, window), execute) for window in request.windows]
