"""The DORA query side of ``memory://``: the reference rules over the stored events."""

from __future__ import annotations

from metrichub_core.dora import DoraFacts, FactsRequest
from metrichub_core.dora.reference import facts_from_events
from metrichub_core.models import Change, Deployment, Event, Incident

__all__ = ["MemoryDoraData"]


class MemoryDoraData:
    """Mixed into ``MemoryStorage``; exact, and fast enough for tests and embedding."""

    def all_events(self) -> list[Event]:
        raise NotImplementedError

    async def dora_facts(self, request: FactsRequest) -> list[DoraFacts]:
        events = self.all_events()
        return facts_from_events(
            [event for event in events if isinstance(event, Deployment)],
            [event for event in events if isinstance(event, Change)],
            [event for event in events if isinstance(event, Incident)],
            request,
        )
