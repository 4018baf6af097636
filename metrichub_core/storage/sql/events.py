"""The event tables: their columns, events to rows, and rows back to events.

Both SQL backends store events the same way: times as integer microseconds since the
Unix epoch (UTC), ``change_ids`` and ``labels`` as JSON, and ``rework`` (whether a
deployment is labelled rework, by ``metrichub_core.dora.reference.is_rework_labelled``)
computed when the deployment is written. A ``Dialect`` says how JSON travels.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from metrichub_core.dora.reference import is_rework_labelled
from metrichub_core.models import Change, Deployment, Event, EventKind, Incident
from metrichub_core.storage.sql.dialect import ColumnKind, Dialect
from metrichub_core.storage.sql.paging import optional_micros, optional_moment, to_micros
from metrichub_core.storage.versions import latest

__all__ = [
    "COLUMNS",
    "KEY",
    "LISTED_AT",
    "SELECTED",
    "TABLES",
    "VERSION",
    "Rows",
    "conflict_sql",
    "event_of",
    "json_records",
    "upsert_sql",
]

TABLES: dict[EventKind, str] = {"deployment": "deployments", "change": "changes", "incident": "incidents"}
LISTED_AT: dict[EventKind, str] = {"deployment": "listed_at", "change": "committed_at", "incident": "started_at"}
"""The column each kind is listed and filtered by (see ``EventQuery``)."""
KEY = ("source", "id")

COLUMNS: dict[str, tuple[tuple[str, ColumnKind], ...]] = {
    "deployments": (
        ("source", "text"), ("id", "text"), ("service", "text"), ("environment", "text"), ("status", "text"),
        ("started_at", "int8"), ("finished_at", "int8"), ("listed_at", "int8"), ("commit_sha", "text"),
        ("change_ids", "jsonb"), ("url", "text"), ("labels", "jsonb"), ("rework", "bool"), ("updated_at", "int8"),
    ),
    "changes": (
        ("source", "text"), ("id", "text"), ("service", "text"), ("committed_at", "int8"), ("merged_at", "int8"),
        ("url", "text"), ("updated_at", "int8"),
    ),
    "incidents": (
        ("source", "text"), ("id", "text"), ("service", "text"), ("environment", "text"), ("started_at", "int8"),
        ("resolved_at", "int8"), ("severity", "text"), ("caused_by", "text"), ("deployment_related", "bool"),
        ("title", "text"), ("url", "text"), ("updated_at", "int8"),
    ),
}  # fmt: skip
"""Each event table's columns in table order, with their kinds."""


VERSION = "updated_at"
"""The column that keeps upserts monotonic (``metrichub_core.storage.versions``)."""


def upsert_sql(dialect: Dialect, table: str) -> str:
    """The statement upserting a batch's rows of ``table`` (see ``Dialect.upsert``): never an older version."""
    return dialect.upsert(table, COLUMNS[table], KEY, batch=True, version=VERSION)


