"""DORA results cached per (route, window, filters, profile): one computation per key, dropped on ingest."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_TTL_SECONDS", "WRITE_POLL_SECONDS", "DoraCache", "follow_writes", "report_key"]

DEFAULT_TTL_SECONDS = 60.0
DEFAULT_MAX_ENTRIES = 256
WRITE_POLL_SECONDS = 0.5
"""How often the API asks the storage whether another process wrote (a write shows within a second)."""
logger = logging.getLogger("metrichub.api.cache")


@dataclass(frozen=True)
class _Entry:
    generation: int
    expires: float
    value: bytes


class DoraCache:
    """Serialised reports by key.

    ``invalidate()`` (called on every ingest, webhook, resolve and collection of this
    process, and by ``follow_writes`` when another process wrote) drops everything at
    once. The TTL bounds staleness on a storage that cannot tell about other processes'
    writes. Concurrent misses for one key share one computation, which is cancelled when
    no request waits for it any more (each timed out or went away). It runs in the context
    of the request that started it, so under that request's deadline.
    """

    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self.generation = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._inflight: dict[tuple[Hashable, int], asyncio.Task[bytes]] = {}
        self._waiting: dict[tuple[Hashable, int], int] = {}
        self._aliases: OrderedDict[Hashable, Hashable] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def alias(self, alias: Hashable, key: Hashable) -> None:
        """Remember that ``alias`` (e.g. the raw query string and minute) names ``key``: the fast path skips parsing."""
        self._aliases[alias] = key
        while len(self._aliases) > self.max_entries * 4:
            self._aliases.popitem(last=False)

    def lookup(self, alias: Hashable) -> bytes | None:
        """The fresh value behind ``alias``, counting a hit; ``None`` (and nothing counted) otherwise."""
        key = self._aliases.get(alias)
        entry = self._entries.get(key) if key is not None else None
        if entry is None or entry.generation != self.generation or entry.expires <= self.clock():
            return None
        self.hits += 1
        return entry.value

    def fresh(self, key: Hashable) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.generation == self.generation and entry.expires > self.clock()

    def refresh(self, alias: Hashable, key: Hashable, compute: Callable[[], Awaitable[bytes]]) -> None:
        """Compute ``key`` in the background (once), then let ``alias`` name it; failures are dropped."""

        async def run() -> None:
            await self.get_or_compute(key, compute)
            self.alias(alias, key)

        task = asyncio.ensure_future(run())
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def invalidate(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def get_or_compute(self, key: Hashable, compute: Callable[[], Awaitable[bytes]]) -> tuple[bytes, bool]:
        """Return ``(value, hit)``; a miss runs ``compute`` once however many requests wait for it."""
        entry = self._entries.get(key)
        if entry is not None and entry.generation == self.generation and entry.expires > self.clock():
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.value, True
        self.misses += 1
        generation = self.generation
        flight_key = (key, generation)
        task = self._inflight.get(flight_key)
        if task is None:
            task = asyncio.ensure_future(compute())
            self._inflight[flight_key] = task

            def finished(done: asyncio.Task[bytes]) -> None:
                if self._inflight.get(flight_key) is done:
                    del self._inflight[flight_key]
                if not done.cancelled():
                    done.exception()  # retrieved: a failure nobody waits for any more is not logged as lost

            task.add_done_callback(finished)
        # Shielded: a waiter that times out does not cancel the computation the others share;
        # the last one to go does, so that its work (queries, rules) stops.
        self._waiting[flight_key] = self._waiting.get(flight_key, 0) + 1
        try:
            value = await asyncio.shield(task)
        finally:
            self._waiting[flight_key] -= 1
            if not self._waiting[flight_key]:
                del self._waiting[flight_key]
                if not task.done():
                    if self._inflight.get(flight_key) is task:
                        del self._inflight[flight_key]  # the next request for the key starts afresh
                    task.cancel()
        if generation == self.generation:
            self._entries[key] = _Entry(generation, self.clock() + self.ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value, False


async def follow_writes(
    cache: DoraCache, data_version: Callable[[], Awaitable[int | None]], interval: float = WRITE_POLL_SECONDS
) -> None:
    """Empty ``cache`` whenever ``data_version()`` changes (another process wrote), until cancelled.

    A storage that cannot tell (``None``) is not polled. When the version cannot be read,
    the cache is emptied too: a report may be stale, never wrong for longer than ``interval``.
    """
    last: int | None = None
    while True:
        try:
            current = await data_version()
        except Exception as exc:  # the storage is away: nothing cached can be trusted
            logger.debug("data version unavailable: %s", type(exc).__name__)
            cache.invalidate()
            last = None
        else:
            if current is None:
                return
            if last is not None and current != last:
                cache.invalidate()
            last = current
        await asyncio.sleep(interval)


def report_key(what: str, arguments: Mapping[str, Any]) -> Hashable:
    """The cache key of a report (``what`` = ``"report"`` or ``"trend"``) for the engine's keyword arguments."""
    return (what, *((name, _hashable(value)) for name, value in sorted(arguments.items())))


def _hashable(value: Any) -> Hashable:
    if isinstance(value, Mapping):
        return tuple(sorted((str(key), _hashable(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_hashable(item) for item in value)
    return value  # type: ignore[no-any-return]
