"""Webhook delivery ids remembered in this process: ``memory://``'s ``WebhookDeliveries``, and the
API's fallback for a storage without it."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from metrichub_core.storage.base import DeliveryRetention

__all__ = ["MemoryDeliveries"]


class MemoryDeliveries:
    """The ids in the order first claimed, with when; the same rule as the SQL kit's ``deliveries``."""

    def __init__(self) -> None:
        self._received: OrderedDict[tuple[str, str], datetime] = OrderedDict()

    async def claim_delivery(
        self, source_id: str, delivery: str, *, at: datetime, retention: DeliveryRetention
    ) -> bool:
        cutoff = at - retention.ttl
        # Claimed in time order (but for clock steps), so the expired ones are at the front.
        while self._received and next(iter(self._received.values())) < cutoff:
            self._received.popitem(last=False)
        received = self._received.get((source_id, delivery))
        if received is not None and received >= cutoff:
            return False
        self._received.pop((source_id, delivery), None)
        self._received[(source_id, delivery)] = at
        while len(self._received) > retention.max_ids:
            self._received.popitem(last=False)
        return True

    async def release_delivery(self, source_id: str, delivery: str) -> None:
        self._received.pop((source_id, delivery), None)
