"""Re-runs: only new tags are read; moved and back-dated tags re-derive what they change; deletions are logged."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from git_repos import GitRepo, hours
from metrichub_plugin_git import GitSource

from metrichub_core import Change, Deployment, Event, MetricHub, SourceContext
from metrichub_core.config import Settings
from metrichub_core.storage.base import EventQuery

SINCE, UNTIL = date(2026, 3, 2), date(2026, 3, 9)  # the week of the histories


async def run(hub: MetricHub, caplog: pytest.LogCaptureFixture) -> tuple[list[str], str]:
    """Collect once; the ids of the deployments stored by this run and the source's summary line."""
    before = await stored(hub)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="metrichub.source.app"):
        [result] = await hub.collect()
    assert result.ok, result.error
    after = await stored(hub)
    changed = sorted(key for key, value in after.items() if before.get(key) != value)
    summary = " ".join(record.getMessage() for record in caplog.records if record.name == "metrichub.source.app")
    return changed, summary


async def stored(hub: MetricHub) -> dict[str, Any]:
    page = await hub.storage.list_events(EventQuery(kind="deployment", limit=1000))
    return {event.id: event.model_dump() for event in page.items}


async def deployment(hub: MetricHub, name: str) -> Deployment:
    page = await hub.storage.list_events(EventQuery(kind="deployment", limit=1000))
    [found] = [event for event in page.items if event.id == name]
    assert isinstance(found, Deployment)
    return found


def settings(path: Path) -> Settings:
    return Settings(sources={"app": {"kind": "git", "repository": str(path)}})


async def test_rerun_reads_only_new_tags_and_rederives_what_a_move_or_backdated_tag_changes(
    repo: GitRepo, caplog: pytest.LogCaptureFixture
) -> None:
    c1 = repo.commit("c1", hours(0))
    repo.tag("v1.0", hours(1))
    c2 = repo.commit("c2", hours(2))
    repo.tag("v1.1", hours(3))
    async with MetricHub("memory://", settings=settings(repo.path)) as hub:
        changed, summary = await run(hub, caplog)
        assert changed == ["v1.0", "v1.1"]
        assert "(full derivation)" in summary

        # Nothing new: no event, and the deployments stay as they are.
        changed, summary = await run(hub, caplog)
        assert changed == []
        assert "0 new, 0 moved, 0 deployments reported" in summary

        # A new tag after the others: only its range is walked, only it is reported.
        c3 = repo.commit("c3", hours(4))
        c4 = repo.commit("c4", hours(5))
        repo.tag("v1.2", hours(6))
        changed, summary = await run(hub, caplog)
        assert changed == ["v1.2"]
        assert "1 new, 0 moved, 1 deployments reported" in summary and "full" not in summary
        assert (await deployment(hub, "v1.2")).change_ids == [c4, c3]

        # v1.2 force-moved to a later commit and re-dated: re-read.
        c5 = repo.commit("c5", hours(7))
        repo.tag("v1.2", hours(8), force=True)
        changed, summary = await run(hub, caplog)
        assert changed == ["v1.2"]
        assert "0 new, 1 moved" in summary
        moved = await deployment(hub, "v1.2")
        assert (moved.commit_sha, moved.change_ids, moved.finished_at) == (c5, [c5, c4, c3], hours(8))

        # A new tag on c3 dated 4.5h, before v1.2 (8h): v1.2's range shrinks, v1.0/v1.1 are untouched.
        repo.tag("v1.1.5", hours(4.5), ref=c3)
        changed, summary = await run(hub, caplog)
        assert changed == ["v1.1.5", "v1.2"]
        assert "(full derivation)" in summary
        assert (await deployment(hub, "v1.1.5")).change_ids == [c3]
        assert (await deployment(hub, "v1.2")).change_ids == [c5, c4]

        # v1.1 deleted upstream: reported, not deleted; it still bounds later ranges.
        repo.git("tag", "-d", "v1.1")
        changed, summary = await run(hub, caplog)
        assert changed == []
        assert "deleted upstream (kept, not deleted here): v1.1" in summary
        assert (await deployment(hub, "v1.1")).change_ids == [c2]
        c6 = repo.commit("c6", hours(9))
        repo.tag("v1.3", hours(10))
        changed, summary = await run(hub, caplog)
        assert changed == ["v1.3"]
        assert (await deployment(hub, "v1.3")).change_ids == [c6]

        report = await hub.dora(since=SINCE, until=UNTIL, service="app")
        changes = (await hub.storage.list_events(EventQuery(kind="change", limit=1000))).items

        # v1.1 created again on c2 but dated 11h: a move from 3h, so the ranges after 3h are re-derived.
        repo.tag("v1.1", hours(11), ref=c2)
        changed, summary = await run(hub, caplog)
        assert changed == ["v1.1", "v1.1.5"] and "1 moved" in summary and "full derivation" in summary
        assert (await deployment(hub, "v1.1")).change_ids == []
        assert (await deployment(hub, "v1.1.5")).change_ids == [c3, c2]  # c2 now first ships at 4.5h
        moved_report = await hub.dora(since=SINCE, until=UNTIL, service="app")
    assert {change.id for change in changes if isinstance(change, Change)} == {c2, c3, c4, c5, c6}
    assert c1 not in {change.id for change in changes}
    # Lead times by hand, each change's first successful shipping deployment:
    #   c2 by v1.1 (3h) - 2h = 1h; c3 by v1.1.5 (4.5h) - 4h = 0.5h; c4 by v1.2 (8h) - 5h = 3h;
    #   c5 by v1.2 (8h) - 7h = 1h; c6 by v1.3 (10h) - 9h = 1h.
    # Sorted [0.5, 1, 1, 1, 3] h: median 1h = 3600 s; mean 6.5/5 h = 1.3h = 4680 s.
    assert report.lead_time.count == 5
    assert report.lead_time.median_seconds == pytest.approx(3600)
    assert report.lead_time.mean_seconds == pytest.approx(4680)
    assert report.deployment_frequency.count == 5  # v1.0, v1.1 (kept), v1.1.5, v1.2, v1.3
    # After the move, c2's first shipping deployment is v1.1.5 (4.5h): 4.5h - 2h = 2.5h instead of 1h.
    # Sorted [0.5, 1, 1, 2.5, 3] h: median 1h = 3600 s; mean 8/5 h = 1.6h = 5760 s.
    assert moved_report.lead_time.count == 5
    assert moved_report.lead_time.median_seconds == pytest.approx(3600)
    assert moved_report.lead_time.mean_seconds == pytest.approx(5760)


