"""Collecting configured sources: build them, run them concurrently, store as they go.

A source's stored state is ``{"cursor": <ISO start of the last successful run>,
"source": <ctx.state>, "http_cache": <ETag cache>}``; it is written only when a run
succeeds, so a failed or killed run is simply redone from the previous cursor, and
idempotent upserts make the redo exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from metrichub_core.models import Change, Deployment, Event, Incident
from metrichub_core.registry import ConfiguredSource, SourceFault, SourceRegistry, describe
from metrichub_core.resilience.cache import HttpCache
from metrichub_core.sources import Source
from metrichub_core.storage.base import SourceLocking, Storage

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FLUSH_SECONDS",
    "Progress",
    "ProgressCallback",
    "SourceResult",
    "collect_sources",
    "stored_source_state",
]

DEFAULT_BATCH_SIZE = 500
DEFAULT_FLUSH_SECONDS = 2.0
"""A slow source's events are stored at least this often, even when the batch is not full."""
_EVENT_TYPES = (Deployment, Change, Incident)
logger = logging.getLogger("metrichub.collection")


@dataclass(frozen=True)
class SourceResult:
    """How one source's collection went."""

    id: str
    kind: str
    ok: bool
    events: int
    duration_seconds: float
    started_at: datetime
    full: bool = False
    error: str | None = None
    locked_by: str | None = None
    """Set when the run did not start: another process holds the source's collection lock (who, since when)."""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        return data


@dataclass(frozen=True)
class Progress:
    """A progress report: ``started``, then ``events`` after each stored batch, then ``finished``."""

    source_id: str
    phase: Literal["started", "events", "finished"]
    events: int = 0
    result: SourceResult | None = None


ProgressCallback = Callable[[Progress], None]
StoredCallback = Callable[[str, list[Event]], Awaitable[None]]


async def stored_source_state(storage: Storage, source_id: str) -> dict[str, Any]:
    """A copy of the ``ctx.state`` saved by ``source_id``'s last successful collection (``{}`` before one)."""
    stored = await storage.get_state(source_id) or {}
    state = stored.get("source")
    return _json_copy(state) if isinstance(state, dict) else {}


async def collect_sources(
    registry: SourceRegistry,
    storage: Storage,
    source_ids: Sequence[str] | None = None,
    *,
    full: bool = False,
    progress: ProgressCallback | None = None,
    on_stored: StoredCallback | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    flush_seconds: float = DEFAULT_FLUSH_SECONDS,
) -> list[SourceResult]:
    """Collect ``source_ids`` (all when ``None``) concurrently; one failure never stops the others.

    Raises ``UnknownSource`` before anything runs if an id is not configured.
    """
    selected = [registry[source_id] for source_id in dict.fromkeys(source_ids)] if source_ids else list(registry)
    runs = [_collect_one(source, storage, full, progress, on_stored, batch_size, flush_seconds) for source in selected]
    return list(await asyncio.gather(*runs))


async def _collect_one(
    source: ConfiguredSource,
    storage: Storage,
    full: bool,
    progress: ProgressCallback | None,
    on_stored: StoredCallback | None,
    batch_size: int,
    flush_seconds: float,
) -> SourceResult:
    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    stored_count = 0

    def report(phase: Literal["started", "events", "finished"], result: SourceResult | None = None) -> None:
        if progress is not None:
            try:
                progress(Progress(source.id, phase, stored_count, result))
            except Exception:  # a broken progress display must not fail the collection
                logger.exception("progress callback failed")

    def finish(error: str | None, locked_by: str | None = None) -> SourceResult:
        result = SourceResult(
            id=source.id,
            kind=source.kind,
            ok=error is None,
            events=stored_count,
            duration_seconds=round(time.perf_counter() - clock, 3),
            started_at=started_at,
            full=full,
            error=error,
            locked_by=locked_by,
        )
        source.last_result = result
        report("finished", result)
        return result

    if source.fault is not None:
        return finish(source.fault)
    if source.running:
        return finish("a collection of this source is already running")
    source.running = True
    report("started")
    try:
        async with _collection_lock(storage, source.id):
            stored = await storage.get_state(source.id) or {}
            since = None if full else _parse_cursor(stored.get("cursor"))
            state = _json_copy(stored.get("source") or {})
            cache = HttpCache.from_state(stored.get("http_cache"))
            async with source.resilience.client(base_url=source.base_url or "", cache=cache) as http:
                instance = source.create(http=http, state=state)
                batch: list[Event] = []
                flushed_at = time.monotonic()
                async with aclosing(_event_stream(source, instance, since)) as events:
                    async for event in events:
                        batch.append(_owned(event, source))
                        if len(batch) >= batch_size or time.monotonic() - flushed_at >= flush_seconds:
                            stored_count += await _store(storage, source.id, batch, on_stored)
                            batch = []
                            flushed_at = time.monotonic()
                            report("events")
                if batch:
                    stored_count += await _store(storage, source.id, batch, on_stored)
                    report("events")
            new_state = {"cursor": started_at.isoformat(), "source": instance.ctx.state, "http_cache": cache.to_state()}
            await storage.set_state(source.id, _json_copy(new_state))
    except _LockedElsewhere as exc:
        logger.info("source %s not collected: %s", source.id, exc)
        return finish(str(exc), locked_by=exc.holder)
    except Exception as exc:  # isolation: the error is this source's result, not everyone's
        reason = str(exc) if isinstance(exc, SourceFault) else source.redact(describe(exc))
        logger.warning("source %s failed: %s", source.id, reason)
        return finish(reason)
    finally:
        source.running = False
    return finish(None)


class _LockedElsewhere(Exception):
    def __init__(self, source_id: str, holder: str) -> None:
        super().__init__(f"{source_id} is being collected by another process ({holder})")
        self.holder = holder


@contextlib.asynccontextmanager
async def _collection_lock(storage: Storage, source_id: str) -> AsyncIterator[None]:
    """Hold the source's collection lock where the storage is shared by processes; ``_LockedElsewhere`` if taken."""
    if not isinstance(storage, SourceLocking):
        yield
        return
    async with storage.source_lock(source_id) as acquired:
        if not acquired:
            raise _LockedElsewhere(source_id, await storage.source_lock_holder(source_id) or "another process")
        yield


async def _store(storage: Storage, source_id: str, batch: list[Event], on_stored: StoredCallback | None) -> int:
    written = await storage.upsert(batch)
    if on_stored is not None:
        await on_stored(source_id, batch)
    return written if isinstance(written, int) else len(batch)


def _event_stream(source: ConfiguredSource, instance: Source, since: datetime | None) -> AsyncGenerator[Event]:
    stream: object = instance.collect(since)
    if not (hasattr(stream, "__anext__") and hasattr(stream, "aclose")):
        if inspect.iscoroutine(stream):
            stream.close()  # never awaited: close it rather than leave a warning behind
        raise source.plugin_fault(
            f"{type(instance).__name__}.collect() must be an async generator (async def with yield), "
            f"it returned {type(stream).__name__}"
        )
    return stream  # type: ignore[return-value]


def _owned(event: object, source: ConfiguredSource) -> Event:
    if not isinstance(event, _EVENT_TYPES):
        raise source.plugin_fault(f"collect() yielded {type(event).__name__}; expected Deployment, Change or Incident")
    if event.source != source.id:  # events are keyed by the configured source id
        return event.model_copy(update={"source": source.id})
    return event


def _parse_cursor(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _json_copy(value: Any) -> Any:
    """A deep copy that proves the state is JSON-serialisable (the storage contract)."""
    return json.loads(json.dumps(value))
