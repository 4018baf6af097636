"""The DORA query side of ``postgresql://``: facts from the derived tables.

The questions are the core's (``metrichub_core.storage.sql.facts.window_facts``), the same
as SQLite's: whole months and days from the rollups, the partial days at the edges from
rows. Here they travel in one pipeline per report (see ``_read``), and everything is read
from one consistent state (see ``dora_facts``), so a report never mixes two writes.

A label filter cannot use the rollups: the reference rules (``reference.facts_of``, in a
worker thread so the event loop stays free) count the events the request's windows
depend on (``metrichub_core.storage.sql.bounded``).

A request's deadline (``metrichub_core.deadline``) becomes the transaction's
``statement_timeout``; a cancelled query is cancelled on the server too (psycopg does).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from psycopg import AsyncConnection, errors
from psycopg.rows import TupleRow

from metrichub_core.deadline import DeadlineExceeded, check, remaining
from metrichub_core.dora import DoraFacts, FactsRequest, Window
from metrichub_core.dora.reference import facts_of
from metrichub_core.storage.sql.bounded import window_events
from metrichub_core.storage.sql.dialect import POSTGRES
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
    keeps writers out until it ends. Raises ``DeadlineExceeded`` when the request's
    deadline passed or stopped a statement (a derivation it stopped is rolled back and
    runs again with the next report).
    """
    answer = _labelled if request.scope.labels else _read
    try:
        async with conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            await _bound_statements(conn)
            found = await answer(conn, request, unless_pending=True)
            if found is not None:
                return found
        async with conn.transaction():
            await _bound_statements(conn)  # waiting for the lock and deriving included
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, DORA_LOCK))
            await refresh(conn)
            found = await answer(conn, request, unless_pending=False)
            assert found is not None
            return found
    except errors.QueryCanceled:
        if remaining() == 0:
            raise DeadlineExceeded("the request's deadline passed; its query was cancelled") from None
        raise


async def _bound_statements(conn: Connection) -> None:
    """Let the rest of the transaction's statements run only until the request's deadline (if any)."""
    check()
    left = remaining()
    if left is not None:
        milliseconds = max(1, math.ceil(left * 1000))
        await conn.execute("SELECT set_config('statement_timeout', %s, true)", (str(milliseconds),))


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
        return await _answer(ask, self.rows)


async def _labelled(conn: Connection, request: FactsRequest, *, unless_pending: bool) -> list[DoraFacts] | None:
    """The facts of a request with labels (``None`` if ``unless_pending`` and the queue is not empty)."""
    if unless_pending and (await (await conn.execute(*_PENDING)).fetchall())[0][0]:
        return None

    async def rows(sql: str, params: tuple[Any, ...]) -> list[TupleRow]:
        return await (await conn.execute(sql, params)).fetchall()

    events = await _answer(window_events(POSTGRES, request), rows)
    # CPU-bound: off the event loop, in a thread (which sees the request's deadline: to_thread copies the context).
    return await asyncio.to_thread(facts_of, events, request.windows, request.options)


async def _answer(ask: Ask[T], rows: Callable[[str, tuple[Any, ...]], Awaitable[list[TupleRow]]]) -> T:
    """Answer the questions of ``ask`` with ``rows``; return its result."""
    try:
        question = next(ask)
        while True:
            question = ask.send(await rows(*question))
    except StopIteration as stop:
        found: T = stop.value
        return found
