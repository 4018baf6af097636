"""Registers the built-in ``memory://`` and ``sqlite:///`` storage backends."""

from __future__ import annotations

from collections.abc import Callable

from metrichub_core.hookspecs import hookimpl
from metrichub_core.storage.base import Storage
from metrichub_core.storage.memory import MemoryStorage
from metrichub_core.storage.sqlite import SQLiteStorage


@hookimpl
def register_storage() -> dict[str, Callable[[str], Storage]]:
    return {"memory": MemoryStorage, "sqlite": SQLiteStorage}
