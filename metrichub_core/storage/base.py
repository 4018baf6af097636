"""The ``Storage`` protocol every backend implements, and the types it speaks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from metrichub_core.dora._protocol import DoraData
from metrichub_core.models import Event, EventKind

__all__ = ["EventQuery", "Page", "Storage", "StorageError", "StorageHealth", "UnknownStorageScheme"]


class StorageError(Exception):
    """A backend could not complete an operation; nothing of it was written."""


class UnknownStorageScheme(StorageError):
    """No installed backend handles the storage URL's scheme."""


@dataclass(frozen=True)
class StorageHealth:
    ok: bool
    backend: str
    schema_version: int | None = None
    detail: str | None = None


@dataclass(frozen=True)
class EventQuery:
    """A filtered, keyset-paged listing of one kind of event.

    Events are ordered by their main time, newest first: ``finished_at`` (else
    ``started_at``) for deployments, ``committed_at`` for changes and
    ``started_at`` for incidents. ``since``/``until`` bound that time as ``[since, until)``.
    """

    kind: EventKind
    service: str | None = None
    environment: str | None = None
    source: str | None = None
    id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    limit: int = 100
    cursor: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[Event]
    next_cursor: str | None


@runtime_checkable
class Storage(DoraData, Protocol):
    """Durable, idempotent storage of events and per-source state, and the DORA queries.

    ``dora_facts`` (from ``DoraData``) answers the DORA engine; see ``metrichub_core.dora``.

    A backend is created by its factory from a URL, then ``open()``ed (which runs
    pending migrations) before any other call.
    """

    async def open(self) -> None:
        """Connect and bring the schema up to date."""

    async def upsert(self, events: Sequence[Event]) -> int:
        """Insert or update ``events`` keyed by ``(kind, source, id)`` in one transaction.

        Returns how many were written. On any error nothing of the batch is stored.
        """

    async def get(self, kind: EventKind, source: str, id: str) -> Event | None:
        """Return one event, or ``None``."""

    async def list_events(self, query: EventQuery) -> Page:
        """Return one page of events matching ``query``."""

    async def get_state(self, source_id: str) -> dict[str, Any] | None:
        """Return a source's saved collection state, ``None`` before its first success."""

    async def set_state(self, source_id: str, state: Mapping[str, Any]) -> None:
        """Replace a source's saved collection state (JSON-serialisable)."""

    async def health(self) -> StorageHealth:
        """Report whether the backend answers, and its schema version."""

    async def close(self) -> None:
        """Release connections; the storage is unusable afterwards."""
