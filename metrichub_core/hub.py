"""``MetricHub``: the one object the CLI, the API and embedding programs talk to."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from metrichub_core.config import Settings, load_settings
from metrichub_core.models import Change, Deployment, Event, Incident
from metrichub_core.plugins import PluginHost
from metrichub_core.storage.base import Storage

__all__ = ["MetricHub"]

_EVENT_TYPES = (Deployment, Change, Incident)


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
        return await self.storage.upsert(batch)

    async def dora(self, **query: Any) -> Any:
        """The DORA report for a window and filters (see ``metrichub_core.dora``)."""
        raise NotImplementedError("the DORA engine lands with issue 3")

    async def collect(self, source_ids: list[str] | None = None, full: bool = False) -> Any:
        """Collect the configured sources concurrently (see ``metrichub_core.collection``)."""
        raise NotImplementedError("collection lands with issue 4")
