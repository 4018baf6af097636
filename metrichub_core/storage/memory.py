"""``memory://``: a process-local backend for tests and embedding."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from metrichub_core.models import Deployment, Event, EventKind
from metrichub_core.storage.base import EventQuery, Page, StorageError, StorageHealth
from metrichub_core.storage.memory_deliveries import MemoryDeliveries
from metrichub_core.storage.memory_dora import MemoryDoraData
from metrichub_core.storage.sql.paging import decode_cursor, encode_cursor, main_time, sort_key
from metrichub_core.storage.versions import latest, upserted

__all__ = ["MemoryStorage"]


class MemoryStorage(MemoryDoraData, MemoryDeliveries):
    """Keeps everything in dicts; nothing survives the process (webhook delivery ids included)."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._events: dict[tuple[EventKind, str, str], Event] = {}
        self._states: dict[str, dict[str, Any]] = {}
        self._closed = False
        MemoryDeliveries.__init__(self)

    async def open(self) -> None:
        self._closed = False

    async def upsert(self, events: Sequence[Event]) -> int:
        self._check_open()
        # Validate a copy of the whole batch before touching the store, as a database
        # would refuse what it cannot encode, so a bad item writes nothing.
        try:
            staged = [_revalidated(event) for event in latest(events)]
        except ValidationError as exc:
            raise StorageError(f"memory storage refused the batch: {exc}") from exc
        for event in staged:
            key = (event.kind, event.source, event.id)
            self._events[key] = upserted(event, self._events.get(key))
        return len(events)

    async def get(self, kind: EventKind, source: str, id: str) -> Event | None:
        self._check_open()
        return self._events.get((kind, source, id))

    async def list_events(self, query: EventQuery) -> Page:
        self._check_open()
        after = decode_cursor(query.cursor) if query.cursor else None
        matches = sorted(
            (event for (kind, _, _), event in self._events.items() if kind == query.kind and _matches(event, query)),
            key=sort_key,
            reverse=True,
        )
        if after is not None:
            matches = [event for event in matches if sort_key(event) < after]
        page = matches[: query.limit]
        more = len(matches) > query.limit
        return Page(items=page, next_cursor=encode_cursor(sort_key(page[-1])) if more else None)

    async def get_state(self, source_id: str) -> dict[str, Any] | None:
        self._check_open()
        state = self._states.get(source_id)
        return copy.deepcopy(state) if state is not None else None

    async def set_state(self, source_id: str, state: Mapping[str, Any]) -> None:
        self._check_open()
        self._states[source_id] = copy.deepcopy(dict(state))

    async def health(self) -> StorageHealth:
        return StorageHealth(ok=not self._closed, backend="memory", detail="closed" if self._closed else None)

    async def close(self) -> None:
        self._closed = True

    def all_events(self) -> list[Event]:
        """Every stored event, for in-process consumers such as the DORA engine."""
        return list(self._events.values())

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("memory storage is closed")


def _revalidated(event: Event) -> Event:
    return type(event).model_validate(event.model_dump())


def _matches(event: Event, query: EventQuery) -> bool:
    if query.service is not None and event.service != query.service:
        return False
    if query.source is not None and event.source != query.source:
        return False
    if query.id is not None and event.id != query.id:
        return False
    if query.environment is not None and getattr(event, "environment", None) != query.environment:
        return False
    if query.labels:
        labels = event.labels if isinstance(event, Deployment) else {}
        if any(labels.get(key) != value for key, value in query.labels.items()):
            return False
    moment = main_time(event)
    if query.since is not None and moment < query.since:
        return False
    return query.until is None or moment < query.until
