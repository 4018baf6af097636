"""The ``source_state`` table's SQL: a source's saved collection state, as JSON text."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from metrichub_core.storage.sql.dialect import Dialect
from metrichub_core.storage.sql.paging import to_micros

__all__ = ["get_state_sql", "set_state", "state_of"]


def get_state_sql(dialect: Dialect) -> str:
    """One parameter, the source id; one row of one column (see ``state_of``) or none."""
    return f"SELECT state FROM source_state WHERE source_id = {dialect.mark}"


def state_of(row: Sequence[Any] | None) -> dict[str, Any] | None:
    """The state of a row of ``get_state_sql``, ``None`` when there was no row."""
    return json.loads(row[0]) if row else None


def set_state(dialect: Dialect, source_id: str, state: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The statement and parameters replacing ``source_id``'s state."""
    sql = dialect.upsert(
        "source_state", (("source_id", "text"), ("state", "text"), ("updated_at", "int8")), ("source_id",)
    )
    return sql, (source_id, json.dumps(dict(state)), to_micros(datetime.now(UTC)))
