"""``sqlite:///path.db``: the embedded default backend.

The database runs in WAL mode so readers never wait for the writer. Every call runs
on one of two dedicated threads (one writer connection, one reader connection), so
the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from metrichub_core.models import Change, Deployment, Event, EventKind, Incident
from metrichub_core.storage._paging import (
    listing_sql,
    optional_micros,
    optional_moment,
    page_of,
    to_micros,
)
from metrichub_core.storage._sqlite_dora_derive import DoraWrite, prepare
from metrichub_core.storage._sqlite_schema import migrate, transaction
from metrichub_core.storage.base import EventQuery, Page, StorageError, StorageHealth
from metrichub_core.storage.lockfiles import LockFiles
from metrichub_core.storage.sqlite_dora import SQLiteDoraData

__all__ = ["SQLiteStorage", "path_from_url"]

T = TypeVar("T")

_TABLES: dict[EventKind, str] = {"deployment": "deployments", "change": "changes", "incident": "incidents"}
_LISTED_AT: dict[EventKind, str] = {"deployment": "listed_at", "change": "committed_at", "incident": "started_at"}


def path_from_url(url: str) -> Path:
    """``sqlite:///rel.db`` → ``rel.db``; ``sqlite:////abs/x.db`` → ``/abs/x.db``."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or not parts.path.startswith("/") or parts.path == "/":
        raise StorageError(f"invalid SQLite URL {url!r}: expected sqlite:///relative.db or sqlite:////absolute.db")
    return Path(parts.path[1:])


class SQLiteStorage(SQLiteDoraData):
    """Events and state in one SQLite file.

    Beyond the ``Storage`` protocol it provides ``SourceLocking`` (a lock file per source in
    ``<database>.locks/``) and ``DataVersioned`` (``PRAGMA data_version``), so that several
    processes on one host (API workers, ``metrichub collect``) collect a source one at a
    time and see each other's writes.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = path_from_url(url)
        self.schema_version: int | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrichub-sqlite-writer")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrichub-sqlite-reader")
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._locks = LockFiles(self.path.with_name(self.path.name + ".locks"))

    async def open(self) -> None:
        def connect_writer() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path)
            conn.execute("PRAGMA journal_mode=WAL")
            self.schema_version = migrate(conn)
            prepare(conn)  # DORA's SQL functions, and derived data for events stored before it existed
            self._write_conn = conn

        def connect_reader() -> None:
            self._read_conn = _connect(self.path)
            self._read_conn.execute("PRAGMA query_only=ON")

        await self._on(self._writer, connect_writer)
        await self._on(self._reader, connect_reader)

    async def upsert(self, events: Sequence[Event]) -> int:
        rows = _Rows.of(events)
        return await self.write(rows.write)

    async def get(self, kind: EventKind, source: str, id: str) -> Event | None:
        page = await self.list_events(EventQuery(kind=kind, source=source, id=id, limit=1))
        return page.items[0] if page.items else None

    async def list_events(self, query: EventQuery) -> Page:
        time_column = _LISTED_AT[query.kind]
        sql, params = listing_sql(
            query, table=_TABLES[query.kind], time_column=time_column, columns="*", mark="?", labels=_labels
        )

        def run(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(sql, params).fetchall()

        return page_of(
            await self.read(run),
            query.limit,
            _ROW_TO_EVENT[query.kind],
            lambda row: (row[time_column], row["source"], row["id"]),
        )

    async def get_state(self, source_id: str) -> dict[str, Any] | None:
        def run(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute("SELECT state FROM source_state WHERE source_id = ?", (source_id,)).fetchone()
            return json.loads(row[0]) if row else None

        return await self.read(run)

    async def set_state(self, source_id: str, state: Mapping[str, Any]) -> None:
        encoded = json.dumps(dict(state))

        def run(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.execute(
                    "INSERT INTO source_state VALUES (?, ?, ?) "
                    "ON CONFLICT (source_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                    (source_id, encoded, to_micros(datetime.now(UTC))),
                )

        await self.write(run)

    def source_lock(self, source_id: str) -> AbstractAsyncContextManager[bool]:
        """Hold ``source_id``'s collection lock for the block if no other process holds it; yield whether held."""
        return self._locks.lock(source_id)

    async def source_lock_holder(self, source_id: str) -> str | None:
        return await self._locks.holder(source_id)

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
        for executor, attribute in ((self._writer, "_write_conn"), (self._reader, "_read_conn")):
            conn = getattr(self, attribute)
            if conn is not None:
                await self._on(executor, conn.close)
                setattr(self, attribute, None)
            executor.shutdown(wait=True)

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the writer connection's thread; it manages its own transaction."""
        return await self._on(self._writer, lambda: work(self._connection(self._write_conn)))

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the read-only connection's thread (sees committed data only)."""
        return await self._on(self._reader, lambda: work(self._connection(self._read_conn)))

    def _connection(self, conn: sqlite3.Connection | None) -> sqlite3.Connection:
        if conn is None:
            raise StorageError(f"SQLite storage {self.path} is not open")
        return conn

    async def _on(self, executor: ThreadPoolExecutor, work: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, work)
        except (sqlite3.Error, UnicodeError, OverflowError) as exc:
            raise StorageError(f"SQLite storage {self.path}: {type(exc).__name__}: {exc}") from exc
        except RuntimeError as exc:  # executor shut down
            raise StorageError(f"SQLite storage {self.path} is closed") from exc


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    # FULL makes each committed batch durable before upsert() returns.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _labels(labels: Mapping[str, str]) -> tuple[list[str], list[Any]]:
    params: list[Any] = []
    for key, value in labels.items():
        params += [f'$."{key}"', value]
    return ["json_extract(labels, ?) = ?"] * len(labels), params