async def test_full_collection_rederives_everything(repo: GitRepo, caplog: pytest.LogCaptureFixture) -> None:
    repo.commit("c1", hours(0))
    repo.tag("v1.0", hours(1))
    repo.commit("c2", hours(2))
    repo.tag("v1.1", hours(3))
    async with MetricHub("memory://", settings=settings(repo.path)) as hub:
        await run(hub, caplog)
        [result] = await hub.collect(full=True)
        assert result.ok and result.full and result.events == 3  # two deployments and one change again


async def test_changed_patterns_rederive_everything(repo: GitRepo) -> None:
    repo.commit("c1", hours(0))
    repo.tag("v1.0", hours(1))
    c2 = repo.commit("c2", hours(2))
    repo.tag("v1.1-rc1", hours(3))
    repo.tag("v1.1", hours(4))

    async def once(extra: dict[str, Any], state: dict[str, Any]) -> list[Event]:
        config = GitSource.Config.model_validate({"kind": "git", "repository": str(repo.path), **extra})
        async with httpx.AsyncClient() as http:
            source = GitSource("app", config, SourceContext(http=http, logger=logging.getLogger("t"), state=state))
            return [event async for event in source.collect(hours(100))]

    state: dict[str, Any] = {}
    first = await once({}, state)
    assert sorted(event.id for event in first if isinstance(event, Deployment)) == ["v1.0", "v1.1"]
    second = await once(
        {"tags": r"^v\d", "exclude_tags": ""}, state
    )  # now v1.1-rc1 (3h) is a deployment and ships c2 first
    by_id = {event.id: event for event in second if isinstance(event, Deployment)}
    assert sorted(by_id) == ["v1.0", "v1.1", "v1.1-rc1"]
    assert by_id["v1.1-rc1"].change_ids == [c2] and by_id["v1.1"].change_ids == []


async def test_deleted_tag_created_again_as_it_was_changes_nothing(
    repo: GitRepo, caplog: pytest.LogCaptureFixture
) -> None:
    repo.commit("c1", hours(0))
    repo.tag("v1.0", hours(1))
    c2 = repo.commit("c2", hours(2))
    repo.tag("v1.1", hours(3))
    async with MetricHub("memory://", settings=settings(repo.path)) as hub:
        await run(hub, caplog)
        repo.git("tag", "-d", "v1.1")
        changed, summary = await run(hub, caplog)
        assert changed == [] and "deleted upstream (kept, not deleted here): v1.1" in summary
        repo.tag("v1.1", hours(3), ref=c2)  # the same commit and tagger date
        changed, summary = await run(hub, caplog)
        assert changed == [] and "0 new, 0 moved, 0 deployments reported" in summary and "deleted" not in summary
        assert (await deployment(hub, "v1.1")).change_ids == [c2]
