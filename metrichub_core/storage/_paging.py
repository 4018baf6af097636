"""Opaque keyset cursors shared by the storage backends."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from metrichub_core.models import Change, Deployment, Event, Incident

__all__ = ["decode_cursor", "encode_cursor", "main_time", "sort_key"]


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
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


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
