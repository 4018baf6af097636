"""Unit tests of single functions on the recorded payloads: build parsing, stage outcomes, the ledger's caps."""

from __future__ import annotations

import copy

from jenkins_fake import fixture
from metrichub_plugin_jenkins._builds import deployment_status, from_millis, parse_build
from metrichub_plugin_jenkins._ledger import FIRST_SHIP, MAX_PENDING, JobLedger
from metrichub_plugin_jenkins._stages import stage_outcome


def test_recorded_freestyle_and_pipeline_builds() -> None:
    elements = fixture("job.allBuilds-elements.freestyle.devlake.json")
    records = [parse_build(item, parameter="ENVIRONMENT", repository=None) for item in elements]
    first = records[0]
    assert (first.number, first.result, first.sha) == (31, "SUCCESS", "0f886c74949c3ee7e489188911c7dc0c1d547418")
    assert first.started_at == from_millis(1650024049161) and first.finished_at == from_millis(1650024049161 + 1587)
    assert first.updated_at == first.finished_at  # a finished build's version: timestamp + duration
    assert first.environment_name is None and first.commits == [] and not first.pipeline
    assert {record.pipeline for record in records} == {True, False}  # the recording mixes WorkflowRun in
    for item, record in zip(elements, records, strict=True):
        assert record.number == item["number"] and record.result == item["result"]


def test_recorded_multibranch_runs_with_and_without_build_data() -> None:
    elements = fixture("job.allBuilds-elements.multibranch.devlake.json")
    records = [parse_build(item, parameter="ENVIRONMENT", repository=None) for item in elements]
    assert all(record.pipeline and not record.building for record in records)
    assert records[0].sha == "c83ae02076382670e286ac2474b7a7327fc28cde"
    assert any(record.sha is None for record in records)  # aborted or failed before checkout
    assert {deployment_status(record, "failure") for record in records} >= {"success", "failure", "cancelled"}


def test_recorded_change_set_and_parameters() -> None:
    build = fixture("build.changesets.jenkins-rest.json")
    record = parse_build(build, parameter="fish", repository=None)
    assert record.commits == [("d27afa0805201322d846d7defc29b82c88d9b5ce", 1461091892486)]
    assert record.environment_name == "salmon" and record.url == "http://localhost:32769/job/fish/10/"
    running = parse_build({**build, "building": True}, parameter="fish", repository=None)
    assert deployment_status(running, "failure") == "running" and running.finished_at is None  # result already set
    # Running, its version is its start; finished, its end: a stale "running" read never replaces the result.
    assert running.updated_at == from_millis(build["timestamp"]) < record.updated_at
    assert record.updated_at == from_millis(build["timestamp"] + build["duration"])
    for result, status in (("UNSTABLE", "success"), ("NOT_BUILT", None), (None, None), ("ABORTED", "cancelled")):
        assert (
            deployment_status(parse_build({**build, "result": result}, parameter="x", repository=None), "success")
            == status
        )


def test_stage_outcomes_from_the_documented_describe() -> None:
    describe = fixture("local/wfapi.describe.pipeline-stage-view.json")
    assert stage_outcome(describe, "(?i)deploy", "failure") is None  # PAUSED_PENDING_INPUT: has not run
    stages = describe["stages"]
    for status, outcome in (("SUCCESS", "success"), ("FAILED", "failure"), ("ABORTED", "cancelled"),
                            ("UNSTABLE", "success"), ("SKIPPED", None), ("NOT_EXECUTED", None)):  # fmt: skip
        changed = copy.deepcopy(describe)
        changed["stages"][2]["status"] = status
        assert stage_outcome(changed, "(?i)deploy", "success") == outcome, status
    two = {"stages": [*stages[:2], {**stages[2], "status": "SUCCESS"}, {**stages[2], "status": "FAILED"}]}
    assert stage_outcome(two, "Deploy", "failure") == "failure"  # the worst of two deploy stages
    assert stage_outcome({"stages": stages[:2]}, "Deploy", "failure") is None  # no such stage


def test_ledger_ships_each_commit_once_and_caps_what_it_holds() -> None:
    ledger = JobLedger()
    assert ledger.fold("staging", [("a", 1), ("b", 2)], success=True) == [("a", 1), ("b", 2)]
    assert ledger.fold("production", [("b", 2), ("c", 3)], success=True) == [("a", 1), ("b", 2), ("c", 3)]
    assert ledger.fold("production", [], success=True) == []
    many = [(f"{n:040x}", n) for n in range(MAX_PENDING + 10)]
    ledger.fold("staging", many, success=False)
    assert len(ledger.commits) == MAX_PENDING  # the oldest beyond the cap are dropped
    shipped = ledger.fold("qa", [("z", 9)], success=True)  # a new environment: at most FIRST_SHIP earlier commits
    assert len(shipped) == FIRST_SHIP + 1 and shipped[-1] == ("z", 9)
    restored = JobLedger.load(ledger.dump())
    assert restored.dump() == ledger.dump()
