"""``sqlite:///path.db``: the embedded default backend.

The database runs in WAL mode so readers never wait for the writer. Every call runs
on one of two dedicated threads (one writer connection, one reader connection), so
the event loop never blocks on disk. A read stops at the request's deadline
(``metrichub_core.deadline``) or when its caller is cancelled, so it never keeps the
reader thread from the next one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import queue
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tenacity import retry, retry_if_exception, stop_after_delay, wait_random

from metrichub_core.deadline import DeadlineExceeded, Stop
from metrichub_core.models import Event, EventKind
from metrichub_core.storage.base import DeliveryRetention, EventQuery, Page, StorageError, StorageHealth
from metrichub_core.storage.lockfiles import LockFiles
from metrichub_core.storage.sql import deliveries
from metrichub_core.storage.sql.dialect import SQLITE
from metrichub_core.storage.sql.events import LISTED_AT, SELECTED, TABLES, Rows, event_of, upsert_sql
from metrichub_core.storage.sql.paging import listing_sql, page_of
from metrichub_core.storage.sql.state import get_state_sql, set_state, state_of
from metrichub_core.storage.sqlite._dora import SQLiteDoraData
from metrichub_core.storage.sqlite._dora_derive import DoraWrite, functions, prepare
from metrichub_core.storage.sqlite._schema import migrate, transaction

__all__ = ["SQLiteStorage", "path_from_url"]

T = TypeVar("T")
PROGRESS_STEPS = 10_000
"""SQLite virtual-machine steps between two looks of a read at its deadline."""

PART_EVENTS = 1_000
"""Events per part of a batch handed to the writer thread (see ``upsert``)."""
_END = Rows([], SQLITE)
"""Sent after a batch's last part."""
WRITER_CACHE_KIB = 131_072
"""The writer connection's page cache (128 MiB, allocated as used)."""
CHECKPOINT_PAGES = 65_536
"""WAL pages (of 4 KiB: 256 MiB) after which a commit checkpoints the WAL into the database itself:
a backstop, as a thread of its own checkpoints after every batch (see ``_checkpoint_behind``)."""


