"""``postgresql://``: the backend for several API workers and collectors on one database.

Every call borrows a connection from a psycopg ``AsyncConnectionPool`` (autocommit,
checked before each use, so connections that a server restart or
``pg_terminate_backend`` killed are replaced instead of failing the next call). A batch
is one transaction: a lost connection rolls it back on the server and the call raises
``StorageError``; the next call gets a fresh connection. Writes derive the DORA
tables for their batch in their transaction, under one advisory lock (see ``_dora_write``);
reads never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, errors
from psycopg.rows import TupleRow
from psycopg.types.json import set_json_dumps
from psycopg_pool import AsyncConnectionPool

from metrichub_core.dora import DoraFacts, FactsRequest
from metrichub_core.models import Event, EventKind
from metrichub_core.storage.base import DeliveryRetention, EventQuery, Page, StorageError, StorageHealth
from metrichub_core.storage.sql import deliveries
from metrichub_core.storage.sql.dialect import POSTGRES, json_text
from metrichub_core.storage.sql.events import LISTED_AT, SELECTED, TABLES, Rows, event_of
from metrichub_core.storage.sql.paging import listing_sql, page_of
from metrichub_core.storage.sql.state import get_state_sql, set_state, state_of
from metrichub_plugin_postgres._batch import BATCH_TABLES
from metrichub_plugin_postgres._batch import upsert as upsert_batch
from metrichub_plugin_postgres._dora import dora_facts
from metrichub_plugin_postgres._dora_write import derive, refresh
from metrichub_plugin_postgres._pool import Connection, RecoveringPool
from metrichub_plugin_postgres._schema import DORA_LOCK, LOCK_NAMESPACE, SOURCE_LOCK_NAMESPACE, migrate
from metrichub_plugin_postgres._urls import parse_url

__all__ = ["PostgresStorage", "source_lock_key"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT = 3.0
"""Seconds ``health()`` waits for a connection and an answer before reporting the server down."""
RECONNECT_TIMEOUT = 120.0
"""Seconds the pool keeps retrying (every 0.5 to 2 s) to replace a lost connection; after that it
tries again when the next request asks for a connection."""
ANALYZE_MIN_ROWS = 20_000
"""Events this process writes before it first refreshes the planner's statistics (see ``_analyze``)."""
ANALYZED_TABLES = (
    "deployments", "changes", "incidents", "dora_pending", "dora_ships", "dora_leads", "dora_lead_days",
    "dora_lead_months", "dora_deploy_days", "dora_incident_links", "dora_incident_days", "dora_stage_days",
    "dora_stage_months",
)  # fmt: skip
CONFLICT_RETRIES = 5
"""Extra attempts of a batch that lost a deadlock or serialization conflict (it was rolled back whole)."""
_CONFLICTS = (errors.DeadlockDetected, errors.SerializationFailure)
_LOCK_AND_COUNT = (
    f"SELECT pg_advisory_xact_lock({LOCK_NAMESPACE}, {DORA_LOCK}); UPDATE data_version SET version = version + 1"
)
"""What each write begins with, in one round trip: the writers' lock, then the counter readers poll."""


def source_lock_key(source_id: str, *, schema: str | None = None) -> tuple[int, int]:
    """The advisory lock ``(classid, objid)`` that ``source_lock`` takes for ``source_id``.

    ``objid`` is a 32-bit hash of the source id (and of the URL's ``schema``, so that two
    MetricHubs in two schemas of one database do not share locks). Operators find it in
    ``pg_locks`` as ``locktype = 'advisory'``, ``classid``, ``objid``, ``objsubid = 2``.
    """
    name = source_id if schema is None else f"{schema}\0{source_id}"
    digest = hashlib.blake2b(name.encode(), digest_size=4).digest()
    return SOURCE_LOCK_NAMESPACE, int.from_bytes(digest, "big", signed=True)


