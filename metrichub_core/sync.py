"""``SyncMetricHub``: the hub for scripts and notebooks, without ``await``.

The async hub runs on an event loop in a private thread, so this works both in
plain scripts and inside Jupyter, whose own loop is already running.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from metrichub_core.hub import MetricHub
from metrichub_core.models import Event

__all__ = ["SyncMetricHub"]

T = TypeVar("T")


class SyncMetricHub:
    """Blocking twins of ``MetricHub``'s methods; takes the same arguments."""

    def __init__(self, storage: str | None = None, *, hub: MetricHub | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="metrichub-sync", daemon=True)
        self._thread.start()
        self.hub = hub or MetricHub(storage)

    @classmethod
    def from_config(cls, path: str | Path | None = None, *, storage: str | None = None) -> SyncMetricHub:
        return cls(hub=MetricHub.from_config(path, storage=storage))

    def ingest(self, events: Iterable[Event]) -> int:
        return self._run(self.hub.ingest(events))

    def dora(self, **query: Any) -> Any:
        return self._run(self.hub.dora(**query))

    def dora_trend(self, **query: Any) -> Any:
        return self._run(self.hub.dora_trend(**query))

    def collect(self, source_ids: list[str] | None = None, full: bool = False) -> Any:
        return self._run(self.hub.collect(source_ids, full=full))

    def close(self) -> None:
        """Close the hub and stop the private loop; the object is unusable afterwards."""
        if self._loop.is_closed():
            return
        self._run(self.hub.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> SyncMetricHub:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()
