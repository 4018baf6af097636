"""What a PagerDuty source keeps in ``ctx.state`` between runs (JSON-compatible).

- ``open``: incident id → ``{"created_at", "service"}`` of every incident last seen
  unresolved. PagerDuty's ``since`` filters on ``created_at``, so an incident opened before
  the cursor and resolved after it would never show again: each run refreshes these.
- ``caused_by``: incident id → the ``Caused-by:`` reference read from its notes (the newest
  ``CAUSED_BY_KEPT``), so a webhook, whose payload has no notes, keeps it.
- ``scope``: the services and urgencies the state was built for; another scope re-reads
  the whole history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CAUSED_BY_KEPT", "STATE_VERSION", "OpenIncident", "PagerDutyState"]

STATE_VERSION = 1
CAUSED_BY_KEPT = 2000


@dataclass(frozen=True)
class OpenIncident:
    created_at: str  # ISO 8601, as PagerDuty wrote it
    service: str  # PagerDuty service id


@dataclass
class PagerDutyState:
    scope: dict[str, list[str]]
    open: dict[str, OpenIncident] = field(default_factory=dict)
    caused_by: dict[str, str] = field(default_factory=dict)
    version: int = STATE_VERSION

    @classmethod
    def load(cls, raw: Any) -> PagerDutyState:
        raw = raw if isinstance(raw, dict) else {}
        open_ = {
            str(key): OpenIncident(str(value["created_at"]), str(value["service"]))
            for key, value in (raw.get("open") or {}).items()
            if isinstance(value, dict) and value.get("created_at") and value.get("service")
        }
        return cls(
            scope=dict(raw.get("scope") or {}),
            open=open_,
            caused_by={str(key): str(value) for key, value in (raw.get("caused_by") or {}).items()},
            version=int(raw.get("version") or 0),
        )

    def dump(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "scope": self.scope,
            "open": {key: {"created_at": item.created_at, "service": item.service} for key, item in self.open.items()},
            "caused_by": self.caused_by,
        }

    def remember_cause(self, incident_id: str, reference: str | None) -> None:
        if reference is None:
            return
        self.caused_by.pop(incident_id, None)
        self.caused_by[incident_id] = reference  # newest last: the oldest are dropped first
        for stale in list(self.caused_by)[:-CAUSED_BY_KEPT]:
            del self.caused_by[stale]