class PostgresStorage:
    """Events and state in a PostgreSQL database, shared by any number of processes.

    Parameters:
        url: ``postgresql://user:password@host:5432/db`` (or ``postgres://``), any libpq
            URI; MetricHub's own query parameters ``pool_min_size`` (1),
            ``pool_max_size`` (10) and ``pool_timeout`` (10 seconds to wait for a
            connection) size the pool, and ``schema`` keeps the tables in that schema.
            ``self.url`` is the URL with its password masked.

    Beyond the ``Storage`` protocol: ``source_lock(source_id)`` and
    ``source_lock_holder(source_id)`` (a cluster-wide per-source collection lock: the
    core's optional ``SourceLocking``, which every collection holds), ``data_version()``
    (the core's optional ``DataVersioned``: a counter every write moves, which API workers
    poll to empty their report caches), ``claim_delivery``/``release_delivery`` (the core's
    optional ``WebhookDeliveries``, a table every worker shares) and ``run(work)`` (a pooled connection, driver
    errors translated to ``StorageError``).
    """

    backend = "postgresql"

    def __init__(self, url: str) -> None:
        self._url = parse_url(url)
        self.url = self._url.redacted
        self.schema_version: int | None = None
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._written = 0
        self._analyze_after = ANALYZE_MIN_ROWS
        self._analyzing: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"PostgresStorage({self.url!r})"

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = RecoveringPool(
            self._url.conninfo,
            min_size=self._url.pool_min_size,
            max_size=self._url.pool_max_size,
            timeout=self._url.pool_timeout,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,
            configure=_configure,
            name="metrichub",
            reconnect_timeout=RECONNECT_TIMEOUT,
            open=False,
        )
        try:
            async with await AsyncConnection.connect(self._url.conninfo, autocommit=True) as conn:
                self.schema_version = await migrate(
                    conn, schema=self._url.schema, database=f"PostgreSQL database {self.url}"
                )
            await pool.open(wait=self._url.pool_min_size > 0, timeout=self._url.pool_timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise self._error("cannot open", exc) from None
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def upsert(self, events: Sequence[Event]) -> int:
        batch = Rows(events, POSTGRES)

        async def write(conn: Connection) -> int:
            async with conn.transaction():
                # One writer at a time keeps the replaced versions, and so the derived DORA data, exact.
                await conn.execute(_LOCK_AND_COUNT)
                written = await upsert_batch(conn, batch)
                # Derived here, per batch: a report never waits for a backlog, nothing is left after a backfill.
                await derive(conn, written)
            return len(events)

        written = await self.run(write, retry_conflicts=True)
        self._written += written
        if self._written >= self._analyze_after and (self._analyzing is None or self._analyzing.done()):
            self._written = 0
            self._analyzing = asyncio.create_task(self._analyze(), name="metrichub-postgres-analyze")
        return written

    async def _analyze(self) -> None:
        """Refresh the planner's statistics of the tables writes grow (in the background).

        The write path probes indexes by key; with statistics from a table a fraction of its
        size (or none, right after a bulk start), PostgreSQL can pick the wrong index and
        make each batch cost as much as the table. Autovacuum catches up within minutes;
        this runs whenever this process has written as many events as the tables held at its
        last run (at least ``ANALYZE_MIN_ROWS``): each time they may have doubled.
        """
        try:
            async with self._require_pool().connection() as conn, conn.transaction():
                await conn.execute("SET LOCAL lock_timeout = '2s'")
                await conn.execute(f"ANALYZE {', '.join(ANALYZED_TABLES)}")
                row = await (
                    await conn.execute(
                        "SELECT coalesce(sum(greatest(reltuples, 0)), 0)::int8 FROM pg_class "
                        "WHERE oid IN (to_regclass('deployments'), to_regclass('changes'), to_regclass('incidents'))"
                    )
                ).fetchone()
            self._analyze_after = max(ANALYZE_MIN_ROWS, int(row[0] if row else 0))
        except (psycopg.Error, StorageError) as exc:  # statistics are an optimisation: never fail for them
            logger.info("%s: ANALYZE skipped: %s", self.url, self._url.scrub(str(exc)))

    async def get(self, kind: EventKind, source: str, id: str) -> Event | None:
        sql = f"SELECT {SELECTED[kind]} FROM {TABLES[kind]} WHERE source = %s AND id = %s"

        async def read(conn: Connection) -> TupleRow | None:
            return await (await conn.execute(sql, (source, id))).fetchone()

        row = await self.run(read)
        return event_of(kind, row, POSTGRES) if row is not None else None

    async def list_events(self, query: EventQuery) -> Page:
        table, time_column, columns = TABLES[query.kind], LISTED_AT[query.kind], SELECTED[query.kind]
        sql, params = listing_sql(
            query, table=table, time_column=time_column, columns=columns, mark=POSTGRES.mark, labels=POSTGRES.labels
        )

        async def read(conn: Connection) -> list[TupleRow]:
            return await (await conn.execute(sql, params)).fetchall()

        # The last column is the listing time (see SELECTED).
        return page_of(
            await self.run(read),
            query.limit,
            lambda row: event_of(query.kind, row, POSTGRES),
            lambda row: (row[-1], row[0], row[1]),
        )

    async def get_state(self, source_id: str) -> dict[str, Any] | None:
        async def read(conn: Connection) -> TupleRow | None:
            return await (await conn.execute(get_state_sql(POSTGRES), (source_id,))).fetchone()

        return state_of(await self.run(read))

    async def set_state(self, source_id: str, state: Mapping[str, Any]) -> None:
        sql, params = set_state(POSTGRES, source_id, state)

        async def write(conn: Connection) -> None:
            await conn.execute(sql, params)

        await self.run(write)

    async def dora_facts(self, request: FactsRequest) -> list[DoraFacts]:
        return await self.run(lambda conn: dora_facts(conn, request), retry_conflicts=True)

    async def refresh_dora(self) -> int:
        """Derive the DORA tables for the events ingested since the last query; return how many keys."""

        async def work(conn: Connection) -> int:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, DORA_LOCK))
                return await refresh(conn)

        return await self.run(work, retry_conflicts=True)

    async def health(self) -> StorageHealth:
        pool = self._pool
        if pool is None:
            return self._health(False, "not open")
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                async with pool.connection(timeout=HEALTH_TIMEOUT) as conn:
                    await conn.execute("SELECT 1")
        except (psycopg.Error, TimeoutError) as exc:
            return self._health(False, f"unreachable: {await self._diagnose(exc)}")
        stats = pool.get_stats()
        return self._health(True, f"pool {stats.get('pool_size', 0)}/{pool.max_size} connections")

    async def close(self) -> None:
        analyzing, self._analyzing = self._analyzing, None
        if analyzing is not None and not analyzing.done():
            analyzing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await analyzing
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def source_lock(self, source_id: str) -> AsyncIterator[bool]:
        """Hold the cluster-wide collection lock of ``source_id`` for the block, if it is free.

        Yields ``True`` when this process got the lock, ``False`` when another process
        (or another task of this one) holds it; it never waits. Use it around a
        scheduled collection so that one source is collected by one process at a time::

            async with storage.source_lock("acme-gh") as acquired:
                if acquired:
                    await collect("acme-gh")

        The lock is a PostgreSQL session advisory lock held on a pooled connection for
        the whole block and released at its end, or by the server if the process or its
        connection dies. Raises ``StorageError`` when the database cannot be reached.
        """
        pool = self._require_pool()
        classid, objid = source_lock_key(source_id, schema=self._url.schema)
        try:
            conn = await pool.getconn()
        except psycopg.Error as exc:
            raise self._error(f"cannot lock source {source_id!r}", exc) from None
        try:
            row = await (await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (classid, objid))).fetchone()
        except BaseException as exc:
            await pool.putconn(conn)
            if isinstance(exc, psycopg.Error):
                raise self._error(f"cannot lock source {source_id!r}", exc) from None
            raise
        if not (row and row[0]):
            await pool.putconn(conn)
            yield False
            return
        try:
            yield True
        finally:
            await self._unlock(pool, conn, classid, objid)

    async def source_lock_holder(self, source_id: str) -> str | None:
        """The server session holding ``source_id``'s collection lock: its pid, client and application."""
        classid, objid = source_lock_key(source_id, schema=self._url.schema)

        async def ask(conn: Connection) -> Any:
            cursor = await conn.execute(
                "SELECT a.pid, a.client_addr, a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.classid = %s::int4::oid AND l.objid = %s::int4::oid AND l.objsubid = 2",
                (classid, objid),
            )
            return await cursor.fetchone()

        row = await self.run(ask)
        if row is None:
            return None
        pid, client, application = row
        where = f" from {client}" if client else ""
        return f"PostgreSQL session {pid}{where}" + (f" ({application})" if application else "")

    async def claim_delivery(
        self, source_id: str, delivery: str, *, at: datetime, retention: DeliveryRetention
    ) -> bool:
        claim = deliveries.claim(POSTGRES, source_id, delivery, at, retention)

        async def work(conn: Connection) -> bool:
            async with conn.transaction():
                await conn.execute(*claim.expire)
                # ON CONFLICT DO NOTHING waits for a concurrent claim of the id to commit (or roll back).
                claimed = (await conn.execute(*claim.insert)).rowcount == 1
                if claimed:
                    await conn.execute(*claim.bound)
            return claimed

        return await self.run(work, retry_conflicts=True)

    async def release_delivery(self, source_id: str, delivery: str) -> None:
        sql, params = deliveries.release(POSTGRES, source_id, delivery)

        async def work(conn: Connection) -> None:
            await conn.execute(sql, params)

        await self.run(work)

    async def data_version(self) -> int:
        """The counter every event write moves (migration 3): another process wrote when it changes."""

        async def ask(conn: Connection) -> int:
            row = await (await conn.execute("SELECT version FROM data_version")).fetchone()
            return int(row[0]) if row else 0

        return await self.run(ask)

    async def run(self, work: Callable[[Connection], Awaitable[T]], *, retry_conflicts: bool = False) -> T:
        """Run ``work`` on a pooled connection, translating driver errors to ``StorageError``.

        With ``retry_conflicts``, ``work`` (which must be one transaction) is tried
        again when PostgreSQL aborted it to break a deadlock or a serialization conflict.
        """
        pool = self._require_pool()
        attempts = 1 + (CONFLICT_RETRIES if retry_conflicts else 0)
        for attempt in range(1, attempts + 1):
            try:
                async with pool.connection() as conn:
                    return await work(conn)
            except _CONFLICTS as exc:
                if attempt == attempts:
                    raise self._error("gave up after repeated conflicts", exc) from None
                await asyncio.sleep(0.01 * attempt)
            except (psycopg.Error, UnicodeError, OverflowError) as exc:
                # UnicodeError/OverflowError: a value the driver cannot encode, found before commit.
                raise self._error("failed", exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _require_pool(self) -> AsyncConnectionPool[Connection]:
        if self._pool is None:
            raise StorageError(f"PostgreSQL storage {self.url} is not open")
        return self._pool

    def _error(self, what: str, exc: BaseException) -> StorageError:
        message = self._url.scrub(f"{type(exc).__name__}: {str(exc).strip()}")
        return StorageError(f"PostgreSQL storage {self.url} {what}: {message}")

    def _health(self, ok: bool, detail: str) -> StorageHealth:
        return StorageHealth(
            ok=ok, backend=self.backend, schema_version=self.schema_version, detail=f"{self.url}: {detail}"
        )

    async def _diagnose(self, exc: BaseException) -> str:
        """Why the pool has no connection: a direct connection attempt names the cause."""
        reason = str(exc).strip() or "timed out"
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                conn = await AsyncConnection.connect(self._url.conninfo, autocommit=True, connect_timeout=2)
                await conn.close()
        except (psycopg.Error, TimeoutError) as direct:
            reason = str(direct).strip() or reason
        return self._url.scrub(reason)

    async def _unlock(self, pool: AsyncConnectionPool[Connection], conn: Connection, classid: int, objid: int) -> None:
        try:
            await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (classid, objid))
        except psycopg.Error as exc:
            # The connection died during the block, and the server released the lock with it.
            logger.warning("%s: the connection holding a source lock was lost: %s", self.url, self._url.scrub(str(exc)))
            await conn.close()
        except BaseException:
            # Cancelled mid-unlock: a connection that may still hold the lock must not go
            # back to the pool; closing it makes the server release the lock.
            await conn.close()
            raise
        finally:
            await pool.putconn(conn)


async def _configure(conn: Connection) -> None:
    """Session settings of every pooled connection, and its temporary tables for batches (``_batch``).

    JIT compilation is off: MetricHub's statements are short index probes whose cost
    estimates (arrays of unknown length) can pass ``jit_above_cost``, and compiling them
    takes far longer (hundreds of milliseconds) than running them.
    """
    await conn.execute("SET jit = off")
    await conn.execute(BATCH_TABLES)
    set_json_dumps(json_text, conn)  # the same text as json.dumps, twice as fast for the events' lists and labels
