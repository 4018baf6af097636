"""Commits shipped between two deployments (the compare API) and pushed commits → ``Change``."""

from __future__ import annotations

from typing import Any

from metrichub_core import Change
from metrichub_plugin_github._client import GitHubClient, GitHubError
from metrichub_plugin_github._deployments import parse_time

__all__ = ["compare_changes", "push_changes"]


async def compare_changes(
    client: GitHubClient, repository: str, base: str, head: str, *, source: str, service: str
) -> list[Change]:
    """Every commit reachable from ``head`` but not from ``base``, oldest first.

    A ``404`` (a base commit that no longer exists, e.g. after a force push) ships no
    attributed changes and is logged, rather than failing the whole collection.
    """
    if base == head:
        return []
    changes: list[Change] = []
    try:
        pages = client.pages(f"/repos/{repository}/compare/{base}...{head}", items_key="commits", cache=False)
        async for page in pages:  # a compare of two commits never changes and is asked once: not cached
            changes.extend(_commit_change(commit, source=source, service=service) for commit in page.items)
    except GitHubError as exc:
        if exc.status_code != 404:
            raise
        client.logger.warning("%s: cannot compare %s...%s (%s); no changes attributed", repository, base, head, exc)
        return []
    return changes


def _commit_change(commit: dict[str, Any], *, source: str, service: str) -> Change:
    git = commit.get("commit") or {}
    author = git.get("author") or git.get("committer") or {}
    return Change(
        id=commit["sha"],
        source=source,
        service=service,
        committed_at=parse_time(author["date"]),
        url=commit.get("html_url"),
    )


def push_changes(payload: dict[str, Any], *, source: str, service: str) -> list[Change]:
    """The commits of a ``push`` webhook (none for deleted refs)."""
    if payload.get("deleted"):
        return []
    return [
        Change(
            id=commit["id"],
            source=source,
            service=service,
            committed_at=parse_time(commit["timestamp"]),
            url=commit.get("url"),
        )
        for commit in payload.get("commits") or []
    ]
