"""The per-repository cursor a GitHub source keeps in ``ctx.state`` (JSON-compatible)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from metrichub_core.shipping import ShipHistory
from metrichub_plugin_github._deployments import RunRecord, parse_time

__all__ = ["PENDING_GIVE_UP", "PENDING_MAX", "RepositoryState"]

PENDING_GIVE_UP = timedelta(days=7)  # still running a week after a newer deployment started: abandoned
PENDING_MAX = 50  # running deployments asked about again, per repository (the newest)


class RepositoryState:
    """The per-repository cursor kept in ``ctx.state`` (JSON-compatible)."""

    def __init__(
        self,
        last_id: int | None,
        pending: dict[str, dict[str, Any]],
        history: ShipHistory,
        issues_updated_at: str | None = None,
        newest_at: str | None = None,
    ) -> None:
        self.last_id = last_id
        self.issues_updated_at = issues_updated_at  # newest incident issue update seen
        self.newest_at = newest_at  # newest deployment creation seen (GitHub's clock)
        self.pending = pending
        self.history = history  # compare bases and production commit → deployment

    @classmethod
    def load(cls, raw: Any) -> RepositoryState:
        raw = raw if isinstance(raw, dict) else {}
        return cls(
            raw.get("last_id"),
            dict(raw.get("pending", {})),
            ShipHistory.load(raw),
            raw.get("issues_updated_at"),
            raw.get("newest_at"),
        )

    def dump(self) -> dict[str, Any]:
        return {
            "last_id": self.last_id,
            "pending": self.pending,
            **self.history.dump(),
            "issues_updated_at": self.issues_updated_at,
            "newest_at": self.newest_at,
        }

    def saw(self, created_at: datetime) -> None:
        if self.newest_at is None or created_at > parse_time(self.newest_at):
            self.newest_at = created_at.isoformat()

    def prune_pending(self) -> list[str]:
        """Stop following deployments that never finished: stale ones, and all but the newest few."""
        if not self.pending:
            return []
        newest = parse_time(self.newest_at) if self.newest_at else None
        ordered = sorted(self.pending, key=lambda key: (str(self.pending[key].get("created_at")), int(key)))
        abandoned = [
            key
            for position, key in enumerate(ordered)
            if position < len(ordered) - PENDING_MAX
            or (newest is not None and parse_time(str(self.pending[key]["created_at"])) < newest - PENDING_GIVE_UP)
        ]
        for key in abandoned:
            del self.pending[key]
        return abandoned

    def predecessor(self, environment: str, record: RunRecord) -> str | None:
        """The SHA of the last successful deployment to ``environment`` before ``record``."""
        return self.history.predecessor(environment, record.started_at, record.id)

    def add_success(self, environment: str, record: RunRecord) -> None:
        self.history.add_success(environment, record.started_at, record.id, record.sha)

    def resolve(self, reference: str) -> str:
        """A ``Caused-by`` value as a deployment id: ids pass, known commit SHAs (or prefixes) map."""
        return self.history.resolve(reference)
