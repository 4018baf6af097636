"""``sqlite:///path.db``: the embedded default backend.

``SQLiteStorage`` keeps events, per-source state and the derived DORA tables in one
SQLite file (``_storage``); its schema and migrations are ``_schema``, the derived DORA
tables ``_dora_schema`` (kept by ``_dora_derive``, read by ``_dora``). What it shares
with the PostgreSQL backend is the core's SQL kit, ``metrichub_core.storage.sql``.
"""

from metrichub_core.storage.sqlite._storage import SQLiteStorage, path_from_url

__all__ = ["SQLiteStorage", "path_from_url"]
