"""Collecting configured sources: build them, run them concurrently, store as they go.

A source's stored state is ``{"cursor": <ISO start of the last successful run>,
"source": <ctx.state>, "http_cache": <ETag cache>}``; it is written only when a run
succeeds, so a failed or killed run is simply redone from the previous cursor, and
idempotent upserts make the redo exact.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from metrichub_core.config import ConfigError, validation_message
from metrichub_core.models import Change, Deployment, Event, Incident
from metrichub_core.resilience.cache import HttpCache
from metrichub_core.resilience.client import SourceResilience
from metrichub_core.sources import Source, SourceConfig, SourceContext
from metrichub_core.storage.base import Storage

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FLUSH_SECONDS",
    "ConfiguredSource",
    "Progress",
    "ProgressCallback",
    "SourceHealth",
    "SourceRegistry",
    "SourceResult",
    "UnknownSource",
    "collect_sources",
    "stored_source_state",
]

DEFAULT_BATCH_SIZE = 500
DEFAULT_FLUSH_SECONDS = 2.0
"""A slow source's events are stored at least this often, even when the batch is not full."""
_EVENT_TYPES = (Deployment, Change, Incident)
_REDACTED = "**********"
logger = logging.getLogger("metrichub.collection")


class UnknownSource(LookupError):
    """No source with that id is configured."""

    def __init__(self, source_id: str, known: Sequence[str]) -> None:
        listing = ", ".join(sorted(known)) or "none"
        super().__init__(f"no source {source_id!r} is configured (configured: {listing})")
        self.source_id = source_id

    def __str__(self) -> str:
        return str(self.args[0])


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


@dataclass(frozen=True)
class SourceHealth:
    """A configured source's breaker, counters and last collection, for ``/sources/{id}/health``."""

    id: str
    kind: str
    ok: bool
    running: bool
    breaker: dict[str, Any]
    stats: dict[str, Any]
    budget: dict[str, Any]
    last_run: dict[str, Any] | None
    last_success_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ConfiguredSource:
    """A ``[sources.<id>]`` table validated by its kind's ``Config``, plus its resilience state."""

    id: str
    source_class: type[Source]
    config: SourceConfig
    resilience: SourceResilience
    last_result: SourceResult | None = None
    running: bool = False
    _secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def kind(self) -> str:
        return self.source_class.kind

    def create(
        self,
        *,
        http: httpx.AsyncClient | None = None,
        state: dict[str, Any] | None = None,
        cache: HttpCache | None = None,
    ) -> Source:
        """A ready instance whose ``ctx.http`` goes through this source's policies."""
        if http is None:
            http = self.resilience.client(base_url=self.config.base_url, cache=cache)
        ctx = SourceContext(http=http, logger=logging.getLogger(f"metrichub.source.{self.id}"), state=state or {})
        return self.source_class(self.id, self.config, ctx)

    def describe(self) -> dict[str, Any]:
        """Id, kind, schedule and config with secrets masked: safe to print or serve."""
        return {
            "id": self.id,
            "kind": self.kind,
            "base_url": self.config.base_url,
            "schedule_minutes": self.config.schedule_minutes,
            "accepts_webhooks": self.source_class.accepts_webhooks(),
            "config": self.config.model_dump(mode="json"),
        }

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text


