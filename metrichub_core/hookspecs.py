"""The plugin contract: every hook MetricHub calls, declared and documented here.

Plugins implement hooks with ``from metrichub_core import hookimpl``; an
implementation may accept any subset of the arguments declared below. Each hook
has a section in ``docs/plugins.md`` and a ``test_hook_<name>`` test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from metrichub_core.models import Event
    from metrichub_core.sources import Source
    from metrichub_core.storage import Storage

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("metrichub")
hookimpl = pluggy.HookimplMarker("metrichub")


@hookspec
def register_sources() -> list[type[Source]]:  # type: ignore[empty-body]
    """Return the ``Source`` classes this plugin provides.

    Called once, when the plugin is loaded. Each class's ``kind`` is the name used
    in ``[sources.<id>] kind = ...`` and its ``Config`` (a ``SourceConfig``
    subclass) validates that table. Two plugins registering the same kind is a load
    error naming both; the second plugin is not loaded.
    """


@hookspec
def register_storage() -> dict[str, Callable[[str], Storage]]:  # type: ignore[empty-body]
    """Return storage backend factories keyed by URL scheme.

    Called once, when the plugin is loaded. ``{"postgresql": factory}`` makes
    ``storage = "postgresql://..."`` call ``factory(url)``; the host then awaits
    ``open()`` on the result. Two plugins claiming the same scheme is a load error
    naming both.
    """


@hookspec
def on_events_ingested(source_id: str | None, events: list[Event]) -> Awaitable[None] | None:
    """Observe events right after they are stored.

    Called after every batch a collection stores (``source_id`` is the configured
    source id) and after events are ingested directly (``source_id`` is ``None``).
    ``events`` is the stored batch, in order. May be ``async def``: the host awaits
    it. Must not modify the events; an exception is logged and ignored, so an
    observer can never fail an ingestion.
    """
