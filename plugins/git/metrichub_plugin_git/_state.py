"""The tags a git source has already reported, kept in ``ctx.state`` (JSON-compatible)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from metrichub_plugin_git._tags import Tag

__all__ = ["STATE_VERSION", "Ledger", "TagChanges", "digest"]

STATE_VERSION = 1


def digest(change_ids: Sequence[str]) -> str:
    """A short fingerprint of a deployment's change list: a re-derivation re-emits only what differs."""
    return hashlib.sha1("\n".join(change_ids).encode(), usedforsecurity=False).hexdigest()[:16]


@dataclass
class TagChanges:
    """How the repository's deployment tags differ from the ones last reported."""

    new: list[Tag] = field(default_factory=list)
    moved: list[Tag] = field(default_factory=list)  # including a deleted tag created again elsewhere
    deleted: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # deleted, then created again as it was

    @property
    def changed(self) -> list[Tag]:
        return [*self.new, *self.moved]


@dataclass
class Ledger:
    """Reported tags (name → commit, time, approximate, change-list digest) and deleted ones.

    Deleted tags stay as boundaries of later ranges (their deployments are kept, not deleted).
    """

    fingerprint: str
    tags: dict[str, list[Any]] = field(default_factory=dict)  # name → [sha, at ISO, approximate, digest]
    deleted: dict[str, list[Any]] = field(default_factory=dict)  # the same, for tags deleted upstream

    @classmethod
    def load(cls, raw: Any, fingerprint: str) -> Ledger | None:
        """The saved ledger, or ``None`` when there is none or it was made for another configuration."""
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION or raw.get("fingerprint") != fingerprint:
            return None
        return cls(fingerprint, dict(raw.get("tags", {})), dict(raw.get("deleted", {})))

    def dump(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "fingerprint": self.fingerprint, "tags": self.tags, "deleted": self.deleted}

    def known(self, name: str) -> Tag | None:
        """The tag as last reported (deleted ones too)."""
        entry = self.tags.get(name, self.deleted.get(name))
        if entry is None:
            return None
        return Tag(name, str(entry[0]), datetime.fromisoformat(str(entry[1])), bool(entry[2]))

    def compare(self, listing: Iterable[Tag]) -> TagChanges:
        changes = TagChanges()
        present: set[str] = set()
        for tag in listing:
            present.add(tag.name)
            before = self.known(tag.name)
            if before is None:
                changes.new.append(tag)
            elif (before.sha, before.at) != (tag.sha, tag.at):
                changes.moved.append(tag)
            elif tag.name in self.deleted:
                changes.restored.append(tag.name)
        changes.deleted = sorted(name for name in self.tags if name not in present)
        return changes

    def boundaries(self) -> list[Tag]:
        """Deleted tags, as earlier deployments that still bound later ranges."""
        return [
            Tag(name, str(entry[0]), datetime.fromisoformat(str(entry[1])), False)
            for name, entry in self.deleted.items()
        ]

    def record(self, tag: Tag, change_ids: Sequence[str]) -> None:
        self.tags[tag.name] = [tag.sha, tag.at.isoformat(), tag.approximate, digest(change_ids)]
        self.deleted.pop(tag.name, None)

    def forget(self, names: Iterable[str]) -> None:
        """Tags gone upstream: remembered as deleted boundaries."""
        for name in names:
            entry = self.tags.pop(name, None)
            if entry is not None:
                self.deleted[name] = entry

    def restore(self, names: Iterable[str]) -> None:
        """Deleted tags created again as they were: reported already, nothing changes."""
        for name in names:
            self.tags[name] = self.deleted.pop(name)
