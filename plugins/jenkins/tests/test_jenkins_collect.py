"""Collecting from the fake Jenkins over real HTTP: ranges, results, environments, stages, multibranch, auth."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from jenkins_fake import LIBRARY_REMOTE, T0, TOKEN, FakeJenkins, History, check_deployments, make_sha, table
from metrichub_plugin_jenkins import JenkinsConfig, JenkinsError, JenkinsSource

from metrichub_core import Change, Deployment, Event, SourceContext


async def collect(jenkins: FakeJenkins, state: dict[str, Any], since: Any = None, **overrides: Any) -> list[Event]:
    """One collection straight from the source (no hub), over a plain client."""
    config = JenkinsConfig.model_validate(table(jenkins, **overrides))
    async with httpx.AsyncClient() as http:
        ctx = SourceContext(http=http, logger=logging.getLogger("test.jenkins"), state=state)
        return [event async for event in JenkinsSource("ci", config, ctx).collect(since)]


def deployments(events: list[Event]) -> dict[str, Deployment]:
    return {event.id: event for event in events if isinstance(event, Deployment)}


def trees(jenkins: FakeJenkins) -> list[str]:
    return [request.query.get("tree", "") for request in jenkins.log]


async def test_freestyle_job_with_1000_builds_reads_every_build_in_ranges(jenkins: FakeJenkins) -> None:
    jenkins.job("deploy-api")
    history = History(jenkins)
    results = ["SUCCESS"] * 6 + ["FAILURE", "UNSTABLE", "ABORTED", "NOT_BUILT"]
    for _ in range(1000):
        history.build("deploy-api", history.rng.choice(results), commits=history.rng.randint(0, 2))
    state: dict[str, Any] = {}
    events = await collect(jenkins, state, jobs=["deploy-api"])
    full = len(jenkins.log)
    print(f"full sync of a job with 1,000 builds: {full} requests")
    assert full <= 12
    expected = history.expected({"deploy-api": "deploy-api"})
    assert len(expected) > 850  # the NOT_BUILT ones are no deployments
    check_deployments(events, expected)
    for tree in trees(jenkins):  # only allBuilds ranges: never ``builds`` (the newest 100), never depth=
        assert "allBuilds[" in tree and "]{" in tree and not tree.startswith("builds") and ",builds[" not in tree
    assert all("depth" not in request.query for request in jenkins.log)
    assert [tree.rsplit("{", 1)[1] for tree in trees(jenkins)] == [f"{n},{n + 100}}}" for n in range(0, 1000, 100)]

    jenkins.clear()
    again = await collect(jenkins, state, since=T0, jobs=["deploy-api"])
    print(f"re-run with nothing new: {len(jenkins.log)} request(s)")
    assert len(jenkins.log) == 1 and trees(jenkins)[0].endswith("{0,1}")
    assert deployments(again) == {}  # nothing new: nothing yielded again

    jenkins.clear()
    for result in ("SUCCESS", "FAILURE", "SUCCESS"):
        history.build("deploy-api", result, commits=2)
    newer = await collect(jenkins, state, since=T0, jobs=["deploy-api"])
    assert sorted(deployments(newer)) == ["deploy-api#1001", "deploy-api#1002", "deploy-api#1003"]
    check_deployments(events + newer, history.expected({"deploy-api": "deploy-api"}))
    assert len(jenkins.log) == 2  # {0,1} found a newer build, {1,101} reached the last one read


async def test_every_result_value_and_builds_still_building(jenkins: FakeJenkins) -> None:
    jenkins.job("deploy-api")
    history = History(jenkins)
    for result in ("SUCCESS", "FAILURE", "UNSTABLE", "ABORTED", "NOT_BUILT", "SUCCESS"):
        history.build("deploy-api", result, commits=1)
    running = history.build("deploy-api", "SUCCESS", commits=1, building=True)  # result set, still building
    after = history.build("deploy-api", "SUCCESS", commits=1)  # a concurrent build finished first
    state: dict[str, Any] = {}
    events = await collect(jenkins, state, jobs=["deploy-api"])
    got = deployments(events)
    assert {key: value.status for key, value in got.items()} == {
        "deploy-api#1": "success", "deploy-api#2": "failure", "deploy-api#3": "failure",  # UNSTABLE: failure
        "deploy-api#4": "cancelled", "deploy-api#6": "success",  # NOT_BUILT (#5) is no deployment
        "deploy-api#7": "running", "deploy-api#8": "success",
    }  # fmt: skip
    assert got["deploy-api#7"].finished_at is None
    # #6 ships what #2..#5 listed (failed, unstable, aborted, not built) and its own commit.
    commits = [build.commits[0].sha for build in jenkins.jobs["deploy-api"].builds]
    assert got["deploy-api#6"].change_ids == commits[1:6]
    assert got["deploy-api#8"].change_ids == commits[6:8]  # #7 has not succeeded (yet)
    check_deployments(events, history.expected({"deploy-api": "deploy-api"}))
    assert state["jobs"]["deploy-api"]["done"] == 6  # saved as of the last build before the running one

    jenkins.clear()
    history.finish(running, "SUCCESS")
    later = await collect(jenkins, state, since=T0, jobs=["deploy-api"])
    assert len(jenkins.log) == 1 and trees(jenkins)[0].endswith("{0,3}")  # #8, #7 and #6 in one range
    got = deployments(later)
    assert sorted(got) == ["deploy-api#7", "deploy-api#8"]  # read again, folded again in number order
    assert (got["deploy-api#7"].status, got["deploy-api#7"].change_ids) == ("success", [commits[6]])
    assert got["deploy-api#8"].change_ids == [commits[7]]
    assert got["deploy-api#7"].finished_at == running.started + running.duration
    check_deployments(events + later, history.expected({"deploy-api": "deploy-api"}))
    assert after.number == 8 and state["jobs"]["deploy-api"]["done"] == 8
    fresh = await collect(jenkins, {}, jobs=["deploy-api"])  # what a full sync says now
    assert deployments(fresh)["deploy-api#8"] == got["deploy-api#8"]


async def test_pipeline_change_sets_and_a_shared_library(jenkins: FakeJenkins) -> None:
    jenkins.job("shop", pipeline=True)
    history = History(jenkins)
    library = [history.commits("library", 1), history.commits("library", 2)]
    history.build("shop", "SUCCESS", commits=1)
    history.build("shop", "SUCCESS", commits=3, library=library[0])
    history.build("shop", "SUCCESS", commits=2, library=library[1])
    own = {build.number: [c.sha for c in build.commits] for build in jenkins.jobs["shop"].builds}
    events = await collect(jenkins, {}, jobs=["shop"], repositories={"shop": "acme/shop"})
    got = deployments(events)
    assert got["shop#2"].change_ids == own[2] and got["shop#3"].change_ids == own[3]  # library commits left out
    assert got["shop#3"].commit_sha == jenkins.jobs["shop"].builds[2].sha  # the job's own checkout
    changes = {event.id: event for event in events if isinstance(event, Change)}
    for build in jenkins.jobs["shop"].builds[1:]:
        for commit in build.commits:
            assert changes[commit.sha].committed_at == commit.at.replace(
                microsecond=commit.at.microsecond // 1000 * 1000
            )
    # Without ``repositories`` Jenkins cannot tell the checkouts apart: all listed commits count.
    plain = deployments(await collect(jenkins, {}, jobs=["shop"]))
    assert plain["shop#3"].change_ids == [c.sha for c in library[1]] + own[3]
    assert plain["shop#3"].commit_sha == library[1][-1].sha  # the first checkout: the library's
    assert LIBRARY_REMOTE not in str(plain)


async def test_staging_to_production_promotion_through_the_environment_parameter(jenkins: FakeJenkins) -> None:
    jenkins.job("deploy-api")
    history = History(jenkins)
    history.build("deploy-api", "SUCCESS", environment="staging", commits=2)  # 1
    history.build("deploy-api", "SUCCESS", environment="staging", commits=2)  # 2
    history.build("deploy-api", "SUCCESS", environment="production")  # 3: promotes what 1 and 2 listed
    history.build("deploy-api", "FAILURE", environment="staging", commits=1)  # 4
    history.build("deploy-api", "SUCCESS", environment="staging", commits=1)  # 5
    history.build("deploy-api", "FAILURE", environment="prod")  # 6
    history.build("deploy-api", "SUCCESS", environment="prod")  # 7: ships 4 and 5's commits
    history.build("deploy-api", "SUCCESS", commits=1)  # 8: no parameter: production
    events = await collect(jenkins, {}, jobs=["deploy-api"])
    got = deployments(events)
    listed = {build.number: [c.sha for c in build.commits] for build in jenkins.jobs["deploy-api"].builds}
    assert got["deploy-api#3"].environment == "production"
    assert got["deploy-api#3"].change_ids == listed[1] + listed[2]
    assert got["deploy-api#5"].environment == "staging" and got["deploy-api#5"].change_ids == listed[4] + listed[5]
    assert got["deploy-api#7"].change_ids == listed[4] + listed[5]
    assert got["deploy-api#7"].labels == {"job": "deploy-api", "jenkins_environment": "prod"}
    assert got["deploy-api#8"].change_ids == listed[8]
    check_deployments(events, history.expected({"deploy-api": "deploy-api"}))


@pytest.mark.parametrize("unstable", ["failure", "success"])
async def test_unstable_both_ways(jenkins: FakeJenkins, unstable: str) -> None:
    jenkins.job("deploy-api")
    history = History(jenkins)
    for result in ("SUCCESS", "UNSTABLE", "SUCCESS"):
        history.build("deploy-api", result, commits=2)
    events = await collect(jenkins, {}, jobs=["deploy-api"], unstable=unstable)
    got = deployments(events)
    listed = {build.number: [c.sha for c in build.commits] for build in jenkins.jobs["deploy-api"].builds}
    assert got["deploy-api#2"].status == unstable
    if unstable == "failure":
        assert got["deploy-api#2"].change_ids == [] and got["deploy-api#3"].change_ids == listed[2] + listed[3]
    else:
        assert got["deploy-api#2"].change_ids == listed[2] and got["deploy-api#3"].change_ids == listed[3]
    check_deployments(events, history.expected({"deploy-api": "deploy-api"}, unstable=unstable))


async def test_deploy_stage_a_skipped_stage_is_no_deployment(jenkins: FakeJenkins) -> None:
    jenkins.job("shop", pipeline=True)
    history = History(jenkins)
    ran = [("Build", "SUCCESS"), ("Deploy to prod", "SUCCESS")]
    history.build("shop", "SUCCESS", commits=1, stages=ran)  # 1
    history.build("shop", "SUCCESS", commits=2, stages=[("Build", "SUCCESS"), ("Deploy to prod", "SKIPPED")])  # 2
    history.build("shop", "SUCCESS", commits=1, stages=[("Build", "SUCCESS"), ("Deploy to prod", "NOT_EXECUTED")])
    history.build("shop", "FAILURE", commits=1, stages=[("Build", "SUCCESS"), ("Deploy to prod", "FAILED")])  # 4
    history.build("shop", "SUCCESS", commits=1, stages=[("Build", "SUCCESS")])  # 5: no deploy stage at all
    history.build("shop", "UNSTABLE", commits=1, stages=[("Deploy to prod", "SUCCESS"), ("Smoke", "UNSTABLE")])
    running = history.build("shop", None, commits=1, building=True, stages=[("Deploy to prod", "IN_PROGRESS")])
    state: dict[str, Any] = {}
    events = await collect(jenkins, state, jobs=["shop"], deploy_stage="(?i)deploy")
    got = deployments(events)
    assert {key: value.status for key, value in got.items()} == {
        "shop#1": "success", "shop#4": "failure", "shop#6": "success"  # 6: deployed, then a later stage was unstable
    }  # fmt: skip
    listed = {build.number: [c.sha for c in build.commits] for build in jenkins.jobs["shop"].builds}
    assert got["shop#6"].change_ids == listed[2] + listed[3] + listed[4] + listed[5] + listed[6]
    check_deployments(events, history.expected({"shop": "shop"}, deploy_stage="deploy"))
    describes = [request.path for request in jenkins.log if request.path.endswith("/wfapi/describe")]
    assert sorted(describes) == [f"/job/shop/{n}/wfapi/describe" for n in range(1, 7)]  # not the running one

    jenkins.clear()
    running.stages = [("Deploy to prod", "SUCCESS")]
    history.finish(running, "SUCCESS")
    later = await collect(jenkins, state, since=T0, jobs=["shop"], deploy_stage="(?i)deploy")
    assert [request.path for request in jenkins.log] == ["/job/shop/api/json", "/job/shop/7/wfapi/describe"]
    assert deployments(later)["shop#7"].change_ids == listed[7]
    check_deployments(events + later, history.expected({"shop": "shop"}, deploy_stage="deploy"))
    jenkins.clear()
    await collect(jenkins, state, since=T0, jobs=["shop"], deploy_stage="(?i)deploy")
    assert [request.path for request in jenkins.log] == ["/job/shop/api/json"]  # stages are asked once


async def test_multibranch_projects_and_folders_expand(jenkins: FakeJenkins) -> None:
    jenkins.folder("platform")
    jenkins.folder("platform/shop", multibranch=True)
    history = History(jenkins)
    for branch in ("main", "feature%2Fcart", "PR-2"):
        jenkins.job(f"platform/shop/{branch}", pipeline=True)
        history.build(f"platform/shop/{branch}", "SUCCESS", commits=1)
        history.build(f"platform/shop/{branch}", "SUCCESS", commits=2)
    jenkins.job("platform/tools")
    history.build("platform/tools", "SUCCESS")
    state: dict[str, Any] = {}
    events = await collect(jenkins, state, jobs=["platform/shop"])
    assert sorted(deployments(events)) == ["platform/shop/main#1", "platform/shop/main#2"]
    assert {d.service for d in deployments(events).values()} == {"shop"}  # the project's name

    jenkins.job("platform/shop/master", pipeline=True)  # a new branch: no configuration change needed
    history.build("platform/shop/master", "SUCCESS", commits=1)
    jenkins.clear()
    later = await collect(jenkins, state, since=T0, jobs=["platform/shop"])
    assert sorted(deployments(later)) == ["platform/shop/master#1"]
    assert len(jenkins.log) == 3  # the project's listing, main (nothing new), master

    wide = await collect(jenkins, {}, jobs=["platform"], branches="^(main|feature/.*)$", services={"platform": "web"})
    assert sorted(deployments(wide)) == [
        "platform/shop/feature%2Fcart#1", "platform/shop/feature%2Fcart#2", "platform/shop/main#1",
        "platform/shop/main#2", "platform/tools#1",
    ]  # fmt: skip
    assert {d.service for d in deployments(wide).values()} == {"web"}
    branch_path = (
        "/job/platform/job/shop/job/feature%2Fcart/api/json"  # sent as feature%252Fcart, decoded by the server
    )
    assert branch_path in [request.path for request in jenkins.log]
    expected = history.expected(
        {name: "web" for name in ("platform/shop/main", "platform/shop/feature%2Fcart", "platform/tools")}
    )
    check_deployments(wide, expected)


async def test_basic_auth_is_sent_preemptively_and_the_token_never_shown(jenkins: FakeJenkins, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    jenkins.job("deploy-api")
    History(jenkins).build("deploy-api", "SUCCESS", commits=1)
    await collect(jenkins, {}, jobs=["deploy-api"])
    assert jenkins.log and all(request.headers["authorization"].startswith("Basic ") for request in jenkins.log)
    wrong = "0000WrongTokenThatMustNotLeak0000"
    with pytest.raises(JenkinsError) as raised:
        await collect(jenkins, {}, jobs=["deploy-api"], api_token=wrong)
    assert "403" in str(raised.value) and "api_token" in str(raised.value)
    assert wrong not in str(raised.value) and wrong not in caplog.text and TOKEN not in caplog.text
    with pytest.raises(JenkinsError, match="404 not found"):
        await collect(jenkins, {}, jobs=["no-such-job"])


async def test_a_recreated_job_is_read_again(jenkins: FakeJenkins) -> None:
    job = jenkins.job("deploy-api")
    history = History(jenkins)
    for _ in range(5):
        history.build("deploy-api", "SUCCESS", commits=1)
    state: dict[str, Any] = {}
    await collect(jenkins, state, jobs=["deploy-api"])
    job.builds = job.builds[:2]  # deleted and recreated: numbers start again
    history.build("deploy-api", "SUCCESS", commits=1)
    events = await collect(jenkins, state, since=T0, jobs=["deploy-api"])
    assert sorted(deployments(events)) == ["deploy-api#1", "deploy-api#2", "deploy-api#3"]
    assert state["jobs"]["deploy-api"]["done"] == 3
    assert make_sha("deploy-api", "root") not in [d.commit_sha for d in deployments(events).values()]
    assert timedelta(0) < history.clock - T0
