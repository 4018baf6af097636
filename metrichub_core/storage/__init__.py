"""Storage backends, chosen by URL scheme."""

from metrichub_core.storage.base import (
    EventQuery,
    Page,
    SourceLocking,
    Storage,
    StorageError,
    StorageHealth,
    UnknownStorageScheme,
)

__all__ = ["EventQuery", "Page", "SourceLocking", "Storage", "StorageError", "StorageHealth", "UnknownStorageScheme"]