class _Rows:
    """A batch turned into per-table parameter rows, before any write begins."""

    def __init__(self) -> None:
        self.deployments: list[tuple[Any, ...]] = []
        self.changes: list[tuple[Any, ...]] = []
        self.incidents: list[tuple[Any, ...]] = []

    @classmethod
    def of(cls, events: Sequence[Event]) -> _Rows:
        rows = cls()
        for event in events:
            if isinstance(event, Deployment):
                rows.deployments.append((
                    event.source, event.id, event.service, event.environment, event.status,
                    to_micros(event.started_at), optional_micros(event.finished_at),
                    to_micros(event.finished_at or event.started_at), event.commit_sha,
                    json.dumps(event.change_ids), event.url, json.dumps(event.labels),
                ))  # fmt: skip
            elif isinstance(event, Change):
                rows.changes.append((
                    event.source, event.id, event.service, to_micros(event.committed_at),
                    optional_micros(event.merged_at), event.url,
                ))  # fmt: skip
            elif isinstance(event, Incident):
                rows.incidents.append((
                    event.source, event.id, event.service, event.environment, to_micros(event.started_at),
                    optional_micros(event.resolved_at), event.severity, event.caused_by, int(event.deployment_related),
                    event.title, event.url,
                ))  # fmt: skip
            else:
                raise TypeError(f"not an event: {type(event).__name__}")
        return rows

    def write(self, conn: sqlite3.Connection) -> int:
        dora = DoraWrite(self.deployments, self.changes, self.incidents)
        with transaction(conn):
            dora.before(conn)
            for table, rows in (
                ("deployments", self.deployments),
                ("changes", self.changes),
                ("incidents", self.incidents),
            ):
                if rows:
                    conn.executemany(_upsert_sql(table), rows)
            dora.after(conn)  # derived DORA data, in the same transaction
        return len(self.deployments) + len(self.changes) + len(self.incidents)


_COLUMNS: dict[str, tuple[str, ...]] = {
    "deployments": (
        "source", "id", "service", "environment", "status", "started_at", "finished_at", "listed_at",
        "commit_sha", "change_ids", "url", "labels",
    ),
    "changes": ("source", "id", "service", "committed_at", "merged_at", "url"),
    "incidents": (
        "source", "id", "service", "environment", "started_at", "resolved_at", "severity", "caused_by",
        "deployment_related", "title", "url",
    ),
}  # fmt: skip


def _upsert_sql(table: str) -> str:
    columns = _COLUMNS[table]
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column not in ("source", "id"))
    placeholders = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) ON CONFLICT (source, id) DO UPDATE SET {updates}"  # noqa: E501


def _deployment(row: sqlite3.Row) -> Deployment:
    return Deployment(
        id=row["id"], source=row["source"], service=row["service"], environment=row["environment"],
        status=row["status"], started_at=optional_moment(row["started_at"]),
        finished_at=optional_moment(row["finished_at"]), commit_sha=row["commit_sha"],
        change_ids=json.loads(row["change_ids"]), url=row["url"], labels=json.loads(row["labels"]),
    )  # fmt: skip


def _change(row: sqlite3.Row) -> Change:
    return Change(
        id=row["id"], source=row["source"], service=row["service"], committed_at=optional_moment(row["committed_at"]),
        merged_at=optional_moment(row["merged_at"]), url=row["url"],
    )  # fmt: skip


def _incident(row: sqlite3.Row) -> Incident:
    return Incident(
        id=row["id"], source=row["source"], service=row["service"], environment=row["environment"],
        started_at=optional_moment(row["started_at"]), resolved_at=optional_moment(row["resolved_at"]),
        severity=row["severity"], caused_by=row["caused_by"], deployment_related=bool(row["deployment_related"]),
        title=row["title"], url=row["url"],
    )  # fmt: skip


_ROW_TO_EVENT: dict[EventKind, Callable[[sqlite3.Row], Event]] = {
    "deployment": _deployment,
    "change": _change,
    "incident": _incident,
}
