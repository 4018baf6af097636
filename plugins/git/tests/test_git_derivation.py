"""Deployments and shipped commits from repositories built in the test, with lead times computed by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from git_repos import GitRepo, collected, hours

from metrichub_core import MetricHub
from metrichub_core.config import Settings

SINCE, UNTIL = date(2026, 3, 2), date(2026, 3, 9)  # the week of the histories


def table(path: Path, **extra: Any) -> dict[str, Any]:
    return {"kind": "git", "repository": str(path), **extra}


async def test_linear_history(repo: GitRepo) -> None:
    c1 = repo.commit("first", hours(0))
    repo.tag("v1.0.0", hours(1))
    c2 = repo.commit("second", hours(2))
    c3 = repo.commit("third", hours(4))
    repo.tag("v1.1.0", hours(10))
    c4 = repo.commit("fourth", hours(24))
    repo.tag("v1.2.0", hours(30))

    async with MetricHub("memory://", settings=Settings(sources={"app": table(repo.path)})) as hub:
        [result] = await hub.collect()
        assert result.ok, result.error
        deployments, changes = await collected(hub)
        report = await hub.dora(since=SINCE, until=UNTIL, service="app")

    assert sorted(deployments) == ["v1.0.0", "v1.1.0", "v1.2.0"]
    assert deployments["v1.0.0"].change_ids == []  # the first tag's range is the whole history: ships nothing
    assert deployments["v1.0.0"].commit_sha == c1
    assert deployments["v1.1.0"].change_ids == [c3, c2]  # git log order: newest first
    assert deployments["v1.2.0"].change_ids == [c4]
    assert deployments["v1.2.0"].started_at == deployments["v1.2.0"].finished_at == hours(30)
    assert deployments["v1.2.0"].labels == {}  # annotated: an exact time
    assert set(changes) == {c2, c3, c4}
    assert changes[c2].committed_at == hours(2)
    # Lead times by hand: c2 10h-2h = 8h, c3 10h-4h = 6h, c4 30h-24h = 6h.
    # Sorted [6, 6, 8] h: median 6 h = 21600 s; mean 20/3 h = 24000 s;
    # p90 (interpolated) at rank 0.9*(3-1) = 1.8: 6 + 0.8*(8-6) = 7.6 h = 27360 s.
    assert report.lead_time.count == 3
    assert report.lead_time.median_seconds == pytest.approx(21600)
    assert report.lead_time.mean_seconds == pytest.approx(24000)
    assert report.lead_time.p90_seconds == pytest.approx(27360)
    assert report.deployment_frequency.count == 3


def build_release_history(repo: GitRepo) -> dict[str, str]:
    """Main with a maintenance branch (patch tag merged back), merges, pre-releases, a lightweight tag."""
    shas: dict[str, str] = {}
    shas["a1"] = repo.commit("a1", hours(0))
    repo.tag("v1.0.0", hours(1))
    shas["a2"] = repo.commit("a2", hours(2))
    shas["a3"] = repo.commit("a3", hours(3))
    repo.tag("v1.1.0", hours(5))
    repo.branch("release-1.0", "v1.0.0")  # a patch of the 1.0 line, released after 1.1.0
    shas["b1"] = repo.commit("b1 fix", hours(6))
    repo.tag("v1.0.1", hours(8))
    repo.checkout("main")
    shas["a4"] = repo.commit("a4", hours(7))
    repo.tag("v1.2.0-rc1", hours(9))  # pre-release: not a deployment
    shas["m1"] = repo.merge("release-1.0", hours(10))  # the fix merged back: a merge commit
    shas["a5"] = repo.commit("a5", hours(11))
    repo.tag("V1.2.0", hours(12))  # tags are matched case-insensitively
    shas["a6"] = repo.commit("a6", authored=hours(13), committed=hours(14))
    repo.lightweight("v1.2.1")  # no creation time: the commit's committer date (14h), approximate
    repo.lightweight("v1.3.0-beta")  # pre-release
    repo.lightweight("nightly")  # does not match tags
    return shas


async def test_maintenance_branch_merges_prereleases_and_lightweight_tags(repo: GitRepo) -> None:
    shas = build_release_history(repo)
    async with MetricHub("memory://", settings=Settings(sources={"app": table(repo.path)})) as hub:
        [result] = await hub.collect()
        assert result.ok, result.error
        deployments, changes = await collected(hub)
        report = await hub.dora(since=SINCE, until=UNTIL, service="app")

    assert sorted(deployments) == ["V1.2.0", "v1.0.0", "v1.0.1", "v1.1.0", "v1.2.1"]
    assert deployments["v1.0.0"].change_ids == []
    assert deployments["v1.1.0"].change_ids == [shas["a3"], shas["a2"]]
    assert deployments["v1.0.1"].change_ids == [shas["b1"]]  # not a2/a3: v1.1.0 shipped them first
    # v1.0.1..V1.2.0 would re-ship a2, a3; "--not every earlier tag" ships only what is new.
    # b1 came back through the merge and is not re-shipped; the merge m1 is no change.
    assert sorted(deployments["V1.2.0"].change_ids) == sorted([shas["a4"], shas["a5"]])
    assert deployments["v1.2.1"].change_ids == [shas["a6"]]
    assert shas["m1"] not in changes
    assert deployments["v1.2.1"].labels == {"approximate_time": "true"}
    assert deployments["v1.2.1"].finished_at == hours(14)  # the committer date
    assert changes[shas["a6"]].committed_at == hours(13)  # Change.committed_at is the author date
    assert deployments["V1.2.0"].commit_sha == shas["a5"]  # the annotated tag dereferenced to its commit
    # Lead times by hand (tag time - author date):
    #   a2 5-2 = 3h, a3 5-3 = 2h (v1.1.0); b1 8-6 = 2h (v1.0.1); a4 12-7 = 5h, a5 12-11 = 1h (V1.2.0);
    #   a6 14-13 = 1h (v1.2.1, approximate time).
    # Sorted [1, 1, 2, 2, 3, 5] h: median (2+2)/2 = 2h = 7200 s; mean 14/6 h = 8400 s;
    # p90 at rank 0.9*5 = 4.5: 3 + 0.5*(5-3) = 4h = 14400 s.
    assert report.lead_time.count == 6
    assert report.lead_time.median_seconds == pytest.approx(7200)
    assert report.lead_time.mean_seconds == pytest.approx(8400)
    assert report.lead_time.p90_seconds == pytest.approx(14400)
    assert report.deployment_frequency.count == 5


async def test_two_tags_on_one_commit_ship_once(repo: GitRepo) -> None:
    repo.commit("c1", hours(0))
    repo.tag("1.0", hours(1))
    c2 = repo.commit("c2", hours(2))
    repo.tag("1.1", hours(3))
    repo.tag("1.1.0", hours(4))  # the same commit tagged again later
    async with MetricHub("memory://", settings=Settings(sources={"app": table(repo.path)})) as hub:
        [result] = await hub.collect()
        assert result.ok, result.error
        deployments, _ = await collected(hub)
    assert deployments["1.1"].change_ids == [c2]
    assert deployments["1.1.0"].change_ids == []  # the earlier deployment of the commit shipped it


async def test_custom_patterns_service_and_environment(repo: GitRepo) -> None:
    repo.commit("c1", hours(0))
    repo.lightweight("release-1")
    c2 = repo.commit("c2", hours(2))
    repo.lightweight("release-2")
    repo.lightweight("release-2-hotfix")
    config = table(repo.path, tags=r"^release-\d+", exclude_tags="hotfix", service="shop", environment="staging")
    async with MetricHub("memory://", settings=Settings(sources={"app": config})) as hub:
        [result] = await hub.collect()
        assert result.ok, result.error
        deployments, _ = await collected(hub)
    assert sorted(deployments) == ["release-1", "release-2"]
    assert deployments["release-2"].change_ids == [c2]
    assert {(event.service, event.environment) for event in deployments.values()} == {("shop", "staging")}


async def test_tag_of_a_tag_is_peeled_and_a_tree_tag_is_skipped(
    repo: GitRepo, caplog: pytest.LogCaptureFixture
) -> None:
    repo.commit("c1", hours(0))
    repo.tag("v1.0", hours(1))
    c2 = repo.commit("c2", hours(2))
    repo.tag("inner", hours(3))
    repo.tag("v1.1", hours(4), ref="inner")  # an annotated tag of an annotated tag: its own tagger date counts
    repo.tag("v1.2", hours(5), ref="HEAD^{tree}")  # a tag of a tree: no commit, no deployment
    with caplog.at_level("INFO", logger="metrichub.source.app"):
        async with MetricHub("memory://", settings=Settings(sources={"app": table(repo.path)})) as hub:
            [result] = await hub.collect()
            assert result.ok, result.error
            deployments, _ = await collected(hub)
    assert sorted(deployments) == ["v1.0", "v1.1"]
    assert (deployments["v1.1"].commit_sha, deployments["v1.1"].finished_at) == (c2, hours(4))
    assert deployments["v1.1"].change_ids == [c2] and deployments["v1.1"].labels == {}
    assert "not pointing at a commit (skipped): v1.2" in caplog.text
