"""The DORA query side of ``postgresql://``: facts from the derived tables.

The questions are the core's (``metrichub_core.storage.sql.facts.window_facts``), the same
as SQLite's: whole months and days from the rollups, the partial days at the edges from
rows. Here they travel in one pipeline per report (see ``_read``), and everything is read
from one consistent state (see ``dora_facts``), so a report never mixes two writes.

A label filter cannot use the rollups: PostgreSQL then narrows the rows to the scope
and sends only the columns the rules read, and ``metrichub_core.dora.reference``
computes the facts. Those rows become events without re-validation
(``model_construct``): they were validated on the way in, and the times are rebuilt
as UTC exactly as ``get`` returns them.
"""

from __future__ import annotations

from typing import Any, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from metrichub_core.dora import DoraFacts, FactsRequest, Window
from metrichub_core.dora.reference import facts_from_events
from metrichub_core.storage.sql.dialect import POSTGRES
from metrichub_core.storage.sql.events import rule_events, scope_events_sql
from metrichub_core.storage.sql.facts import Ask, window_facts
from metrichub_plugin_postgres._dora_write import refresh
from metrichub_plugin_postgres._schema import DORA_LOCK, LOCK_NAMESPACE

__all__ = ["dora_facts"]

Connection = AsyncConnection[TupleRow]
T = TypeVar("T")


async def dora_facts(conn: Connection, request: FactsRequest) -> list[DoraFacts]:
    """The facts of every window of ``request``, from one consistent state.

    A repeatable-read snapshot whose derivation queue is empty is consistent (events and
    their queue entries commit together, as do a refresh and its derived rows). Else the
    queue is applied and the facts read in one transaction holding ``DORA_LOCK``, which
    keeps writers out until it ends.
    """
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if request.scope.labels:
            return await _facts_from_events(conn, request)
        found = await _read(conn, request, unless_pending=True)
        if found is not None:
            return found
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, DORA_LOCK))
        await refresh(conn)
        found = await _read(conn, request, unless_pending=False)
        assert found is not None
        return found


_PENDING = ("SELECT EXISTS (SELECT 1 FROM dora_pending)", ())


async def _read(conn: Connection, request: FactsRequest, *, unless_pending: bool) -> list[DoraFacts] | None:
    """The facts of every window; ``None`` if ``unless_pending`` and the queue is not empty.

    A dry run of each window collects its queries (which depend only on the window), they
    go to the server in one pipeline with the queue check, and the real runs read their
    answers: one round trip for a report or a whole trend.
    """
    queries = [_Query(conn, request, window) for window in request.windows]
    planned = [await query.questions() for query in queries]
    statements = [_PENDING] if unless_pending else []
    statements += [statement for plan in planned for statement in plan]
    async with conn.pipeline():
        cursors = [await conn.execute(sql, params) for sql, params in statements]
    answers = [await cursor.fetchall() for cursor in cursors]
    if unless_pending:
        if answers.pop(0)[0][0]:
            return None
    facts = []
    for query, plan in zip(queries, planned, strict=True):
        query.answered(plan, answers[: len(plan)])
        del answers[: len(plan)]
        facts.append(await query.facts())
    return facts


class _Query:
    """The facts of one window, for a scope without labels: the kit's ``window_facts``, whose
    questions are sent in one pipeline (see ``_read``)."""

    def __init__(self, conn: Connection, request: FactsRequest, window: Window) -> None:
        self.conn, self.request, self.window = conn, request, window
        self._planning: list[tuple[str, tuple[Any, ...]]] | None = None
        self._fetched: dict[tuple[str, tuple[Any, ...]], list[TupleRow]] = {}

    async def rows(self, sql: str, params: tuple[Any, ...]) -> list[TupleRow]:
        """The rows of a query: from the pipelined batch (see ``facts``), else asked now."""
        found = self._fetched.pop((sql, params), None)
        if found is not None:
            return found
        if self._planning is not None:
            self._planning.append((sql, params))
            return []
        return await (await self.conn.execute(sql, params)).fetchall()

    async def questions(self) -> list[tuple[str, tuple[Any, ...]]]:
        """A dry run: the queries the window asks first (see ``_read``)."""
        self._planning = []
        await self._ask(window_facts(POSTGRES, self.request, self.window, planning=True))
        planned, self._planning = self._planning, None
        return planned

    def answered(self, planned: list[tuple[str, tuple[Any, ...]]], answers: list[list[TupleRow]]) -> None:
        self._fetched.update(zip(planned, answers, strict=True))

    async def facts(self) -> DoraFacts:
        """The facts, from the answers to the planned queries (and any query they lead to)."""
        return await self._ask(window_facts(POSTGRES, self.request, self.window))

    async def _ask(self, ask: Ask[T]) -> T:
        """Answer the questions of ``ask`` with ``rows``; return its result."""
        try:
            question = next(ask)
            while True:
                question = ask.send(await self.rows(*question))
        except StopIteration as stop:
            found: T = stop.value
            return found


async def _facts_from_events(conn: Connection, request: FactsRequest) -> list[DoraFacts]:
    # PostgreSQL narrows the rows to the scope and sends only the columns the rules read.
    deployments, changes, incidents = [
        rule_events(kind, await (await conn.execute(sql, params)).fetchall(), POSTGRES)
        for kind, sql, params in scope_events_sql(request.scope, POSTGRES)
    ]
    return facts_from_events(deployments, changes, incidents, request)
