"""NUL characters are refused at the edge: PostgreSQL can neither store nor compare one (SQLite can)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from metrichub_core.api.errors import ApiError, field_error, field_errors

__all__ = ["MESSAGE", "nul_parameter_error", "refuse_nul_in_events"]

MESSAGE = "must not contain NUL characters"


def nul_parameter_error(where: str, name: str) -> ApiError:
    """``400 validation_error`` naming the query or path parameter ``name``."""
    return ApiError(
        "validation_error", f"Invalid {where} parameter {name}: {MESSAGE}.", [field_error(MESSAGE, where, name)]
    )


def refuse_nul_in_events(events: Sequence[BaseModel], *, indexed: bool, message: str) -> None:
    """Raise ``400 validation_error`` naming every field of ``events`` that holds a NUL (``[1].labels.team``)."""
    errors = []
    for index, event in enumerate(events):
        for loc in _locations(event.model_dump(), ()):
            errors.append({"loc": (index, *loc) if indexed else loc, "msg": MESSAGE, "type": "value_error"})
    if errors:
        raise ApiError("validation_error", message, field_errors(errors))


def _locations(value: Any, loc: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
    if isinstance(value, str):
        return [loc] if "\x00" in value else []
    if isinstance(value, dict):
        keys = [(*loc, key.replace("\x00", "\\x00")) for key in value if isinstance(key, str) and "\x00" in key]
        return keys + [where for key, item in value.items() for where in _locations(item, (*loc, key))]
    if isinstance(value, list | tuple):
        return [where for index, item in enumerate(value) for where in _locations(item, (*loc, index))]
    return []
