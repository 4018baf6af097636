"""``GitSource``: deployments from release tags and the commits each one shipped first."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from metrichub_core import Change, Deployment, Event, Source, SourceConfig, SourceContext
from metrichub_core.shipping import capped_change_ids
from metrichub_plugin_git._config import GitConfig
from metrichub_plugin_git._graph import Commit, attribute
from metrichub_plugin_git._repository import check_repository, open_repository
from metrichub_plugin_git._runner import GitRunner
from metrichub_plugin_git._state import Ledger, TagChanges, digest
from metrichub_plugin_git._tags import Tag, list_tags

__all__ = ["CollectionSummary", "GitSource"]


@dataclass
class CollectionSummary:
    """What one collection found: logged, and kept on the source as ``last_summary``."""

    tags: int = 0
    new: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    emitted: list[str] = field(default_factory=list)
    full: bool = False

    def line(self) -> str:
        text = (
            f"{self.tags} deployment tags, {len(self.new)} new, {len(self.moved)} moved, "
            f"{len(self.emitted)} deployments reported{' (full derivation)' if self.full else ''}"
        )
        if self.deleted:
            text += f"; deleted upstream (kept, not deleted here): {', '.join(self.deleted)}"
        if self.skipped:
            text += f"; not pointing at a commit (skipped): {', '.join(self.skipped)}"
        return text


class GitSource(Source):
    """Every tag matching ``tags`` (and not ``exclude_tags``) is a successful deployment.

    ``ctx.state`` keeps the tags already reported (``Ledger``): a re-run lists the tags
    (one ``for-each-ref``) and walks only the history of new ones; a moved tag, or a new
    one dated before tags already seen, re-derives everything once and reports the
    deployments whose change lists differ.
    """

    kind: ClassVar[str] = "git"
    Config: ClassVar[type[SourceConfig]] = GitConfig

    def __init__(self, id: str, config: SourceConfig, ctx: SourceContext) -> None:
        if not isinstance(config, GitConfig):
            config = GitConfig.model_validate(config.model_dump())
        super().__init__(id, config, ctx)
        self.settings: GitConfig = config
        self.service = config.service_name()
        self.last_summary = CollectionSummary()

    async def check(self) -> None:
        await check_repository(self.settings)

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        git = await open_repository(self.settings, self.ctx.logger)
        listing, skipped = await list_tags(git, self.settings.is_deployment_tag)
        fingerprint = self.settings.fingerprint()
        saved = Ledger.load(self.ctx.state, fingerprint) if since is not None else None
        ledger = saved or Ledger(fingerprint)
        changes = ledger.compare(listing)
        ledger.forget(changes.deleted)
        ledger.restore(changes.restored)
        summary = CollectionSummary(
            tags=len(listing),
            new=[tag.name for tag in changes.new],
            moved=[tag.name for tag in changes.moved],
            deleted=changes.deleted,
            skipped=skipped,
            full=saved is None,
        )
        if saved is None or changes.changed:
            listed = {tag.name for tag in listing}  # a deleted tag listed again is no boundary
            deleted = [tag for tag in ledger.boundaries() if tag.name not in listed]
            boundaries = await self._present(git, deleted)
            order = sorted([*listing, *boundaries], key=Tag.order)
            if saved is not None and _appended(changes, order, ledger):
                shipped = await self._derive_new(git, order, changes)
            else:
                summary.full = True
                shipped = await self._derive_all(git, order, ledger, listing, report_all=saved is None)
            for tag, commits in shipped:
                for commit in commits:
                    yield Change(id=commit.sha, source=self.id, service=self.service, committed_at=commit.authored_at)
                yield self._deployment(tag, commits)
                ledger.record(tag, [commit.sha for commit in commits])
                summary.emitted.append(tag.name)
        self.last_summary = summary
        self.ctx.logger.info("%s: %s", self.id, summary.line())
        self.ctx.state.clear()
        self.ctx.state.update(ledger.dump())

    async def _present(self, git: GitRunner, boundaries: list[Tag]) -> list[Tag]:
        """Deleted tags whose commit is still in the repository (a pruned mirror may have lost it)."""
        if not boundaries:
            return []
        query = "".join(f"{tag.sha}\n" for tag in boundaries).encode()
        answer = (await git.run("cat-file", "--batch-check=%(objecttype)", stdin=query)).decode().splitlines()
        return [tag for tag, kind in zip(boundaries, answer, strict=True) if kind == "commit"]

    async def _derive_new(
        self, git: GitRunner, order: list[Tag], changes: TagChanges
    ) -> list[tuple[Tag, list[Commit]]]:
        """New tags after every known one: only history not reachable from the known tags is walked."""
        changed = {tag.name for tag in changes.changed}
        fresh = [tag for tag in order if tag.name in changed]
        earlier = [tag.sha for tag in order if tag.name not in changed]
        shipped = await attribute(git, [tag.sha for tag in fresh], earlier)
        if not earlier:  # no deployment before: the first one's range is the whole history
            shipped[0] = []
        return list(zip(fresh, shipped, strict=True))

    async def _derive_all(
        self, git: GitRunner, order: list[Tag], ledger: Ledger, listing: Sequence[Tag], *, report_all: bool
    ) -> list[tuple[Tag, list[Commit]]]:
        """Every range from one walk; report the tags that are new or whose change list differs."""
        shipped = await attribute(git, [tag.sha for tag in order])
        if shipped:
            shipped[0] = []  # the first deployment's range is the whole history: it ships nothing
        current = {tag.name for tag in listing}
        reported: list[tuple[Tag, list[Commit]]] = []
        for tag, commits in zip(order, shipped, strict=True):
            if tag.name not in current:
                continue  # a deleted tag: its stored deployment is left as it was
            before = ledger.tags.get(tag.name)
            fresh = [tag.sha, tag.at.isoformat(), tag.approximate, digest([commit.sha for commit in commits])]
            if report_all or before != fresh:
                reported.append((tag, commits))
        return reported

    def _deployment(self, tag: Tag, commits: list[Commit]) -> Deployment:
        labels = {"approximate_time": "true"} if tag.approximate else {}
        return Deployment(
            id=tag.name,
            source=self.id,
            service=self.service,
            environment=self.settings.environment,
            status="success",
            started_at=tag.at,
            finished_at=tag.at,
            commit_sha=tag.sha,
            change_ids=capped_change_ids([commit.sha for commit in commits], tag.name, self.ctx.logger),
            labels=labels,
        )


def _appended(changes: TagChanges, order: list[Tag], ledger: Ledger) -> bool:
    """Every new or moved tag comes after every unchanged one, before and after the move: no known range changes."""
    changed = {tag.name for tag in changes.changed}
    unchanged = [tag.order() for tag in order if tag.name not in changed]
    if not unchanged:
        return True
    last = max(unchanged)
    for tag in changes.moved:
        before = ledger.known(tag.name)
        if before is None or before.order() <= last:
            return False
    return all(tag.order() > last for tag in changes.changed)
