"""Monotonic upserts: a stored event is never replaced by an older version of itself.

An event's ``updated_at`` is when the upstream last changed the record (an issue's
``updated_at``, a build's end). Webhook deliveries can be replayed and collections can
read a page from before a webhook arrived; comparing the upstream's own time keeps the
newest state, whatever order the versions reach the storage in. The rule, for an
incoming version of a stored event (same kind, source and id):

- both carry ``updated_at`` and the incoming one is older: the stored event stays as it is;
- otherwise the incoming version is written (equal times too: a re-read of the same upstream
  version may carry more, e.g. a deployment id resolved from a collection's state);
- the stored ``updated_at`` never moves back: an incoming version without one (a client that
  knows no upstream time) keeps the stored time.

Backends apply it in one place each: ``upserted`` here (the memory backend, and a batch
holding one key several times), and the SQL kit's upsert (``Dialect.upsert``'s ``version``).
"""

from __future__ import annotations

from collections.abc import Iterable

from metrichub_core.models import Event

__all__ = ["latest", "supersedes", "upserted"]


def supersedes(incoming: Event, stored: Event) -> bool:
    """Whether an upsert of ``incoming`` replaces ``stored`` (the same key)."""
    return incoming.updated_at is None or stored.updated_at is None or incoming.updated_at >= stored.updated_at


def upserted(incoming: Event, stored: Event | None) -> Event:
    """What is stored after upserting ``incoming`` where ``stored`` was (``None``: nothing)."""
    if stored is None:
        return incoming
    if not supersedes(incoming, stored):
        return stored
    if incoming.updated_at is None and stored.updated_at is not None:
        return incoming.model_copy(update={"updated_at": stored.updated_at})
    return incoming


def latest(events: Iterable[Event]) -> list[Event]:
    """One event per key: what upserting ``events`` one after the other would store (in first-seen key order)."""
    kept: dict[tuple[str, str, str], Event] = {}
    for event in events:
        key = (event.kind, event.source, event.id)
        stored = kept.get(key)
        kept[key] = event if stored is None else upserted(event, stored)  # (a backfill's keys are new: no call)
    return list(kept.values())
