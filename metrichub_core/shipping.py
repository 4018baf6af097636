"""What collectors share about shipping: ``Caused-by:`` lines and the history of successful deployments.

Every source that reads a commit graph pairs each successful deployment with the previous
successful one of the same scope (repository or project) and environment, and ships the
commits between the two. ``ShipHistory`` keeps that pairing, and the production commit →
deployment map that turns ``Caused-by: <sha>`` into a deployment id, as JSON-compatible
source state.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from metrichub_core.models import MAX_CHANGE_IDS

__all__ = ["SHIPPED_SHAS", "SUCCESS_HISTORY", "ShipHistory", "caused_by_reference", "capped_change_ids"]

SUCCESS_HISTORY = 20  # successful deployments remembered per environment (compare bases)
SHIPPED_SHAS = 500  # production commit → deployment entries kept for ``Caused-by: <sha>``
MIN_SHA_PREFIX = 7  # as git's default abbreviation

# A line that starts (after list, quote or emphasis marks) with "Caused-by:" or "Caused by:".
# The reference runs to the next blank; a leading "#" (issue-style ids) and trailing
# punctuation or Markdown are not part of it.
_CAUSED_BY = re.compile(r"^[ \t>*_-]*caused[- ]by[*_]*[ \t]*:[ \t*_`]*#?([^\s`*]+)", re.IGNORECASE | re.MULTILINE)
_TRAILING = ".,;:)!?_'\""


def capped_change_ids(change_ids: Sequence[str], deployment_id: str, logger: logging.Logger) -> list[str]:
    """At most ``MAX_CHANGE_IDS`` of a deployment's change ids, as the model allows: given oldest first, the
    newest are kept, and a warning says how many of the oldest were dropped (they get no lead time)."""
    if len(change_ids) <= MAX_CHANGE_IDS:
        return list(change_ids)
    dropped = len(change_ids) - MAX_CHANGE_IDS
    logger.warning(
        "deployment %s ships %d changes: the oldest %d are left out", deployment_id, len(change_ids), dropped
    )
    return list(change_ids[dropped:])


def caused_by_reference(text: str | None) -> str | None:
    """The value of a ``Caused-by: <deployment id or sha>`` line, if the text has one."""
    if not text:
        return None
    match = _CAUSED_BY.search(text)
    if match is None:
        return None
    return match.group(1).rstrip(_TRAILING) or None


class ShipHistory:
    """Successful deployments per environment of one scope, and which production deployment shipped a commit.

    Deployments are ordered by ``(started_at, id)``; numeric ids compare as numbers.
    """

    def __init__(self, successes: dict[str, list[list[Any]]], shipped: dict[str, str]) -> None:
        self.successes = successes  # environment → [[started_at ISO, id, sha], ...] oldest first
        self.shipped = shipped  # production commit SHA → deployment id, oldest first

    @classmethod
    def load(cls, raw: Any) -> ShipHistory:
        raw = raw if isinstance(raw, dict) else {}
        return cls(
            {env: [list(entry) for entry in entries] for env, entries in raw.get("successes", {}).items()},
            dict(raw.get("shipped", {})),
        )

    def dump(self) -> dict[str, Any]:
        return {"successes": self.successes, "shipped": self.shipped}

    def predecessor(self, environment: str, started_at: datetime, deployment_id: str) -> str | None:
        """The SHA of the last successful deployment to ``environment`` before this one."""
        history = self.successes.get(environment, [])
        position = bisect.bisect_left([_entry_order(entry) for entry in history], _order(started_at, deployment_id))
        return str(history[position - 1][2]) if position else None

    def add_success(self, environment: str, started_at: datetime, deployment_id: str, sha: str | None) -> None:
        history = self.successes.setdefault(environment, [])
        order = _order(started_at, deployment_id)
        orders = [_entry_order(item) for item in history]
        if order not in orders:
            history.insert(bisect.bisect_left(orders, order), [started_at.isoformat(), deployment_id, sha])
        del history[:-SUCCESS_HISTORY]
        if environment == "production" and sha:
            self.shipped.pop(sha, None)
            self.shipped[sha] = deployment_id
            for stale in list(self.shipped)[:-SHIPPED_SHAS]:
                del self.shipped[stale]

    def resolve(self, reference: str, *, is_deployment_id: Callable[[str], bool] = str.isdigit) -> str:
        """A ``Caused-by`` value as a deployment id: ids pass, known commit SHAs (or prefixes) map.

        A SHA maps to the latest production deployment that shipped it; an unknown one passes
        unchanged (the DORA engine then attributes the incident by time).
        """
        if is_deployment_id(reference):
            return reference
        lowered = reference.lower()
        if len(lowered) >= MIN_SHA_PREFIX:
            for sha in reversed(list(self.shipped)):
                if sha.lower().startswith(lowered):
                    return self.shipped[sha]
        return reference


def _order(started_at: datetime, deployment_id: str) -> tuple[datetime, int, int, str]:
    # Numeric ids (GitHub, GitLab) order by value; others (Jenkins "job#12") after them, by text.
    if deployment_id.isdigit():
        return started_at, 0, int(deployment_id), ""
    return started_at, 1, 0, deployment_id


def _entry_order(entry: list[Any]) -> tuple[datetime, int, int, str]:
    return _order(datetime.fromisoformat(str(entry[0])), str(entry[1]))
