"""Webhook delivery ids already received, so a redelivery is acknowledged without being processed again.

The ids live in the storage when it remembers them (``WebhookDeliveries``: memory, SQLite,
PostgreSQL), so every worker and every restart sees them; otherwise in this process.
"""

from __future__ import annotations

from collections.abc import Mapping

from metrichub_core.storage.base import Storage, WebhookDeliveries
from metrichub_core.storage.memory_deliveries import MemoryDeliveries

__all__ = ["DELIVERY_HEADERS", "delivery_id", "delivery_log"]

# The headers the common senders put a delivery's id in (the same id on every retry of
# one delivery); ours for everyone else. Not GitLab's X-Gitlab-Event-UUID, which recursive
# hooks share, nor X-Gitlab-Webhook-UUID, which names the hook.
DELIVERY_HEADERS = (
    "x-github-delivery",
    "idempotency-key",  # GitLab 17.4+
    "webhook-id",  # Standard Webhooks (GitLab's signed webhooks)
    "x-webhook-id",  # PagerDuty v3
    "x-gitea-delivery",
    "x-request-uuid",
    "x-metrichub-delivery",
)


def delivery_id(headers: Mapping[str, str]) -> str | None:
    for name in DELIVERY_HEADERS:
        value = headers.get(name)
        if value:
            return value[:256]
    return None


def delivery_log(storage: Storage) -> WebhookDeliveries:
    """Where the API remembers delivery ids: the storage if it can, else this process."""
    return storage if isinstance(storage, WebhookDeliveries) else MemoryDeliveries()
