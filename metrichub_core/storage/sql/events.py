"""The event tables: their columns, events to rows, and rows back to events.

Both SQL backends store events the same way: times as integer microseconds since the
Unix epoch (UTC), ``change_ids`` and ``labels`` as JSON, and ``rework`` (whether a
deployment is labelled rework, by ``metrichub_core.dora.reference.is_rework_labelled``)
computed when the deployment is written. A ``Dialect`` says how JSON travels.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from metrichub_core.dora import DoraScope
from metrichub_core.dora.reference import is_rework_labelled
from metrichub_core.models import Change, Deployment, Event, EventKind, Incident
from metrichub_core.storage.sql.dialect import ColumnKind, Dialect
from metrichub_core.storage.sql.paging import from_micros, optional_micros, optional_moment, to_micros
from metrichub_core.storage.sql.rollups import events_where

__all__ = [
    "COLUMNS",
    "KEY",
    "LISTED_AT",
    "RULE_COLUMNS",
    "SELECTED",
    "TABLES",
    "Rows",
    "event_of",
    "json_records",
    "rule_events",
    "scope_events_sql",
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
"""Each event table's columns in table order, with their kinds."""


def upsert_sql(dialect: Dialect, table: str) -> str:
    """The statement upserting a batch's rows of ``table`` (see ``Dialect.upsert``)."""
    return dialect.upsert(table, COLUMNS[table], KEY, batch=True)


class Rows:
    """A batch turned into per-table rows before any write begins.

    Within a batch the last event of a key wins (as a row-by-row upsert would have it),
    and ``sorted`` gives the rows by key, so that concurrent writers of overlapping
    batches lock rows in the same order.
    """

    def __init__(self, events: Sequence[Event], dialect: Dialect) -> None:
        encode = dialect.encode_json()
        self.count = len(events)
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
                )  # fmt: skip
            elif isinstance(event, Change):
                self.changes[(event.source, event.id)] = (
                    event.source, event.id, event.service, to_micros(event.committed_at),
                    optional_micros(event.merged_at), event.url,
                )  # fmt: skip
            elif isinstance(event, Incident):
                self.incidents[(event.source, event.id)] = (
                    event.source, event.id, event.service, event.environment, to_micros(event.started_at),
                    optional_micros(event.resolved_at), event.severity, event.caused_by, event.deployment_related,
                    event.title, event.url,
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
    "labels, listed_at",
    "change": "source, id, service, committed_at, merged_at, url, committed_at",
    "incident": "source, id, service, environment, started_at, resolved_at, severity, caused_by, deployment_related, "
    "title, url, started_at",
}
"""The columns each kind is read with (``event_of``); the last one is always the listing time (for cursors)."""


def event_of(kind: EventKind, row: Sequence[Any], dialect: Dialect) -> Event:
    """The event of a row of ``SELECTED[kind]`` columns."""
    decode = dialect.decode_json()
    if kind == "deployment":
        return Deployment(
            source=row[0], id=row[1], service=row[2], environment=row[3], status=row[4],
            started_at=optional_moment(row[5]), finished_at=optional_moment(row[6]), commit_sha=row[7],
            change_ids=decode(row[8]), url=row[9], labels=decode(row[10]),
        )  # fmt: skip
    if kind == "change":
        return Change(
            source=row[0], id=row[1], service=row[2], committed_at=optional_moment(row[3]),
            merged_at=optional_moment(row[4]), url=row[5],
        )  # fmt: skip
    return Incident(
        source=row[0], id=row[1], service=row[2], environment=row[3], started_at=optional_moment(row[4]),
        resolved_at=optional_moment(row[5]), severity=row[6], caused_by=row[7], deployment_related=bool(row[8]),
        title=row[9], url=row[10],
    )  # fmt: skip


RULE_COLUMNS: dict[EventKind, str] = {
    "deployment": "source, id, service, environment, status, started_at, finished_at, change_ids, labels",
    "change": "source, id, service, committed_at, merged_at",
    "incident": "source, id, service, environment, started_at, resolved_at, caused_by, deployment_related",
}
"""The columns the reference rules read (``rule_events``)."""


def rule_events(kind: EventKind, rows: Sequence[Sequence[Any]], dialect: Dialect) -> list[Any]:
    """Events of ``RULE_COLUMNS[kind]`` rows, for ``facts_from_events``.

    Built without re-validation (``model_construct``): they were validated on the way
    in, and the times are rebuilt as UTC exactly as ``event_of`` does.
    """
    decode = dialect.decode_json()
    build: Callable[..., Any]
    if kind == "deployment":
        build = Deployment.model_construct
        return [
            build(
                source=source, id=id_, service=service, environment=environment, status=status,
                started_at=from_micros(started_at), finished_at=optional_moment(finished_at),
                change_ids=decode(change_ids), labels=decode(labels), commit_sha=None, url=None,
            )
            for source, id_, service, environment, status, started_at, finished_at, change_ids, labels in rows
        ]  # fmt: skip
    if kind == "change":
        build = Change.model_construct
        return [
            build(
                source=source, id=id_, service=service, committed_at=from_micros(at),
                merged_at=optional_moment(merged_at), url=None,
            )
            for source, id_, service, at, merged_at in rows
        ]  # fmt: skip
    build = Incident.model_construct
    return [
        build(
            source=source, id=id_, service=service, environment=environment, started_at=from_micros(started_at),
            resolved_at=optional_moment(resolved_at), caused_by=caused_by, deployment_related=bool(related),
            severity=None, title=None, url=None,
        )
        for source, id_, service, environment, started_at, resolved_at, caused_by, related in rows
    ]  # fmt: skip


def scope_events_sql(scope: DoraScope, dialect: Dialect) -> list[tuple[EventKind, str, tuple[str, ...]]]:
    """``(kind, sql, params)`` loading the ``RULE_COLUMNS`` of a labelled scope's events (``events_where``)."""
    service, params, where, incident_params = events_where(scope, dialect.mark)
    return [
        ("deployment", f"SELECT {RULE_COLUMNS['deployment']} FROM deployments{service}", params),
        ("change", f"SELECT {RULE_COLUMNS['change']} FROM changes{service}", params),
        ("incident", f"SELECT {RULE_COLUMNS['incident']} FROM incidents{where}", incident_params),
    ]
