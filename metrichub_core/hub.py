"""``MetricHub``: the one object the CLI, the API and embedding programs talk to."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from metrichub_core.collection import ProgressCallback, SourceResult, collect_sources, stored_source_state
from metrichub_core.config import Settings, load_settings
from metrichub_core.dora import DoraOptions, DoraReport, DoraTrend, dora_report, dora_trend, make_scope, resolve_window
from metrichub_core.dora.drilldown import DoraDrilldown, drilldown
from metrichub_core.errors import ResolveConflict, ResolveError, UnknownIncident
from metrichub_core.models import Change, Deployment, Event, Incident
from metrichub_core.plugins import PluginHost
from metrichub_core.registry import SourceHealth, SourceRegistry
from metrichub_core.scheduling import DEFAULT_GRACE_SECONDS, CollectionOutcome, CollectionRunner
from metrichub_core.sources import Source
from metrichub_core.storage.base import DataVersioned, EventQuery, Page, SourceLocking, Storage, StorageHealth
from metrichub_core.storage.memory import MemoryStorage

__all__ = ["MetricHub"]

_EVENT_TYPES = (Deployment, Change, Incident)
_PAGE = 1000


class MetricHub:
    """Storage, plugins and configured sources behind one async API.

    Parameters:
        storage: a storage URL (``"memory://"``, ``"sqlite:///metrichub.db"``, ...) or
            an already created ``Storage``; defaults to the settings' storage.
        settings: the parsed configuration; defaults to no sources.
        plugins: the plugin host; defaults to the built-ins plus installed entry points.
    """

    def __init__(
        self,
        storage: str | Storage | None = None,
        *,
        settings: Settings | None = None,
        plugins: PluginHost | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.plugins = plugins or PluginHost.load()
        if storage is None or isinstance(storage, str):
            storage = self.plugins.create_storage(storage or self.settings.storage)
        self.storage: Storage = storage
        self._opened = False
        self._open_lock = asyncio.Lock()

    @classmethod
    def from_config(cls, path: str | Path | None = None, *, storage: str | None = None) -> MetricHub:
        """Build a hub from ``metrichub.toml`` (and ``METRICHUB_*`` overrides)."""
        settings = load_settings(path)
        return cls(storage, settings=settings)

    async def open(self) -> None:
        """Open storage (running migrations); other methods call this on first use."""
        async with self._open_lock:
            if not self._opened:
                await self.storage.open()
                self._opened = True

    async def close(self) -> None:
        if self._opened:
            await self.storage.close()
            self._opened = False

    async def __aenter__(self) -> MetricHub:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def ingest(self, events: Iterable[Event]) -> int:
        """Store ``events`` in one transaction (idempotent upsert); return how many."""
        batch = list(events)
        for position, event in enumerate(batch):
            if not isinstance(event, _EVENT_TYPES):
                raise TypeError(
                    f"events[{position}]: expected Deployment, Change or Incident, got {type(event).__name__}"
                )
        if not batch:
            return 0
        await self.open()
        stored = await self.storage.upsert(batch)
        await self.plugins.events_ingested(None, batch)
        return stored

    async def dora(
        self,
        *,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        days: int | None = None,
        service: str | None = None,
        environment: str = "production",
        labels: Mapping[str, str] | None = None,
        profile: str | None = None,
        options: DoraOptions | Mapping[str, Any] | None = None,
    ) -> DoraReport:
        """The DORA report of ``[since, until)`` (UTC) for the filters (see docs/metrics.md).

        ``until`` defaults to now and ``since`` to ``days`` (default 30) before it;
        ``profile`` names the benchmark year (default the newest). Raises
        ``DoraQueryError`` (a ``ValueError`` naming the parameter) on bad input.
        """
        scope = make_scope(service, environment, labels)
        await self.open()
        return await dora_report(
            self.storage, since=since, until=until, days=days, scope=scope, profile=profile, options=options
        )

    async def dora_trend(
        self,
        *,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        days: int | None = None,
        bucket: str = "week",
        service: str | None = None,
        environment: str = "production",
        labels: Mapping[str, str] | None = None,
        profile: str | None = None,
        options: DoraOptions | Mapping[str, Any] | None = None,
    ) -> DoraTrend:
        """The DORA report per ``bucket`` (``day``, ``week`` from Monday, ``month``), empty ones included."""
        scope = make_scope(service, environment, labels)
        await self.open()
        return await dora_trend(
            self.storage,
            since=since,
            until=until,
            days=days,
            scope=scope,
            bucket=bucket,
            profile=profile,
            options=options,
        )

    async def dora_drilldown(
        self,
        *,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        days: int | None = None,
        service: str | None = None,
        environment: str = "production",
        labels: Mapping[str, str] | None = None,
        options: DoraOptions | Mapping[str, Any] | None = None,
    ) -> DoraDrilldown:
        """The deployments, changes and incidents behind ``dora()`` of the same window and filters.

        Reads every stored event of the scope's service(s): a change shipped before the window,
        or an incident after it, decides what counts inside it (see ``metrichub_core.dora.drilldown``).
        """
        scope = make_scope(service, environment, labels)
        await self.open()
        deployments = await self.events(EventQuery(kind="deployment", service=service))
        changes = await self.events(EventQuery(kind="change", service=service))
        incidents = await self.events(EventQuery(kind="incident", service=service, environment=environment))
        return await asyncio.to_thread(  # CPU-bound: not on the event loop
            drilldown,
            [d for d in deployments if isinstance(d, Deployment)],
            [c for c in changes if isinstance(c, Change)],
            [i for i in incidents if isinstance(i, Incident)],
            since=since,
            until=until,
            days=days,
            scope=scope,
            options=options,
        )

    async def dora_by_service(
        self,
        *,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        days: int | None = None,
        service: str | None = None,
        environment: str | None = None,
        labels: Mapping[str, str] | None = None,
        profile: str | None = None,
        options: DoraOptions | Mapping[str, Any] | None = None,
    ) -> list[DoraReport]:
        """One report per service and environment with a deployment in the window (of ``environment``,
        ``service`` and ``labels`` when given), ordered by service then environment."""
        window = resolve_window(since, until, days)
        make_scope(service, environment or "production", labels)  # the same checks as dora()
        listed = await self.events(
            EventQuery(
                kind="deployment",
                service=service,
                environment=environment,
                since=window.since,
                until=window.until,
                labels=dict(labels or {}),
            )
        )
        scopes = sorted({(d.service, d.environment) for d in listed if isinstance(d, Deployment)})
        return [
            await self.dora(
                since=window.since,
                until=window.until,
                service=name,
                environment=env,
                labels=labels,
                profile=profile,
                options=options,
            )
            for name, env in scopes
        ]

    async def event_page(self, query: EventQuery) -> Page:
        """One page of the stored events matching ``query`` (pass ``page.next_cursor`` on for the next)."""
        await self.open()
        return await self.storage.list_events(query)

    async def events(self, query: EventQuery) -> list[Event]:
        """Every stored event matching ``query`` (all pages; ``query.limit`` is the page size read)."""
        await self.open()
        found: list[Event] = []
        cursor = query.cursor
        while True:
            page = await self.storage.list_events(replace(query, limit=max(query.limit, _PAGE), cursor=cursor))
            found.extend(page.items)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def resolve_incident(
        self, incident_id: str, *, source: str | None = None, resolved_at: datetime | None = None
    ) -> tuple[Incident, bool]:
        """Set a stored incident's ``resolved_at`` (default now): the incident, and whether it changed
        (resolving again at the same time, or without a time, changes nothing).

        Raises ``UnknownIncident``; ``ResolveConflict`` when it is resolved at another time already or
        several sources report the id (name one with ``source``); ``ResolveError`` when ``resolved_at``
        is before the incident started.
        """
        page = await self.event_page(EventQuery(kind="incident", id=incident_id, source=source, limit=2))
        found = [item for item in page.items if isinstance(item, Incident)]
        if not found:
            raise UnknownIncident(f"no incident {incident_id!r}" + (f" from source {source!r}" if source else ""))
        if len(found) > 1:
            sources = sorted(item.source for item in found)
            raise ResolveConflict(f"several sources report incident {incident_id!r}", {"sources": sources})
        (incident,) = found
        moment = resolved_at or datetime.now(UTC)
        if incident.resolved_at is not None:
            if resolved_at is None or incident.resolved_at == moment:
                return incident, False
            when = incident.resolved_at.isoformat()
            raise ResolveConflict(f"incident {incident_id!r} is already resolved at {when}", {"resolved_at": when})
        if moment < incident.started_at:
            raise ResolveError("resolved_at is before the incident started")
        resolved = incident.model_copy(update={"resolved_at": moment})
        await self.ingest([resolved])
        return resolved, True

    async def dora_scopes(
        self, since: datetime, until: datetime, *, limit: int = 200, scan: int = 50_000
    ) -> list[tuple[str, str]]:
        """The (service, environment) pairs with a deployment in ``[since, until)``, sorted; at most ``limit``
        pairs, found among at most ``scan`` deployments (a bound on the cost of asking)."""
        scopes: set[tuple[str, str]] = set()
        query = EventQuery(kind="deployment", since=since, until=until, limit=_PAGE)
        scanned = 0
        while scanned < scan and len(scopes) < limit:
            page = await self.event_page(query)
            scopes.update((event.service, event.environment) for event in page.items if isinstance(event, Deployment))
            scanned += len(page.items)
            if page.next_cursor is None:
                break
            query = replace(query, cursor=page.next_cursor)
        return sorted(scopes)[:limit]

    async def storage_health(self) -> StorageHealth:
        """Whether the storage answers, and its schema version; a storage that raises is not ``ok``."""
        try:
            await self.open()
            return await self.storage.health()
        except Exception as exc:  # health reports trouble, it does not raise it
            backend = str(getattr(self.storage, "backend", type(self.storage).__name__))
            return StorageHealth(ok=False, backend=backend, detail=type(exc).__name__)

    @property
    def shared_storage(self) -> bool:
        """Whether other processes can use this hub's storage (not ``memory://``)."""
        return not isinstance(self.storage, MemoryStorage)

    async def collect(
        self,
        source_ids: Sequence[str] | None = None,
        full: bool = False,
        *,
        progress: ProgressCallback | None = None,
    ) -> list[SourceResult]:
        """Collect the configured sources (all, or ``source_ids``) concurrently; one result per source.

        Events are stored in batches as they come; a source's cursor advances only when
        its run succeeds; ``full`` ignores the cursors. A failing source is reported in
        its ``SourceResult`` (``ok=False``, ``error``) and never stops the others, and so is
        a source whose table or plugin is at fault (its one-line reason is the error).
        Raises ``UnknownSource`` for an id that is not configured.
        """
        await self.open()
        return await collect_sources(
            self.sources, self.storage, source_ids, full=full, progress=progress, on_stored=self.plugins.events_ingested
        )

    def runner(
        self,
        *,
        on_finished: Callable[[CollectionOutcome], None] | None = None,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
    ) -> CollectionRunner:
        """Background collections of this hub's sources, one per source at a time (the API's, ``scheduled()``'s)."""

        async def collect_one(source_id: str, full: bool) -> SourceResult:
            (result,) = await self.collect([source_id], full=full)
            return result

        return CollectionRunner(collect_one, on_finished=on_finished, grace_seconds=grace_seconds)

    def schedules(self) -> dict[str, float]:
        """``{source id: schedule_minutes}`` of the sources that collect on a schedule (and can)."""
        return {
            source.id: source.schedule_minutes
            for source in self.sources
            if source.schedule_minutes and not source.fault
        }

    @contextlib.asynccontextmanager
    async def scheduled(self, runner: CollectionRunner | None = None) -> AsyncIterator[CollectionRunner]:
        """Collect every source on its ``schedule_minutes`` while the block runs, without the API::

            async with hub.scheduled():
                await stop_requested.wait()

        A source's first run is due one period after its last success (at once if it never
        succeeded). Leaving the block stops the timers and gives collections in flight the
        runner's grace period to finish.
        """
        runner = runner or self.runner()
        runner.schedule(self.schedules(), last_success=self.last_success)
        try:
            yield runner
        finally:
            await runner.close()

    async def last_success(self, source_id: str) -> datetime | None:
        """When the last successful collection of ``source_id`` started; ``None`` if it never succeeded."""
        moment = (await self.source_health(source_id)).last_success_at
        if moment is None:
            return None
        parsed = datetime.fromisoformat(moment)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

    @property
    def sources(self) -> SourceRegistry:
        """The configured sources, validated by their kinds on first access.

        A table that does not validate, or whose kind no plugin provides, is kept with its
        ``fault`` (a one-line reason): it fails alone, the other sources work.
        """
        registry: SourceRegistry | None = getattr(self, "_source_registry", None)
        if registry is None:
            failed = {error.name: error.error for error in self.plugins.load_errors}
            registry = SourceRegistry.from_settings(
                self.settings.sources,
                self.plugins.source_kinds(),
                plugins=self.plugins.source_plugins(),
                failed_plugins=failed,
            )
            self._source_registry = registry
        return registry

    def source(self, source_id: str) -> Source:
        """A ready instance of configured source ``source_id``, its ``ctx.state`` empty.

        Raises ``UnknownSource`` if none, ``SourceFault`` if its table or plugin is at fault.
        """
        return self.sources[source_id].create()

    async def source_with_state(self, source_id: str, *, http: httpx.AsyncClient | None = None) -> Source:
        """``source(source_id)`` whose ``ctx.state`` is what its last successful collection saved.

        The state is a private copy, read-only in effect: changes are never saved (only a
        collection saves state). Webhook parsing uses it, e.g. to turn a commit SHA into the
        id of the deployment that shipped it. ``http`` reuses a client (one ``source()``
        built) instead of creating one the caller must close. ``UnknownSource`` if none.
        """
        configured = self.sources[source_id]
        await self.open()
        state = await stored_source_state(self.storage, source_id)
        return configured.create(http=http, state=state)

    async def collection_holder(self, source_id: str) -> str | None:
        """Who else is collecting ``source_id`` right now (process, host, since when); ``None`` if nobody.

        Only a storage shared by processes can tell (``SourceLocking``: SQLite, PostgreSQL).
        """
        self.sources[source_id]  # UnknownSource if not configured
        await self.open()
        if not isinstance(self.storage, SourceLocking):
            return None
        return await self.storage.source_lock_holder(source_id)

    async def data_version(self) -> int | None:
        """A number that changes when another process writes to the storage; ``None`` if it cannot tell."""
        await self.open()
        return await self.storage.data_version() if isinstance(self.storage, DataVersioned) else None

    async def source_health(self, source_id: str) -> SourceHealth:
        """Breaker state, collector counters and last collection of one source; ``UnknownSource`` if none."""
        await self.open()
        return await self.sources.health(source_id, self.storage)