def conflict_sql(dialect: Dialect, table: str) -> str:
    """``upsert_sql``'s ``ON CONFLICT`` clause, for a backend that brings the rows in otherwise."""
    return dialect.on_conflict(table, COLUMNS[table], KEY, version=VERSION)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block.

    A batch's rows are tuples of scalars, with no cycle to find, but their allocations trigger
    collections that scan every object the process holds: a third of the time of building a
    backfill's rows. (Another thread building rows at the same time may find it paused, and then
    leaves it as it is: the collector is enabled again when the first block ends.)
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Rows:
    """A batch turned into per-table rows before any write begins.

    Within a batch a key holds what upserting its events one by one would store
    (``metrichub_core.storage.versions.latest``), and ``sorted`` gives the rows by key,
    so that concurrent writers of overlapping batches lock rows in the same order.
    """

    def __init__(self, events: Sequence[Event], dialect: Dialect) -> None:
        self.count = len(events)
        with _collector_paused():
            self._fill(latest(events), dialect)

    @classmethod
    def parts(cls, events: Sequence[Event], dialect: Dialect, size: int) -> Iterator[Rows]:
        """The batch's rows in parts of ``size`` events, for a writer that upserts them one after the
        other: a key given again in a later part is upserted again, which stores what upserting its
        events one by one would (the first part is ready before the whole batch is read)."""
        for start in range(0, len(events), size):
            yield cls(events[start : start + size], dialect)

    def _fill(self, events: list[Event], dialect: Dialect) -> None:
        encode = dialect.encode_json()
        self.deployments: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.changes: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.incidents: dict[tuple[str, str], tuple[Any, ...]] = {}
        for event in events:
            if isinstance(event, Deployment):
                self.deployments[(event.source, event.id)] = (
                    event.source, event.id, event.service, event.environment, event.status,
                    to_micros(event.started_at), optional_micros(event.finished_at),
                    to_micros(event.finished_at or event.started_at), event.commit_sha,
                    encode(event.change_ids), event.url, encode(event.labels), is_rework_labelled(event),
                    optional_micros(event.updated_at),
                )  # fmt: skip
            elif isinstance(event, Change):
                self.changes[(event.source, event.id)] = (
                    event.source, event.id, event.service, to_micros(event.committed_at),
                    optional_micros(event.merged_at), event.url, optional_micros(event.updated_at),
                )  # fmt: skip
            elif isinstance(event, Incident):
                self.incidents[(event.source, event.id)] = (
                    event.source, event.id, event.service, event.environment, to_micros(event.started_at),
                    optional_micros(event.resolved_at), event.severity, event.caused_by, event.deployment_related,
                    event.title, event.url, optional_micros(event.updated_at),
                )  # fmt: skip
            else:
                raise TypeError(f"not an event: {type(event).__name__}")

    def __len__(self) -> int:
        """How many events the batch held (a key given twice counts twice, as it was written twice)."""
        return self.count

    def tables(self) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """``(table, rows sorted by key)`` of every table the batch writes, in a fixed order."""
        found = (("deployments", self.deployments), ("changes", self.changes), ("incidents", self.incidents))
        return [(table, [rows[key] for key in sorted(rows)]) for table, rows in found if rows]

    def keys(self, table: str) -> list[tuple[str, str]]:
        """The ``(source, id)`` keys the batch writes to ``table``, sorted."""
        return sorted(getattr(self, table))


def json_records(table: str, rows: Sequence[Sequence[Any]]) -> str:
    """``rows`` of ``table`` as one JSON array of row objects: the parameter of a PostgreSQL batch upsert."""
    names = [name for name, _ in COLUMNS[table]]
    return json.dumps([dict(zip(names, row, strict=True)) for row in rows])


SELECTED: dict[EventKind, str] = {
    "deployment": "source, id, service, environment, status, started_at, finished_at, commit_sha, change_ids, url, "
    "labels, updated_at, listed_at",
    "change": "source, id, service, committed_at, merged_at, url, updated_at, committed_at",
    "incident": "source, id, service, environment, started_at, resolved_at, severity, caused_by, deployment_related, "
    "title, url, updated_at, started_at",
}
"""The columns each kind is read with (``event_of``); the last one is always the listing time (for cursors)."""


def event_of(kind: EventKind, row: Sequence[Any], dialect: Dialect) -> Event:
    """The event of a row of ``SELECTED[kind]`` columns."""
    decode = dialect.decode_json()
    if kind == "deployment":
        return Deployment(
            source=row[0], id=row[1], service=row[2], environment=row[3], status=row[4],
            started_at=optional_moment(row[5]), finished_at=optional_moment(row[6]), commit_sha=row[7],
            change_ids=decode(row[8]), url=row[9], labels=decode(row[10]), updated_at=optional_moment(row[11]),
        )  # fmt: skip
    if kind == "change":
        return Change(
            source=row[0], id=row[1], service=row[2], committed_at=optional_moment(row[3]),
            merged_at=optional_moment(row[4]), url=row[5], updated_at=optional_moment(row[6]),
        )  # fmt: skip
    return Incident(
        source=row[0], id=row[1], service=row[2], environment=row[3], started_at=optional_moment(row[4]),
        resolved_at=optional_moment(row[5]), severity=row[6], caused_by=row[7], deployment_related=bool(row[8]),
        title=row[9], url=row[10], updated_at=optional_moment(row[11]),
    )  # fmt: skip
