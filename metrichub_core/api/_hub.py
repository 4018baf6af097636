"""Everything the API asks of ``MetricHub`` about sources, in one place.

Source entries, health, collections and webhook instances come from the hub's
``SourceRegistry``; this module turns them into what the routes show, without
config values (secrets live there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from metrichub_core.hub import MetricHub
from metrichub_core.redaction import redact_url
from metrichub_core.sources import Source

__all__ = ["HubAccess", "SourceEntry"]

logger = logging.getLogger("metrichub.api")


@dataclass(frozen=True)
class SourceEntry:
    """A configured source as the API shows it: never its config values."""

    id: str
    kind: str
    base_url: str | None
    schedule_minutes: float | None
    webhooks: bool
    fault: str | None = None


@dataclass
class HubAccess:
    hub: MetricHub
    _webhook_sources: dict[str, Source] = field(default_factory=dict)

    def sources(self) -> list[SourceEntry]:
        return [
            SourceEntry(
                id=source.id,
                kind=source.kind,
                base_url=redact_url(source.base_url) if source.base_url else None,
                schedule_minutes=source.schedule_minutes,
                webhooks=source.accepts_webhooks,
                fault=redact_url(source.fault) if source.fault else None,
            )
            for source in sorted(self.hub.sources, key=lambda source: source.id)
        ]

    def source(self, source_id: str) -> SourceEntry | None:
        return next((entry for entry in self.sources() if entry.id == source_id), None)

    async def collection_holder(self, source_id: str) -> str | None:
        """Another process collecting ``source_id`` now, if any (redacted)."""
        holder = await self.hub.collection_holder(source_id)
        return redact_url(holder) if holder else None

    def webhook_source(self, source_id: str) -> Source:
        """The source instance that verifies ``source_id``'s webhooks (built once, no state)."""
        source = self._webhook_sources.get(source_id)
        if source is None:
            source = self.hub.source(source_id)
            self._webhook_sources[source_id] = source
        return source

    async def webhook_parser(self, source_id: str) -> Source:
        """An instance that parses a verified delivery: the stored state loaded (a fresh copy each time).

        It shares the verifying instance's HTTP client, so nothing new needs closing.
        """
        verifier = self.webhook_source(source_id)
        return await self.hub.source_with_state(source_id, http=verifier.ctx.http)

    async def close(self) -> None:
        for source in self._webhook_sources.values():
            try:
                await source.ctx.http.aclose()
            except Exception as exc:  # pragma: no cover - closing is best effort
                logger.debug("closing the webhook client of %s failed: %s", source.id, type(exc).__name__)
        self._webhook_sources.clear()
