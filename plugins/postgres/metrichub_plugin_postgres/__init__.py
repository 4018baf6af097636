"""PostgreSQL storage for MetricHub: ``storage = "postgresql://user:pass@host/db"``.

Installing the distribution registers the ``postgresql://`` and ``postgres://``
schemes through the ``register_storage`` hook; nothing imports this package by name.
"""

from __future__ import annotations

from collections.abc import Callable

from metrichub_core import Storage, hookimpl
from metrichub_plugin_postgres._storage import PostgresStorage, source_lock_key

__version__ = "0.1.0"

__all__ = ["PostgresStorage", "__version__", "register_storage", "source_lock_key"]


@hookimpl
def register_storage() -> dict[str, Callable[[str], Storage]]:
    return {"postgresql": PostgresStorage, "postgres": PostgresStorage}
