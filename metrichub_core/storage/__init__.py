"""Storage backends, chosen by URL scheme."""

from metrichub_core.storage.base import (
    DataVersioned,
    DeliveryRetention,
    EventQuery,
    Page,
    SourceLocking,
    Storage,
    StorageError,
    StorageHealth,
    UnknownStorageScheme,
    WebhookDeliveries,
)

__all__ = [
    "DataVersioned",
    "DeliveryRetention",
    "EventQuery",
    "Page",
    "SourceLocking",
    "Storage",
    "StorageError",
    "StorageHealth",
    "UnknownStorageScheme",
    "WebhookDeliveries",
]
