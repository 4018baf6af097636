"""Commits shipped between two deployments (``repository/compare``) → ``Change``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from metrichub_core import Change
from metrichub_plugin_gitlab._client import GitLabClient, GitLabError, project_ref
from metrichub_plugin_gitlab._deployments import parse_time

__all__ = ["compare_changes", "merged_times"]


async def compare_changes(
    client: GitLabClient,
    project_id: int | str,
    base: str,
    head: str,
    *,
    source: str,
    service: str,
    merged: dict[str, datetime] | None = None,
) -> list[Change]:
    """Every commit reachable from ``head`` but not from ``base`` (from their merge base), as GitLab lists them.

    The compare API is not paginated. ``committed_at`` is the author date (rebases rewrite the
    committer date). ``merged`` maps merge, squash and head commits of merged merge requests
    to their ``merged_at``; a merge commit passes it on to the commits it brought in. A ``404``
    (a base that no longer exists, e.g. after a force push) ships nothing and is logged.
    """
    if base == head:
        return []
    params: dict[str, str | int] = {"from": base, "to": head}
    try:
        body = await client.get_json(f"/projects/{project_ref(project_id)}/repository/compare", params, cache=False)
    except GitLabError as exc:
        if exc.status_code != 404:
            raise
        client.logger.warning(
            "project %s: cannot compare %s..%s (%s); no changes attributed", project_id, base, head, exc
        )
        return []
    commits: list[dict[str, Any]] = list(body.get("commits") or [])
    if body.get("compare_timeout"):
        client.logger.warning(
            "project %s: compare %s..%s timed out on GitLab; its commit list is kept", project_id, base, head
        )
    merged_at = merged_times(commits, merged or {})
    return [
        Change(
            id=commit["id"],
            source=source,
            service=service,
            committed_at=parse_time(commit.get("authored_date") or commit["created_at"]),
            merged_at=merged_at.get(commit["id"]),
            url=commit.get("web_url"),
        )
        for commit in commits
    ]


def merged_times(commits: list[dict[str, Any]], merged: dict[str, datetime]) -> dict[str, datetime]:
    """``merged_at`` per commit of a compare range.

    A commit that is itself a merge request's merge, squash or head commit gets that time. A
    merge commit's second parent brings the merge request's commits: those reachable from it,
    inside the range and not from the first parent, get the merge commit's time too.
    """
    if not merged:
        return {}
    by_id = {commit["id"]: commit for commit in commits}
    result = {sha: merged[sha] for sha in by_id if sha in merged}
    for commit in commits:
        when = merged.get(commit["id"])
        parents = commit.get("parent_ids") or []
        if when is None or len(parents) < 2:
            continue
        mainline = _reachable(parents[0], by_id)
        for sha in _reachable(parents[1], by_id) - mainline:
            result.setdefault(sha, when)
    return result


def _reachable(start: str, by_id: dict[str, dict[str, Any]]) -> set[str]:
    """Commits of the range reachable from ``start`` (itself included), walking parents inside the range."""
    seen: set[str] = set()
    stack = [start]
    while stack:
        sha = stack.pop()
        if sha in seen or sha not in by_id:
            continue
        seen.add(sha)
        stack.extend(by_id[sha].get("parent_ids") or [])
    return seen
