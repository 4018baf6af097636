"""PagerDuty incidents (REST v2 objects and v3 webhook ``event.data``) → ``Incident``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from metrichub_core import Incident
from metrichub_core.shipping import caused_by_reference

__all__ = [
    "body_reference",
    "notes_reference",
    "parse_time",
    "resolved_at_of",
    "severity_of",
    "to_incident",
    "updated_at_of",
]


def parse_time(value: str) -> datetime:
    """An ISO 8601 time from PagerDuty (``Z`` or an offset) as aware UTC."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {value!r}")
    return moment.astimezone(UTC)


def severity_of(incident: dict[str, Any]) -> str | None:
    """The priority's summary (``P1``), else the urgency (``high``/``low``)."""
    priority = incident.get("priority")
    if isinstance(priority, dict) and priority.get("summary"):
        return str(priority["summary"])
    urgency = incident.get("urgency")
    return str(urgency) if urgency else None


def resolved_at_of(incident: dict[str, Any]) -> datetime | None:
    """A REST incident's ``resolved_at``; ``last_status_change_at`` for a resolved one without it.

    ``resolved_at`` exists since 2023-05-08 (PagerDuty's changelog); before, the time of the last
    status change of a resolved incident was its resolution (DevLake reads it so).
    """
    if incident.get("status") != "resolved":
        return None
    value = incident.get("resolved_at") or incident.get("last_status_change_at")
    return parse_time(str(value)) if value else None


def updated_at_of(incident: dict[str, Any]) -> datetime | None:
    """A REST incident's version: its ``updated_at``, else ``last_status_change_at`` (webhooks use the
    event's ``occurred_at``: their ``data`` has no update time)."""
    value = incident.get("updated_at") or incident.get("last_status_change_at")
    return parse_time(str(value)) if value else None


def body_reference(incident: dict[str, Any]) -> str | None:
    """A ``Caused-by:`` line in the incident's body details, when the payload carries them."""
    body = incident.get("body")
    details = body.get("details") if isinstance(body, dict) else None
    return caused_by_reference(details) if isinstance(details, str) else None


def notes_reference(notes: Iterable[dict[str, Any]]) -> str | None:
    """The ``Caused-by:`` reference of the newest note that has one (a later note corrects an earlier)."""
    found: tuple[str, str] | None = None
    for note in notes:
        reference = caused_by_reference(str(note.get("content") or ""))
        created = str(note.get("created_at") or "")
        if reference and (found is None or _later(created, found[0])):
            found = (created, reference)
    return found[1] if found else None


def _later(created: str, than: str) -> bool:
    try:
        return parse_time(created) >= parse_time(than)
    except ValueError:
        return True  # unreadable times: the later note in the list wins


def to_incident(
    incident: dict[str, Any],
    *,
    source: str,
    service: str,
    environment: str,
    deployment_related: bool,
    started_at: datetime,
    resolved_at: datetime | None,
    caused_by: str | None,
    updated_at: datetime | None,
) -> Incident:
    """``id`` = PagerDuty's incident id; ``url`` = its ``html_url``; severity per ``severity_of``;
    ``updated_at`` keeps a replayed older event from replacing a newer state."""
    title = incident.get("title") or incident.get("summary")
    return Incident(
        id=str(incident["id"]),
        source=source,
        service=service,
        environment=environment,
        started_at=started_at,
        resolved_at=resolved_at,
        severity=severity_of(incident),
        caused_by=caused_by,
        deployment_related=deployment_related,
        title=str(title) if title else None,
        url=incident.get("html_url"),
        updated_at=updated_at,
    )
