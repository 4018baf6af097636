"""The ``Storage`` protocol every backend implements, and the types it speaks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from metrichub_core.dora._protocol import DoraData
from metrichub_core.errors import StorageError, UnknownStorageScheme
from metrichub_core.models import Event, EventKind

__all__ = [
    "DEFAULT_DELIVERY_RETENTION",
    "DataVersioned",
    "DeliveryRetention",
    "EventQuery",
    "Page",
    "SourceLocking",
    "Storage",
    "StorageError",
    "StorageHealth",
    "UnknownStorageScheme",
    "WebhookDeliveries",
]


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


@runtime_checkable
class SourceLocking(Protocol):
    """Optional for a ``Storage`` that several processes share: one collection of a source at a time.

    ``source_lock(source_id)`` is an async context manager that yields ``True`` when
    this process now holds the source's lock (kept for the block, released at its end
    or when the process dies) and ``False`` when another process holds it; it never
    waits. It raises ``StorageError`` when the lock cannot be asked for. Every collection
    holds it, whoever starts it (``metrichub collect``, the API, the scheduler)::

        async with storage.source_lock("acme-gh") as acquired:
            if acquired:
                ...  # collect

    ``source_lock_holder(source_id)`` says who holds it (``None`` when free), for the
    message of a collection that could not start. SQLite provides both with a lock file
    per source beside the database; the PostgreSQL plugin with an advisory lock.
    """

    def source_lock(self, source_id: str) -> AbstractAsyncContextManager[bool]:
        """Hold ``source_id``'s collection lock for the block if it is free; yield whether it is held."""
        ...

    async def source_lock_holder(self, source_id: str) -> str | None:
        """Who holds ``source_id``'s collection lock (process, host, since when); ``None`` if nobody does."""
        ...


@runtime_checkable
class DataVersioned(Protocol):
    """Optional for a ``Storage`` that several processes share: tells when another process wrote.

    ``data_version()`` is a cheap query whose answer changes whenever another process
    commits a write (it may change for this process's own writes too). The API polls it to
    empty its report cache, so a write by another worker or a ``metrichub collect`` shows
    in every worker's next report within a second.
    """

    async def data_version(self) -> int:
        """A number that changes whenever another process commits a write."""
        ...


@dataclass(frozen=True)
class DeliveryRetention:
    """How long, and how many, webhook delivery ids are remembered (``WebhookDeliveries``)."""

    seconds: float
    max_ids: int

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.seconds)


DEFAULT_DELIVERY_RETENTION = DeliveryRetention(seconds=7 * 86_400, max_ids=100_000)
"""A week (GitHub redelivers up to three days back) and 100,000 ids, the newest kept."""


@runtime_checkable
class WebhookDeliveries(Protocol):
    """Optional: the webhook delivery ids already received, shared by every process that opens the storage.

    ``claim_delivery`` records an id unless it is remembered, atomically: of several
    processes claiming one id at once exactly one gets ``True``. An id is remembered for
    ``retention.seconds`` after its first claim, and only the ``retention.max_ids`` newest
    ids are kept (older ones are forgotten first). ``release_delivery`` forgets an id whose
    processing failed, so that its redelivery is processed. Memory, SQLite and the
    PostgreSQL plugin provide it; without it the API remembers ids per process.
    """

    async def claim_delivery(
        self, source_id: str, delivery: str, *, at: datetime, retention: DeliveryRetention
    ) -> bool:
        """Remember ``delivery`` of ``source_id`` as received ``at``; ``False`` when it is remembered already."""
        ...

    async def release_delivery(self, source_id: str, delivery: str) -> None:
        """Forget ``delivery`` of ``source_id`` (a no-op when it is not remembered)."""
        ...
