"""The per-project cursor a GitLab source keeps in ``ctx.state`` (JSON-compatible)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from metrichub_core.shipping import ShipHistory
from metrichub_plugin_gitlab._deployments import parse_time

__all__ = ["LOOKBACK", "MERGED_MAX", "ProjectState", "UpdatedCursor"]

LOOKBACK = timedelta(minutes=10)  # re-read what GitLab timestamped just before the cursor
MERGED_MAX = 2000  # merge request commits → merged_at remembered for deployments still to come


class UpdatedCursor:
    """An ``updated_after`` cursor on GitLab's clock, and what was read inside its look-back.

    ``seen`` (id → ``updated_at``) holds the items updated within ``LOOKBACK`` of the cursor,
    so items the look-back reads again are not processed twice.
    """

    def __init__(self, cursor: str | None = None, seen: dict[str, str] | None = None) -> None:
        self.cursor = cursor
        self.seen = seen or {}

    @classmethod
    def load(cls, raw: Any) -> UpdatedCursor:
        raw = raw if isinstance(raw, dict) else {}
        return cls(raw.get("cursor"), dict(raw.get("seen", {})))

    def dump(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "seen": self.seen}

    def after(self) -> str | None:
        """The ``updated_after`` to ask for: the cursor less the look-back (``None``: everything)."""
        if self.cursor is None:
            return None
        return (parse_time(self.cursor) - LOOKBACK).strftime("%Y-%m-%dT%H:%M:%SZ")

    def is_new(self, item: dict[str, Any]) -> bool:
        return self.seen.get(str(item["id"])) != str(item["updated_at"])

    def advance(self, items: list[dict[str, Any]]) -> None:
        """Move the cursor to the newest ``updated_at`` read; keep ``seen`` to the look-back window."""
        for item in items:
            self.seen[str(item["id"])] = str(item["updated_at"])
            if self.cursor is None or parse_time(str(item["updated_at"])) > parse_time(self.cursor):
                self.cursor = str(item["updated_at"])
        if self.cursor is not None:
            floor = parse_time(self.cursor) - 2 * LOOKBACK
            self.seen = {key: value for key, value in self.seen.items() if parse_time(value) >= floor}


class ProjectState:
    """Everything remembered about one project between runs."""

    def __init__(self, raw: Any = None) -> None:
        raw = raw if isinstance(raw, dict) else {}
        self.project_id: int | None = raw.get("project_id")
        self.deployments = UpdatedCursor.load(raw.get("deployments"))
        self.merge_requests = UpdatedCursor.load(raw.get("merge_requests"))
        self.issues = UpdatedCursor.load(raw.get("issues"))
        self.merged: dict[str, str] = dict(raw.get("merged", {}))  # commit SHA → merged_at
        self.tiers: dict[str, str | None] = dict(raw.get("tiers", {}))  # environment name → tier
        # Compare bases per GitLab environment name, and (separately, under "production") every
        # production success, whose SHAs turn a ``Caused-by: <sha>`` into a deployment id.
        self.bases = ShipHistory.load(raw.get("bases"))
        self.production = ShipHistory.load(raw.get("production"))

    def dump(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "deployments": self.deployments.dump(),
            "merge_requests": self.merge_requests.dump(),
            "issues": self.issues.dump(),
            "merged": dict(list(self.merged.items())[-MERGED_MAX:]),  # the newest merge requests
            "tiers": self.tiers,
            "bases": self.bases.dump(),
            "production": self.production.dump(),
        }

    def remember_merge(self, sha: str, merged_at: str) -> None:
        """Kept whole during a run (a full sync compares against every merge request); ``dump`` bounds it."""
        self.merged.pop(sha, None)
        self.merged[sha] = merged_at

    def merged_times(self) -> dict[str, datetime]:
        return {sha: parse_time(when) for sha, when in self.merged.items()}

    def add_success(self, environment_name: str, production: bool, started_at: datetime, id: str, sha: str) -> None:
        self.bases.add_success(environment_name, started_at, id, sha)
        if production:
            self.production.add_success("production", started_at, id, sha)

    def resolve(self, reference: str) -> str:
        """A ``Caused-by`` value as a deployment id: ids pass, production commit SHAs (or prefixes) map."""
        return self.production.resolve(reference)

    def collected_success(self, environment_name: str, deployment_id: str) -> bool:
        """Whether a collection already reported this deployment as a success (with its changes)."""
        return any(str(entry[1]) == deployment_id for entry in self.bases.successes.get(environment_name, []))
