"""Storage backends, chosen by URL scheme."""

from metrichub_core.storage.base import (
    EventQuery,
    Page,
    Storage,
    StorageError,
    StorageHealth,
    UnknownStorageScheme,
)

__all__ = ["EventQuery", "Page", "Storage", "StorageError", "StorageHealth", "UnknownStorageScheme"]
