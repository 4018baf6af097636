"""The per-repository cursor a GitHub source keeps in ``ctx.state`` (JSON-compatible)."""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import Any

from metrichub_plugin_github._deployments import RunRecord, parse_time

__all__ = ["PENDING_GIVE_UP", "PENDING_MAX", "SHIPPED_SHAS", "SUCCESS_HISTORY", "RepositoryState"]

SUCCESS_HISTORY = 20  # successful deployments remembered per environment (compare bases)
SHIPPED_SHAS = 500  # production commit → deployment entries kept for ``Caused-by: <sha>``
PENDING_GIVE_UP = timedelta(days=7)  # still running a week after a newer deployment started: abandoned
PENDING_MAX = 50  # running deployments asked about again, per repository (the newest)


class RepositoryState:
    """The per-repository cursor kept in ``ctx.state`` (JSON-compatible)."""

    def __init__(
        self,
        last_id: int | None,
        pending: dict[str, dict[str, Any]],
        successes: dict[str, list[list[Any]]],
        shipped: dict[str, str],
        issues_updated_at: str | None = None,
        newest_at: str | None = None,
    ) -> None:
        self.last_id = last_id
        self.issues_updated_at = issues_updated_at  # newest incident issue update seen
        self.newest_at = newest_at  # newest deployment creation seen (GitHub's clock)
        self.pending = pending
        self.successes = successes  # environment → [[started_at ISO, id, sha], ...] oldest first
        self.shipped = shipped  # production commit SHA → deployment id

    @classmethod
    def load(cls, raw: Any) -> RepositoryState:
        raw = raw if isinstance(raw, dict) else {}
        return cls(
            raw.get("last_id"),
            dict(raw.get("pending", {})),
            {env: [list(entry) for entry in entries] for env, entries in raw.get("successes", {}).items()},
            dict(raw.get("shipped", {})),
            raw.get("issues_updated_at"),
            raw.get("newest_at"),
        )

    def dump(self) -> dict[str, Any]:
        return {
            "last_id": self.last_id,
            "pending": self.pending,
            "successes": self.successes,
            "shipped": self.shipped,
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
        history = self.successes.get(environment, [])
        position = bisect.bisect_left([_order(entry) for entry in history], _record_order(record))
        return str(history[position - 1][2]) if position else None

    def add_success(self, environment: str, record: RunRecord) -> None:
        history = self.successes.setdefault(environment, [])
        entry = [record.started_at.isoformat(), record.id, record.sha]
        orders = [_order(item) for item in history]
        if _record_order(record) not in orders:
            history.insert(bisect.bisect_left(orders, _record_order(record)), entry)
        del history[:-SUCCESS_HISTORY]
        if environment == "production" and record.sha:
            self.shipped.pop(record.sha, None)
            self.shipped[record.sha] = record.id
            for stale in list(self.shipped)[:-SHIPPED_SHAS]:
                del self.shipped[stale]

    def resolve(self, reference: str) -> str:
        """A ``Caused-by`` value as a deployment id: ids pass, known commit SHAs (or prefixes) map."""
        if reference.isdigit():
            return reference
        lowered = reference.lower()
        if len(lowered) >= 7:
            for sha in reversed(list(self.shipped)):
                if sha.lower().startswith(lowered):
                    return self.shipped[sha]
        return reference


def _order(entry: list[Any]) -> tuple[datetime, int]:
    return parse_time(str(entry[0])), int(entry[1])


def _record_order(record: RunRecord) -> tuple[datetime, int]:
    return record.started_at, int(record.id)
