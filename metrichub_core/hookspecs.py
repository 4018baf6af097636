"""The plugin contract: every hook MetricHub calls, declared and documented here.

Plugins implement hooks with ``from metrichub_core import hookimpl``; an
implementation may accept any subset of the arguments declared below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from metrichub_core.sources import Source
    from metrichub_core.storage import Storage

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("metrichub")
hookimpl = pluggy.HookimplMarker("metrichub")


@hookspec
def register_sources() -> list[type[Source]]:  # type: ignore[empty-body]
    """Return the ``Source`` classes this plugin provides.

    Each class's ``kind`` is the name used in ``[sources.<id>] kind = ...``; two
    plugins registering the same kind is a load error naming both.
    """


@hookspec
def register_storage() -> dict[str, Callable[[str], Storage]]:  # type: ignore[empty-body]
    """Return storage backend factories keyed by URL scheme.

    ``{"postgresql": factory}`` makes ``storage = "postgresql://..."`` call
    ``factory(url)``; the host then awaits ``open()`` on the result.
    """