def path_from_url(url: str) -> Path:
    """``sqlite:///rel.db`` → ``rel.db``; ``sqlite:////abs/x.db`` → ``/abs/x.db``."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or not parts.path.startswith("/") or parts.path == "/":
        raise StorageError(f"invalid SQLite URL {url!r}: expected sqlite:///relative.db or sqlite:////absolute.db")
    return Path(parts.path[1:])


class SQLiteStorage(SQLiteDoraData):
    """Events and state in one SQLite file.

    Beyond the ``Storage`` protocol it provides ``SourceLocking`` (a lock file per source in
    ``<database>.locks/``), ``DataVersioned`` (``PRAGMA data_version``) and ``WebhookDeliveries``
    (a table), so that several processes on one host (API workers, ``metrichub collect``)
    collect a source one at a time, see each other's writes and each other's webhook deliveries.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = path_from_url(url)
        self.schema_version: int | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrichub-sqlite-writer")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrichub-sqlite-reader")
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrichub-sqlite-checkpointer")
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpointing: concurrent.futures.Future[None] | None = None
        self._locks = LockFiles(self.path.with_name(self.path.name + ".locks"))
        self.reads_stopped = 0
        """Reads stopped by their deadline or their caller's cancellation (see ``read``)."""

    async def open(self) -> None:
        def connect_writer() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path)
            _use_wal(conn)
            # A backfill writes all over the tables' indexes: with SQLite's 2 MiB default cache each
            # batch re-read most of the pages it touched, more as the store grew; and checkpointing
            # every 1,000 pages copied the pages every batch rewrites (rollups, index roots) each time.
            conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
            self.schema_version = migrate(conn, database=f"SQLite database {self.path}")
            prepare(conn)  # DORA's SQL functions, and derived data for events stored before it existed
            self._write_conn = conn

        def connect_reader() -> None:
            self._read_conn = _connect(self.path)
            self._read_conn.execute("PRAGMA query_only=ON")
            functions(self._read_conn)

        def connect_checkpointer() -> None:
            self._checkpoint_conn = _connect(self.path)

        await self._on(self._writer, connect_writer)
        await self._on(self._reader, connect_reader)
        await self._on(self._checkpointer, connect_checkpointer)

    async def upsert(self, events: Sequence[Event]) -> int:
        """Write ``events`` and derive them in one transaction.

        The event loop turns the batch into rows part by part while the writer thread already
        writes the parts before (SQLite releases the GIL while it works): a backfill's Python
        work and SQLite's overlap on two cores instead of taking turns.
        """
        parts: queue.SimpleQueue[Rows | None] = queue.SimpleQueue()
        writing = self._submit(self._writer, lambda: _write(self._connection(self._write_conn), parts))
        try:
            for part in Rows.parts(events, SQLITE, PART_EVENTS):
                parts.put(part)
        except BaseException:
            parts.put(None)  # the writer rolls back: it never saw the end
            with contextlib.suppress(StorageError):
                await self._outcome(writing)
            raise
        parts.put(_END)
        await self._outcome(writing)
        self._checkpoint_behind()
        return len(events)

    def _checkpoint_behind(self) -> None:
        """Copy the WAL's committed pages into the database on a thread of its own, unless it is at it.

        A checkpoint run by the committing writer (SQLite's default) stalled a backfill for about
        a tenth of its time; on its own connection it runs beside the next batch (``PASSIVE``: it
        never blocks the writer or a reader).
        """
        if self._checkpointing is None or self._checkpointing.done():
            conn = self._checkpoint_conn
            if conn is not None:
                self._checkpointing = self._checkpointer.submit(_checkpoint, conn)

    async def get(self, kind: EventKind, source: str, id: str) -> Event | None:
        page = await self.list_events(EventQuery(kind=kind, source=source, id=id, limit=1))
        return page.items[0] if page.items else None

    async def list_events(self, query: EventQuery) -> Page:
        kind = query.kind
        sql, params = listing_sql(
            query,
            table=TABLES[kind],
            time_column=LISTED_AT[kind],
            columns=SELECTED[kind],
            mark=SQLITE.mark,
            labels=SQLITE.labels,
        )

        def run(conn: sqlite3.Connection) -> Page:
            # The events are built on the reader's thread too: a page of 1,000 is CPU work the event loop need not do.
            return page_of(
                conn.execute(sql, params).fetchall(),
                query.limit,
                lambda row: event_of(kind, row, SQLITE),
                lambda row: (row[-1], row[0], row[1]),  # the last column is the listing time (see SELECTED)
            )

        return await self.read(run)

    async def get_state(self, source_id: str) -> dict[str, Any] | None:
        return await self.read(lambda conn: state_of(conn.execute(get_state_sql(SQLITE), (source_id,)).fetchone()))

    async def set_state(self, source_id: str, state: Mapping[str, Any]) -> None:
        sql, params = set_state(SQLITE, source_id, state)

        def run(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.execute(sql, params)

        await self.write(run)

    def source_lock(self, source_id: str) -> AbstractAsyncContextManager[bool]:
        """Hold ``source_id``'s collection lock for the block if no other process holds it; yield whether held."""
        return self._locks.lock(source_id)

    async def source_lock_holder(self, source_id: str) -> str | None:
        return await self._locks.holder(source_id)

    async def claim_delivery(
        self, source_id: str, delivery: str, *, at: datetime, retention: DeliveryRetention
    ) -> bool:
        claim = deliveries.claim(SQLITE, source_id, delivery, at, retention)

        def run(conn: sqlite3.Connection) -> bool:
            with transaction(conn):
                conn.execute(*claim.expire)
                claimed = conn.execute(*claim.insert).rowcount == 1
                if claimed:
                    conn.execute(*claim.bound)
            return claimed

        return await self.write(run)

    async def release_delivery(self, source_id: str, delivery: str) -> None:
        sql, params = deliveries.release(SQLITE, source_id, delivery)

        def run(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.execute(sql, params)

        await self.write(run)

    async def data_version(self) -> int:
        # Asked on the writer's connection, whose data_version moves only when another
        # connection (another process) commits: this process's own writes are known already.
        return int(await self.write(lambda conn: conn.execute("PRAGMA data_version").fetchone()[0]))

    async def health(self) -> StorageHealth:
        try:
            await self.read(lambda conn: conn.execute("SELECT 1").fetchone())
        except Exception as exc:
            return StorageHealth(ok=False, backend="sqlite", schema_version=self.schema_version, detail=str(exc))
        return StorageHealth(ok=True, backend="sqlite", schema_version=self.schema_version, detail=str(self.path))

    async def close(self) -> None:
        executors = (
            (self._writer, "_write_conn"),
            (self._reader, "_read_conn"),
            (self._checkpointer, "_checkpoint_conn"),
        )
        for executor, attribute in executors:
            conn = getattr(self, attribute)
            if conn is not None:
                await self._on(executor, conn.close)
                setattr(self, attribute, None)
            executor.shutdown(wait=True)

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the writer connection's thread; it manages its own transaction."""
        return await self._on(self._writer, lambda: work(self._connection(self._write_conn)))

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the read-only connection's thread (sees committed data only).

        It runs in the caller's context (so it sees the deadline), and stops at the deadline
        or when the caller is cancelled: the connection's progress handler aborts the running
        statement. Raises ``DeadlineExceeded`` then; ``reads_stopped`` counts them.
        """
        stop, context = Stop(), contextvars.copy_context()

        def job() -> T:
            conn = self._connection(self._read_conn)
            conn.set_progress_handler(stop.due, PROGRESS_STEPS)
            try:
                return context.run(work, conn)
            except (sqlite3.OperationalError, DeadlineExceeded):
                if not stop.due():
                    raise
                self.reads_stopped += 1
                raise DeadlineExceeded("the request's deadline passed; its SQLite read was stopped") from None
            finally:
                conn.set_progress_handler(None, 0)
                if conn.in_transaction:  # a stopped read's snapshot: the next read starts afresh
                    conn.execute("ROLLBACK")

        try:
            return await self._on(self._reader, job)
        except asyncio.CancelledError:
            stop.stop()  # the thread may still be running it
            raise

    def _connection(self, conn: sqlite3.Connection | None) -> sqlite3.Connection:
        if conn is None:
            raise StorageError(f"SQLite storage {self.path} is not open")
        return conn

    async def _on(self, executor: ThreadPoolExecutor, work: Callable[[], T]) -> T:
        return await self._outcome(self._submit(executor, work))

    def _submit(self, executor: ThreadPoolExecutor, work: Callable[[], T]) -> asyncio.Future[T]:
        """Start ``work`` on ``executor``'s thread now."""
        try:
            return asyncio.get_running_loop().run_in_executor(executor, work)
        except RuntimeError as exc:  # executor shut down
            raise StorageError(f"SQLite storage {self.path} is closed") from exc

    async def _outcome(self, running: asyncio.Future[T]) -> T:
        try:
            return await running
        except (sqlite3.Error, UnicodeError, OverflowError) as exc:
            raise StorageError(f"SQLite storage {self.path}: {type(exc).__name__}: {exc}") from exc


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    # FULL makes each committed batch durable before upsert() returns.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _checkpoint(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):  # a checkpoint skipped is done by the next one (or the backstop)
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "database is locked" in str(exc)


@retry(retry=retry_if_exception(_is_locked), stop=stop_after_delay(30), wait=wait_random(0.005, 0.05), reraise=True)
def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL mode; processes opening a new database at once retry, as SQLite answers
    "database is locked" to a concurrent journal-mode switch without waiting for the busy timeout."""
    conn.execute("PRAGMA journal_mode=WAL")


def _write(conn: sqlite3.Connection, parts: queue.SimpleQueue[Rows | None]) -> None:
    """Write a batch's rows as its parts arrive, then derive what they change in the DORA tables, in
    one transaction that commits only once the end (``_END``) has arrived.

    Every commit leaves the derived tables up to date, so a report never waits for a writer
    (during a backfill it reads the last committed batch) and nothing is left to derive after it.
    """
    with transaction(conn):
        dora = DoraWrite(conn)
        while (part := parts.get()) is not _END:
            if part is None:
                raise StorageError("the batch could not be turned into rows; nothing of it was written")
            dora.queue(part)  # before the part is written: the stored versions it replaces
            for table, values in part.tables():
                conn.executemany(upsert_sql(SQLITE, table), values)
        dora.derive()
