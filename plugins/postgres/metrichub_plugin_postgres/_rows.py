"""Events to column arrays and rows back to events, mirroring the SQLite backend's encoding."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from metrichub_core.dora.reference import is_rework_labelled
from metrichub_core.models import Change, Deployment, Event, EventKind, Incident
from metrichub_core.storage._paging import optional_micros, optional_moment, to_micros

__all__ = ["COLUMNS", "LISTED_AT", "ROW_TO_EVENT", "SELECTED", "TABLES", "Batch", "upsert_sql"]

TABLES: dict[EventKind, str] = {"deployment": "deployments", "change": "changes", "incident": "incidents"}
LISTED_AT: dict[EventKind, str] = {"deployment": "listed_at", "change": "committed_at", "incident": "started_at"}

# (column, PostgreSQL type); a batch travels as one JSON array of row objects (see ``upsert_sql``).
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "deployments": (
        ("source", "text"), ("id", "text"), ("service", "text"), ("environment", "text"), ("status", "text"),
        ("started_at", "int8"), ("finished_at", "int8"), ("listed_at", "int8"), ("commit_sha", "text"),
        ("change_ids", "jsonb"), ("url", "text"), ("labels", "jsonb"), ("rework", "bool"),
    ),
    "changes": (
        ("source", "text"), ("id", "text"), ("service", "text"), ("committed_at", "int8"), ("merged_at", "int8"),
        ("url", "text"),
    ),
    "incidents": (
        ("source", "text"), ("id", "text"), ("service", "text"), ("environment", "text"), ("started_at", "int8"),
        ("resolved_at", "int8"), ("severity", "text"), ("caused_by", "text"), ("deployment_related", "bool"),
        ("title", "text"), ("url", "text"),
    ),
}  # fmt: skip


def upsert_sql(table: str) -> str:
    """One statement upserting a whole table's share of a batch.

    The rows travel as one JSON array of objects, encoded by Python's C JSON encoder and
    decoded by the server's ``json_to_recordset``: far cheaper than adapting one array
    per column value by value, and nested JSONB values (``change_ids``, ``labels``) need
    no second encoding.
    """
    columns = COLUMNS[table]
    names = ", ".join(name for name, _ in columns)
    types = ", ".join(f"{name} {kind}" for name, kind in columns)
    updates = ", ".join(f"{name} = excluded.{name}" for name, _ in columns if name not in ("source", "id"))
    return (
        f"INSERT INTO {table} ({names}) SELECT {names} FROM json_to_recordset(%s::json) AS batch ({types}) "
        f"ON CONFLICT (source, id) DO UPDATE SET {updates}"
    )


class Batch:
    """A batch turned into per-table rows before any write begins.

    Within a batch the last event of a key wins (as with SQLite's row-by-row upsert),
    and rows are sorted by key, so concurrent writers of overlapping batches lock rows
    in the same order and cannot deadlock each other.
    """

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[str, str], tuple[Any, ...]]] = {table: {} for table in COLUMNS}
        self.deployments: dict[tuple[str, str], Deployment] = {}
        self.changes: dict[tuple[str, str], Change] = {}
        self.incidents: dict[tuple[str, str], Incident] = {}

    @classmethod
    def of(cls, events: Sequence[Event]) -> Batch:
        batch = cls()
        deployments, changes, incidents = (batch.tables[table] for table in ("deployments", "changes", "incidents"))
        for event in events:
            if isinstance(event, Deployment):
                batch.deployments[(event.source, event.id)] = event
                deployments[(event.source, event.id)] = (
                    event.source, event.id, event.service, event.environment, event.status,
                    to_micros(event.started_at), optional_micros(event.finished_at),
                    to_micros(event.finished_at or event.started_at), event.commit_sha,
                    event.change_ids, event.url, event.labels, is_rework_labelled(event),
                )  # fmt: skip
            elif isinstance(event, Change):
                batch.changes[(event.source, event.id)] = event
                changes[(event.source, event.id)] = (
                    event.source, event.id, event.service, to_micros(event.committed_at),
                    optional_micros(event.merged_at), event.url,
                )  # fmt: skip
            elif isinstance(event, Incident):
                batch.incidents[(event.source, event.id)] = event
                incidents[(event.source, event.id)] = (
                    event.source, event.id, event.service, event.environment, to_micros(event.started_at),
                    optional_micros(event.resolved_at), event.severity, event.caused_by, event.deployment_related,
                    event.title, event.url,
                )  # fmt: skip
            else:
                raise TypeError(f"not an event: {type(event).__name__}")
        return batch

    def statements(self) -> list[tuple[str, tuple[str]]]:
        """``(sql, (rows as JSON,))`` per non-empty table, in a fixed table order."""
        statements = []
        for table, rows in self.tables.items():
            if rows:
                names = [name for name, _ in COLUMNS[table]]
                encoded = json.dumps([dict(zip(names, rows[key], strict=True)) for key in sorted(rows)])
                statements.append((upsert_sql(table), (encoded,)))
        return statements


SELECTED: dict[EventKind, str] = {
    "deployment": "source, id, service, environment, status, started_at, finished_at, commit_sha, change_ids, url, "
    "labels, listed_at",
    "change": "source, id, service, committed_at, merged_at, url, committed_at",
    "incident": "source, id, service, environment, started_at, resolved_at, severity, caused_by, deployment_related, "
    "title, url, started_at",
}
"""The columns each kind is read with; the last one is always the listing time (for cursors)."""


def _deployment(row: Sequence[Any]) -> Deployment:
    return Deployment(
        source=row[0], id=row[1], service=row[2], environment=row[3], status=row[4], started_at=optional_moment(row[5]),
        finished_at=optional_moment(row[6]), commit_sha=row[7], change_ids=row[8], url=row[9], labels=row[10],
    )  # fmt: skip


def _change(row: Sequence[Any]) -> Change:
    return Change(
        source=row[0],
        id=row[1],
        service=row[2],
        committed_at=optional_moment(row[3]),
        merged_at=optional_moment(row[4]),
        url=row[5],
    )


def _incident(row: Sequence[Any]) -> Incident:
    return Incident(
        source=row[0], id=row[1], service=row[2], environment=row[3], started_at=optional_moment(row[4]),
        resolved_at=optional_moment(row[5]), severity=row[6], caused_by=row[7], deployment_related=row[8], title=row[9],
        url=row[10],
    )  # fmt: skip


ROW_TO_EVENT: dict[EventKind, Callable[[Sequence[Any]], Event]] = {
    "deployment": _deployment,
    "change": _change,
    "incident": _incident,
}
