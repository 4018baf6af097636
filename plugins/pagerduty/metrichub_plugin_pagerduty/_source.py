"""``PagerDutySource``: incidents of the mapped services, new ones and the ones still open."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from metrichub_core import Event, Incident, Source, SourceConfig, SourceContext
from metrichub_plugin_pagerduty._client import PagerDutyClient, PagerDutyError, Params
from metrichub_plugin_pagerduty._config import PagerDutyConfig
from metrichub_plugin_pagerduty._incidents import (
    body_reference,
    notes_reference,
    parse_time,
    resolved_at_of,
    to_incident,
    updated_at_of,
)
from metrichub_plugin_pagerduty._state import STATE_VERSION, OpenIncident, PagerDutyState
from metrichub_plugin_pagerduty._webhooks import parse_event, verify_signature
from metrichub_plugin_pagerduty._windows import MAX_WINDOW, query_time, windows

__all__ = ["PagerDutySource"]

LOOKBACK = timedelta(minutes=10)  # re-read incidents created just before the cursor (indexing lag)
AHEAD = timedelta(hours=1)  # ``until`` lies this far ahead: PagerDuty's clock may run ahead of ours
OPEN_STATUSES = ("triggered", "acknowledged")


@dataclass
class _Run:
    """One collection's bookkeeping."""

    client: PagerDutyClient
    state: PagerDutyState
    tracked: dict[str, OpenIncident]  # last run's open incidents
    since: datetime | None  # the host's cursor; ``None`` on a full run
    seen: set[str] = field(default_factory=set)
    unmapped: Counter[str] = field(default_factory=Counter)
    other_urgency: int = 0
    notes_read: int = 0


