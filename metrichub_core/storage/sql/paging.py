"""Listing shared by the storage backends: times as microseconds, filters, opaque keyset cursors.

Part of the core's surface for storage backends (the PostgreSQL plugin imports it).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from metrichub_core.models import Change, Deployment, Event, Incident
from metrichub_core.storage.base import EventQuery, Page

__all__ = [
    "LabelsSQL",
    "decode_cursor",
    "encode_cursor",
    "event_filters",
    "from_micros",
    "listing_sql",
    "main_time",
    "optional_micros",
    "optional_moment",
    "page_of",
    "sort_key",
    "to_micros",
]

LabelsSQL = Callable[[Mapping[str, str]], tuple[list[str], list[Any]]]
"""A backend's SQL for a deployment label filter: (clauses, parameters)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
R = TypeVar("R")


def main_time(event: Event) -> datetime:
    """The time an event is listed and filtered by (see ``EventQuery``)."""
    if isinstance(event, Deployment):
        return event.finished_at or event.started_at
    if isinstance(event, Change):
        return event.committed_at
    assert isinstance(event, Incident)
    return event.started_at


def sort_key(event: Event) -> tuple[int, str, str]:
    return (to_micros(main_time(event)), event.source, event.id)


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch, in integers (``timestamp()``, a float, is off by a second near 9000)."""
    return (moment - _EPOCH) // _MICROSECOND


def optional_micros(moment: datetime | None) -> int | None:
    return None if moment is None else to_micros(moment)


def from_micros(micros: int) -> datetime:
    """The UTC time of microseconds since the Unix epoch (``to_micros`` reversed)."""
    return _EPOCH + timedelta(microseconds=micros)


def optional_moment(micros: int | None) -> datetime | None:
    return None if micros is None else from_micros(micros)


def event_filters(query: EventQuery, time_column: str, mark: str, labels: LabelsSQL) -> tuple[list[str], list[Any]]:
    """The WHERE clauses and parameters of ``query`` in a placeholder style (``?`` or ``%s``).

    ``time_column`` is the kind's listing time; ``labels`` makes a deployment label
    filter's clauses (only deployments carry labels: other kinds match nothing).
    """
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("service", query.service), ("source", query.source), ("id", query.id)):
        if value is not None:
            clauses.append(f"{column} = {mark}")
            params.append(value)
    if query.environment is not None and query.kind != "change":
        clauses.append(f"environment = {mark}")
        params.append(query.environment)
    if query.kind == "deployment":
        if query.labels:
            more, values = labels(query.labels)
            clauses += more
            params += values
    elif query.labels:
        clauses.append("1 = 0")
    if query.since is not None:
        clauses.append(f"{time_column} >= {mark}")
        params.append(to_micros(query.since))
    if query.until is not None:
        clauses.append(f"{time_column} < {mark}")
        params.append(to_micros(query.until))
    return clauses, params


def encode_cursor(key: tuple[int, str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, str, str]:
    """Parse a cursor made by ``encode_cursor``; raise ``ValueError`` otherwise."""
    try:
        micros, source, id_ = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except Exception as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc
    if not (isinstance(micros, int) and isinstance(source, str) and isinstance(id_, str)):
        raise ValueError(f"invalid cursor {cursor!r}")
    return micros, source, id_


def listing_sql(
    query: EventQuery, *, table: str, time_column: str, columns: str, mark: str, labels: LabelsSQL
) -> tuple[str, list[Any]]:
    """The query of one page of ``query``: newest first, after its cursor, one row more than asked."""
    clauses, params = event_filters(query, time_column, mark, labels)
    if query.cursor:
        micros, source, id_ = decode_cursor(query.cursor)
        clauses.append(f"({time_column}, source, id) < ({mark}, {mark}, {mark})")
        params += [micros, source, id_]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    params.append(query.limit + 1)
    sql = f"SELECT {columns} FROM {table} {where} ORDER BY {time_column} DESC, source DESC, id DESC LIMIT {mark}"
    return sql, params


def page_of(
    rows: Sequence[R], limit: int, event: Callable[[R], Event], key: Callable[[R], tuple[int, str, str]]
) -> Page:
    """The page of the rows of ``listing_sql``; ``key`` is a row's (listing time, source, id)."""
    shown = rows[:limit]
    next_cursor = encode_cursor(key(shown[-1])) if len(rows) > limit else None
    return Page(items=[event(row) for row in shown], next_cursor=next_cursor)
