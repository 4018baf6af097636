"""Storage backends, chosen by URL scheme."""

from metrichub_core.storage.base import (
    DataVersioned,
    EventQuery,
    Page,
    SourceLocking,
    Storage,
    StorageError,
    StorageHealth,
    UnknownStorageScheme,
)

__all__ = [
    "DataVersioned",
    "EventQuery",
    "Page",
    "SourceLocking",
    "Storage",
    "StorageError",
    "StorageHealth",
    "UnknownStorageScheme",
]
