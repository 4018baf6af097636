"""Webhook delivery ids already stored, so a redelivery is acknowledged without being processed again."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

__all__ = ["DELIVERY_HEADERS", "DeliveryLog", "delivery_id"]

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


class DeliveryLog:
    """The last ``capacity`` delivery ids per source (events are upserted by key anyway, so this only saves work)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def seen(self, source_id: str, delivery: str) -> bool:
        return (source_id, delivery) in self._seen

    def add(self, source_id: str, delivery: str) -> None:
        self._seen[(source_id, delivery)] = None
        self._seen.move_to_end((source_id, delivery))
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
