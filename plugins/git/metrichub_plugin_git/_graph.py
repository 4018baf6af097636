"""Which deployment tag ships which commit: one ``git log --topo-order`` pass over all tags.

A commit is shipped by the *first* deployment (in deployment order) whose tag reaches it,
which is ``git log <tag> --not <every earlier tag>`` for every tag at once: walking the
graph children-first, each commit's owner is the smallest deployment index among the
tags pointing at it and the owners of its children. One process and one pass, whatever
the number of tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from metrichub_plugin_git._runner import GitRunner

__all__ = ["LOG_FORMAT", "Commit", "attribute", "owners"]

LOG_FORMAT = "%H %aI %P"  # records NUL-separated (-z); parents space-separated


@dataclass(frozen=True)
class Commit:
    """A shipped, non-merge commit and its author date (the change's ``committed_at``)."""

    sha: str
    authored: str

    @property
    def authored_at(self) -> datetime:
        return datetime.fromisoformat(self.authored).astimezone(UTC)


def owners(log: bytes, tips: Sequence[str]) -> list[list[Commit]]:
    """Per tip (in deployment order), the non-merge commits it reaches first, in ``git log`` order.

    ``log`` is ``git log --topo-order -z --format=LOG_FORMAT`` over the tips (minus any
    excluded history): children come before their parents, so an owner is final when
    its commit is read.
    """
    owner: dict[str, int] = {}
    for position, tip in enumerate(tips):
        owner.setdefault(tip, position)  # two tags on one commit: the earlier ships it
    shipped: list[list[Commit]] = [[] for _ in tips]
    for record in log.decode("ascii", "replace").split("\0"):
        fields = record.strip().split(" ")
        if len(fields) < 2:
            continue
        sha, authored, parents = fields[0], fields[1], fields[2:]
        index = owner.get(sha)
        if index is None:  # unreachable in a topological walk from the tips; defensive
            continue
        for parent in parents:
            current = owner.get(parent)
            if current is None or index < current:
                owner[parent] = index
        if len(parents) <= 1:  # merge commits are not changes (--no-merges)
            shipped[index].append(Commit(sha, authored))
    return shipped


async def attribute(git: GitRunner, tips: Sequence[str], exclude: Sequence[str] = ()) -> list[list[Commit]]:
    """``owners`` of ``tips`` over history not reachable from ``exclude`` (earlier deployments)."""
    if not tips:
        return []
    revisions = [*dict.fromkeys(tips), *(f"^{sha}" for sha in dict.fromkeys(exclude))]
    log = await git.run(
        "log", "--topo-order", "-z", f"--format={LOG_FORMAT}", "--stdin", stdin="\n".join(revisions).encode() + b"\n"
    )
    return owners(log, tips)