class PagerDutySource(Source):
    """Incidents of the services in ``services``, for change failure rate and recovery time.

    Each run lists the incidents created since the cursor (``since`` filters on
    ``created_at``) and refreshes the ones the last run saw unresolved: one list request
    per window of their creation times asks for those still open, and only the ones that
    left that list (resolved, moved, merged) are fetched one by one.
    """

    kind: ClassVar[str] = "pagerduty"
    Config: ClassVar[type[SourceConfig]] = PagerDutyConfig

    def __init__(self, id: str, config: SourceConfig, ctx: SourceContext) -> None:
        if not isinstance(config, PagerDutyConfig):
            config = PagerDutyConfig.model_validate(config.model_dump())
        super().__init__(id, config, ctx)
        self.settings: PagerDutyConfig = config
        self.last_request_count = 0

    def _client(self) -> PagerDutyClient:
        return PagerDutyClient(
            self.ctx.http, self.settings.base_url, self.settings.token.get_secret_value(), self.ctx.logger
        )

    def _scope(self) -> dict[str, list[str]]:
        return {"services": sorted(self.settings.services), "urgencies": list(self.settings.urgencies)}

    def _filters(self) -> dict[str, str | list[str]]:
        filters: dict[str, str | list[str]] = {
            "service_ids[]": sorted(self.settings.services),
            "sort_by": "created_at:asc",
            "time_zone": "UTC",
        }
        if self.settings.urgencies:
            filters["urgencies[]"] = list(self.settings.urgencies)
        return filters

    async def check(self) -> None:
        now = datetime.now(UTC)
        params = {**self._filters(), "since": query_time(now - timedelta(days=1)), "until": query_time(now + AHEAD)}
        await self._client().get("/incidents", {**params, "limit": 1})

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        now = datetime.now(UTC)
        saved = PagerDutyState.load(self.ctx.state)
        current = saved.version == STATE_VERSION
        full = since is None or not current or saved.scope != self._scope()
        state = PagerDutyState(scope=self._scope(), caused_by=saved.caused_by if current else {})
        run = _Run(self._client(), state, saved.open if current else {}, None if full else since)
        start = now - timedelta(days=self.settings.history_days) if full or since is None else since - LOOKBACK
        for low, high in windows(start, now + AHEAD):
            async for item in self._list(run, low, high, {}):
                incident = await self._take(run, item)
                if incident is not None:
                    yield incident
        async for incident in self._refresh_open(run):
            yield incident
        self._log(run)
        self.last_request_count = run.client.requests
        self.ctx.state.clear()
        self.ctx.state.update(state.dump())

    async def _refresh_open(self, run: _Run) -> AsyncIterator[Incident]:
        """The incidents last seen unresolved that this run has not seen yet.

        One list of the still-open ones per window of their creation times, then one
        ``GET /incidents/{id}`` for each that left that list.
        """
        stale = {key: item for key, item in run.tracked.items() if key not in run.seen}
        for low, high in _covering(sorted(parse_time(item.created_at) for item in stale.values())):
            async for item in self._list(run, low, high, {"statuses[]": list(OPEN_STATUSES)}):
                incident = await self._take(run, item)
                if incident is not None:
                    yield incident
        for incident_id in sorted(key for key in stale if key not in run.seen):
            try:
                body = await run.client.get(f"/incidents/{incident_id}")
            except PagerDutyError as exc:
                if exc.status_code != 404:
                    raise
                self.ctx.logger.info(
                    "%s: incident %s is gone (merged or deleted); no longer followed", self.id, incident_id
                )
                continue
            incident = await self._take(run, body["incident"])
            if incident is not None:
                yield incident

    async def _list(self, run: _Run, low: datetime, high: datetime, extra: Params) -> AsyncIterator[dict[str, Any]]:
        """Incidents created in ``[low, high)``, oldest first.

        Past 10,000 results (``offset + limit`` may not exceed it) the rest of the window is
        asked again from the last creation time seen (a second earlier, in case ``since`` is
        exclusive); incidents seen twice are dropped by id.
        """
        while True:
            params = {**self._filters(), **extra, "since": query_time(low), "until": query_time(high)}
            pages = run.client.pages("/incidents", params, "incidents")
            last: datetime | None = None
            async for page in pages:
                for item in page:
                    last = parse_time(str(item["created_at"]))
                    yield item
            if not pages.truncated or last is None:
                return
            resume = last.replace(microsecond=0) - timedelta(seconds=1)
            if resume <= low:
                raise PagerDutyError(f"GET /incidents: over 10,000 incidents created at {query_time(last)}")
            self.ctx.logger.info("%s: 10,000 incidents in one window; going on from %s", self.id, query_time(resume))
            low = resume

    async def _take(self, run: _Run, item: dict[str, Any]) -> Incident | None:
        incident_id = str(item["id"])
        if incident_id in run.seen:
            return None
        run.seen.add(incident_id)
        service_id = str((item.get("service") or {}).get("id"))
        service = self.settings.services.get(service_id)
        if service is None:
            run.unmapped[service_id] += 1
            return None
        if not self.settings.wants_urgency(item.get("urgency")):
            run.other_urgency += 1
            return None
        started_at = parse_time(str(item["created_at"]))
        resolved_at = resolved_at_of(item)
        reference = body_reference(item)
        if resolved_at is None:
            run.state.open[incident_id] = OpenIncident(str(item["created_at"]), service_id)
        elif (
            reference is None
            and self.settings.caused_by_from_notes
            and _first_seen_resolved(run, incident_id, started_at)
        ):
            run.notes_read += 1
            notes = (await run.client.get(f"/incidents/{incident_id}/notes")).get("notes") or []
            reference = notes_reference(notes)
        run.state.remember_cause(incident_id, reference)
        return to_incident(
            item,
            source=self.id,
            service=service,
            environment=self.settings.environment,
            deployment_related=self.settings.deployment_related,
            started_at=started_at,
            resolved_at=resolved_at,
            caused_by=reference or run.state.caused_by.get(incident_id),
            updated_at=updated_at_of(item),
        )

    def _read_notes(self, run: _Run, incident_id: str, started_at: datetime) -> bool:
        return self.settings.caused_by_from_notes and _first_seen_resolved(run, incident_id, started_at)

    def _log(self, run: _Run) -> None:
        if run.unmapped:
            counts = ", ".join(f"{service} ({count})" for service, count in sorted(run.unmapped.items()))
            self.ctx.logger.info(
                "%s: skipped %d incidents of services not in `services`: %s",
                self.id,
                sum(run.unmapped.values()),
                counts,
            )
        if run.other_urgency:
            self.ctx.logger.info("%s: skipped %d incidents of other urgencies", self.id, run.other_urgency)
        self.ctx.logger.info(
            "%s: %d PagerDuty requests (%d for notes); %d incidents still open",
            self.id,
            run.client.requests,
            run.notes_read,
            len(run.state.open),
        )

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        verify_signature([secret.get_secret_value() for secret in self.settings.webhook_secrets], headers, body)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[Event]:
        return parse_event(self.settings, self.id, PagerDutyState.load(self.ctx.state), body, self.ctx.logger)


def _first_seen_resolved(run: _Run, incident_id: str, started_at: datetime) -> bool:
    """Whether no earlier run saw this incident resolved (so its notes were not read yet).

    On a full run every incident counts as new. Otherwise an incident is new when it was
    open last time or was created after the previous run started; the rest were re-listed
    only because of the look-back and were seen resolved then.
    """
    return run.since is None or incident_id in run.tracked or started_at >= run.since


def _covering(created: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Few windows of at most ``MAX_WINDOW`` that hold every time of ``created`` (sorted)."""
    cover: list[tuple[datetime, datetime]] = []
    for moment in created:
        if cover and moment < cover[-1][1]:
            continue
        low = moment.replace(microsecond=0)
        cover.append((low, low + MAX_WINDOW))
    return [(low, min(high, max(created) + timedelta(seconds=1))) for low, high in cover]
