"""The DORA query side of ``memory://``: the reference rules over the stored events."""

from __future__ import annotations

import asyncio

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
        # CPU-bound: off the event loop, in a thread (which sees the request's deadline: to_thread copies the context).
        return await asyncio.to_thread(
            facts_from_events,
            [event for event in events if isinstance(event, Deployment)],
            [event for event in events if isinstance(event, Change)],
            [event for event in events if isinstance(event, Incident)],
            request,
        )