class SourceRegistry:
    """The configured sources of a hub, by id."""

    def __init__(self, sources: Mapping[str, ConfiguredSource] | None = None) -> None:
        self._sources = dict(sources or {})

    @classmethod
    def from_settings(
        cls,
        tables: Mapping[str, Mapping[str, Any]],
        kinds: Mapping[str, type[Source]],
        *,
        origin: str = "config",
        failed_plugins: Mapping[str, str] | None = None,
    ) -> SourceRegistry:
        """Validate every ``[sources.<id>]`` table; one ``ConfigError`` lists every problem.

        ``failed_plugins`` (name -> error) is mentioned when a kind is unknown: the
        plugin that provides it may be installed but broken.
        """
        sources: dict[str, ConfiguredSource] = {}
        problems: list[str] = []
        installed = ", ".join(sorted(kinds)) or "none"
        if failed_plugins:
            installed += "; plugins that failed to load: " + "; ".join(
                f"{name}: {error}" for name, error in sorted(failed_plugins.items())
            )
        for source_id, table in tables.items():
            if not isinstance(table, Mapping):
                problems.append(f"{origin}: sources.{source_id}: expected a table")
                continue
            kind = table.get("kind")
            if not isinstance(kind, str) or not kind:
                problems.append(f"{origin}: sources.{source_id}.kind: required (installed kinds: {installed})")
                continue
            source_class = kinds.get(kind)
            if source_class is None:
                problems.append(
                    f"{origin}: sources.{source_id}.kind: unknown source kind {kind!r} (installed kinds: {installed})"
                )
                continue
            try:
                config = source_class.Config.model_validate(dict(table))
            except ValidationError as exc:
                problems.append(validation_message(origin, exc, ("sources", source_id)))
                continue
            sources[source_id] = ConfiguredSource(
                id=source_id,
                source_class=source_class,
                config=config,
                resilience=SourceResilience(source_id, config.policy),
                _secrets=tuple(_secret_values(config)),
            )
        if problems:
            raise ConfigError("\n".join(problems))
        return cls(sources)

    def add(self, source: ConfiguredSource) -> None:
        self._sources[source.id] = source

    def __getitem__(self, source_id: str) -> ConfiguredSource:
        try:
            return self._sources[source_id]
        except KeyError:
            raise UnknownSource(source_id, list(self._sources)) from None

    def __contains__(self, source_id: object) -> bool:
        return source_id in self._sources

    def __iter__(self) -> Iterator[ConfiguredSource]:
        return iter(self._sources.values())

    def __len__(self) -> int:
        return len(self._sources)

    def ids(self) -> list[str]:
        return list(self._sources)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every source's collector counters, breaker and budget: ``{id: {"stats", "breaker", "budget"}}``."""
        return {source.id: {"kind": source.kind, **source.resilience.snapshot()} for source in self}

    async def health(self, source_id: str, storage: Storage) -> SourceHealth:
        source = self[source_id]
        stored = await storage.get_state(source_id) or {}
        cursor = stored.get("cursor")
        snapshot = source.resilience.snapshot()
        last = source.last_result
        ok = snapshot["breaker"]["state"] != "open" and (last is None or last.ok)
        return SourceHealth(
            id=source.id,
            kind=source.kind,
            ok=ok,
            running=source.running,
            breaker=snapshot["breaker"],
            stats=snapshot["stats"],
            budget=snapshot["budget"],
            last_run=None if last is None else last.as_dict(),
            last_success_at=cursor if isinstance(cursor, str) else None,
        )


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

    def finish(error: str | None) -> SourceResult:
        result = SourceResult(
            id=source.id,
            kind=source.kind,
            ok=error is None,
            events=stored_count,
            duration_seconds=round(time.perf_counter() - clock, 3),
            started_at=started_at,
            full=full,
            error=error,
        )
        source.last_result = result
        report("finished", result)
        return result

    if source.running:
        return finish("a collection of this source is already running")
    source.running = True
    report("started")
    try:
        stored = await storage.get_state(source.id) or {}
        since = None if full else _parse_cursor(stored.get("cursor"))
        state = _json_copy(stored.get("source") or {})
        cache = HttpCache.from_state(stored.get("http_cache"))
        async with source.resilience.client(base_url=source.config.base_url, cache=cache) as http:
            instance = source.create(http=http, state=state)
            batch: list[Event] = []
            flushed_at = time.monotonic()
            async with _closing(instance.collect(since)) as events:
                async for event in events:
                    batch.append(_owned(event, source.id))
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
    except Exception as exc:  # isolation: the error is this source's result, not everyone's
        logger.warning("source %s failed: %s", source.id, source.redact(_describe(exc)))
        return finish(source.redact(_describe(exc)))
    finally:
        source.running = False
    return finish(None)


async def _store(storage: Storage, source_id: str, batch: list[Event], on_stored: StoredCallback | None) -> int:
    written = await storage.upsert(batch)
    if on_stored is not None:
        await on_stored(source_id, batch)
    return written if isinstance(written, int) else len(batch)


class _closing:
    """``async with`` that closes an async generator even when the loop body raises."""

    def __init__(self, iterator: AsyncIterator[Event]) -> None:
        self.iterator = iterator

    async def __aenter__(self) -> AsyncIterator[Event]:
        return self.iterator

    async def __aexit__(self, *exc_info: object) -> None:
        aclose = getattr(self.iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def _owned(event: object, source_id: str) -> Event:
    if not isinstance(event, _EVENT_TYPES):
        raise TypeError(f"collect() yielded {type(event).__name__}; expected Deployment, Change or Incident")
    if event.source != source_id:  # events are keyed by the configured source id
        return event.model_copy(update={"source": source_id})
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


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _secret_values(model: BaseModel) -> Iterator[str]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if secret:
                yield secret
        elif isinstance(value, BaseModel):
            yield from _secret_values(value)
        elif isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, SecretStr) and item.get_secret_value():
                    yield item.get_secret_value()
