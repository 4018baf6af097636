"""Collections in the background: on request, and every ``schedule_minutes`` per source.

``MetricHub.runner()`` builds a ``CollectionRunner`` for a hub and ``MetricHub.scheduled()``
keeps its sources on their schedules, with or without the API (which uses the same).
One collection per source at a time in this process. Across processes, every collection
holds the source's lock where the storage provides ``SourceLocking`` (SQLite, PostgreSQL):
a scheduled run whose lock another process holds is skipped (and is not an outcome); one
asked for through the API fails, naming the holder. Shutdown stops the timers at once and
lets a collection in flight finish (up to a grace period), so the batch being stored is kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from metrichub_core.collection import SourceResult

__all__ = ["DEFAULT_GRACE_SECONDS", "CollectionBusy", "CollectionOutcome", "CollectionRunner"]

logger = logging.getLogger("metrichub.scheduling")

DEFAULT_GRACE_SECONDS = 30.0

Collect = Callable[[str, bool], Awaitable[SourceResult]]
LastSuccess = Callable[[str], Awaitable[datetime | None]]


class CollectionBusy(Exception):
    """A collection of this source is already running."""


@dataclass(frozen=True)
class CollectionOutcome:
    source: str
    trigger: str
    started_at: datetime
    finished_at: datetime
    ok: bool
    result: SourceResult | None = None
    error: str | None = None
    skipped: bool = False
    """A scheduled run not made: another process holds the source's lock (never in ``last``)."""


class CollectionRunner:
    def __init__(
        self,
        collect: Collect,
        *,
        on_finished: Callable[[CollectionOutcome], None] | None = None,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
    ) -> None:
        """``collect(source_id, full)`` collects one source; ``on_finished`` hears of every outcome."""
        self._collect = collect
        self._on_finished = on_finished
        self.grace_seconds = grace_seconds
        self.running: dict[str, asyncio.Task[CollectionOutcome]] = {}
        self.last: dict[str, CollectionOutcome] = {}
        self._timers: list[asyncio.Task[None]] = []
        self._closing = False

    def start(self, source_id: str, *, full: bool = False, trigger: str = "api") -> asyncio.Task[CollectionOutcome]:
        if self._closing:
            raise CollectionBusy(f"the server is shutting down; {source_id} was not collected")
        if source_id in self.running:
            raise CollectionBusy(f"a collection of {source_id} is already running")
        task = asyncio.create_task(self._run(source_id, full, trigger), name=f"collect:{source_id}")
        self.running[source_id] = task
        task.add_done_callback(lambda _: self.running.pop(source_id, None))
        return task

    async def _run(self, source_id: str, full: bool, trigger: str) -> CollectionOutcome:
        started = datetime.now(UTC)
        clock = time.perf_counter()
        try:
            result = await self._collect(source_id, full)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("collection of %s failed: %s", source_id, type(exc).__name__)
            return self._finished(
                CollectionOutcome(source_id, trigger, started, datetime.now(UTC), ok=False, error=type(exc).__name__)
            )
        if result.locked_by and trigger == "schedule":
            logger.info("scheduled collection of %s skipped: %s", source_id, result.error)
            return CollectionOutcome(source_id, trigger, started, datetime.now(UTC), ok=True, skipped=True)
        error = None if result.ok else result.error or "failed"
        logger.info("collection of %s (%s) finished in %.1fs", source_id, trigger, time.perf_counter() - clock)
        return self._finished(
            CollectionOutcome(source_id, trigger, started, datetime.now(UTC), result.ok, result, error)
        )

    def _finished(self, outcome: CollectionOutcome) -> CollectionOutcome:
        self.last[outcome.source] = outcome
        if self._on_finished is not None:
            self._on_finished(outcome)
        return outcome

    def schedule(self, schedules: Mapping[str, float], last_success: LastSuccess | None = None) -> None:
        """Collect each source every ``minutes``.

        The first run is due one period after the source's last success (``last_success``),
        so a restart keeps the rhythm, and at once for a source never collected.
        """
        for source_id, minutes in schedules.items():
            timer = asyncio.create_task(
                self._every(source_id, minutes * 60, last_success), name=f"schedule:{source_id}"
            )
            self._timers.append(timer)

    async def _every(self, source_id: str, seconds: float, last_success: LastSuccess | None) -> None:
        delay = seconds
        if last_success is not None:
            try:
                previous = await last_success(source_id)
            except Exception as exc:
                logger.warning(
                    "last collection of %s unknown (%s): first run in one period", source_id, type(exc).__name__
                )
            else:
                elapsed = (datetime.now(UTC) - previous).total_seconds() if previous is not None else seconds
                delay = min(seconds, max(0.0, seconds - elapsed))
        while True:
            await asyncio.sleep(delay)
            delay = seconds
            try:
                # Shielded: stopping the timer must not cancel the collection; close() waits for it.
                await asyncio.shield(self.start(source_id, trigger="schedule"))
            except CollectionBusy:
                logger.info("scheduled collection of %s skipped: one is already running", source_id)

    async def close(self) -> None:
        self._closing = True
        for timer in self._timers:
            timer.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        self._timers.clear()
        in_flight = list(self.running.values())
        if not in_flight:
            return
        logger.info("waiting up to %gs for %d collection(s) in flight", self.grace_seconds, len(in_flight))
        _, pending = await asyncio.wait(in_flight, timeout=self.grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
