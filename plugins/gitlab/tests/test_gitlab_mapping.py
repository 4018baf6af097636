"""Unit tests of the mapping functions on GitLab's own example payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from metrichub_plugin_gitlab._changes import merged_times
from metrichub_plugin_gitlab._deployments import DeploymentRecord, parse_time, sha_from_commit_url, to_deployment
from metrichub_plugin_gitlab._incidents import is_incident, to_incident

REST = Path(__file__).parent / "fixtures" / "rest"


def rest(name: str) -> Any:
    return json.loads((REST / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-08-11T07:36:40.222Z", datetime(2016, 8, 11, 7, 36, 40, 222000, tzinfo=UTC)),
        ("2016-08-11T09:36:01.000+02:00", datetime(2016, 8, 11, 7, 36, 1, tzinfo=UTC)),
        ("2021-04-28 21:50:00 +0200", datetime(2021, 4, 28, 19, 50, tzinfo=UTC)),  # deployment hooks
        ("2017-09-15 16:50:55 UTC", datetime(2017, 9, 15, 16, 50, 55, tzinfo=UTC)),  # issue hooks
    ],
)
def test_parse_time_reads_every_form_gitlab_sends(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_parse_time_refuses_a_time_without_zone() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        parse_time("2021-04-28 21:50:00")


def test_the_sha_comes_from_the_commit_url() -> None:
    url = "http://10.126.0.2:3000/root/test-deployment-webhooks/-/commit/279484c09fbe69ededfced8c1bb6e6d24616b468"
    assert sha_from_commit_url(url) == "279484c09fbe69ededfced8c1bb6e6d24616b468"
    assert sha_from_commit_url("http://host/root/x/-/commit/279484c0") is None
    assert sha_from_commit_url(None) is None


def test_the_example_deployments_map_without_a_top_level_finished_at() -> None:
    first, second = rest("list_project_deployments.json")
    record = DeploymentRecord.from_api("root/project", first)
    assert record is not None
    # status "created" is not finished, although its job finished; deployable.started_at is null.
    assert (record.status, record.finished_at) == ("running", None)
    assert record.started_at == parse_time(first["created_at"])
    assert (record.id, record.environment_name, record.sha) == ("41", "production", first["sha"])
    assert record.url == "http://gitlab.dev/root/project/pipelines/12"
    # Its version is GitLab's updated_at (2016-08-11T07:38:12.414Z).
    assert to_deployment(record, source="gl", service="p", environment="production").updated_at == datetime(
        2016, 8, 11, 7, 38, 12, 414000, tzinfo=UTC
    )
    second["status"] = "success"
    done = DeploymentRecord.from_api("root/project", second)
    assert done is not None and done.finished_at == parse_time(second["deployable"]["finished_at"])
    second.update(status="failed", deployable=None)  # created through the API: no job
    failed = DeploymentRecord.from_api("root/project", second)
    assert failed is not None and (failed.status, failed.finished_at) == ("failure", parse_time(second["updated_at"]))
    second["status"] = "skipped"
    assert DeploymentRecord.from_api("root/project", second) is None


def test_the_example_issue_is_an_incident_only_by_type_or_label() -> None:
    [issue] = rest("list_project_issues.json")
    assert not is_incident(issue, None) and not is_incident(issue, "outage")
    assert is_incident(issue, "FOO")  # labels compare case-blind
    assert is_incident({**issue, "issue_type": "incident"}, None)
    incident = to_incident(issue, project="my-group/my-project", source="gl", service="my-project")
    assert incident.id == "my-group/my-project#1"
    assert (incident.started_at, incident.resolved_at) == (
        parse_time(issue["created_at"]),
        parse_time(issue["closed_at"]),
    )
    assert incident.severity is None  # UNKNOWN, the default of every incident
    assert incident.updated_at == datetime(2016, 1, 4, 15, 31, 46, 176000, tzinfo=UTC)  # the issue's updated_at
    assert (
        to_incident({**issue, "severity": "CRITICAL"}, project="p/q", source="gl", service="q").severity == "critical"
    )
    reopened = to_incident({**issue, "state": "opened"}, project="p/q", source="gl", service="q")
    assert reopened.resolved_at is None


def test_a_merge_commit_passes_merged_at_to_the_commits_it_brought_in() -> None:
    def commit(sha: str, *parents: str) -> dict[str, Any]:
        return {"id": sha, "parent_ids": list(parents)}

    # main: a - m1 (merge of b1, b2) - c (direct) - s (squash); "a" is outside the range.
    commits = [commit("b1", "a"), commit("b2", "b1"), commit("m1", "a", "b2"), commit("c", "m1"), commit("s", "c")]
    merged_m1 = datetime(2026, 3, 2, 10, tzinfo=UTC)
    merged_s = datetime(2026, 3, 2, 11, tzinfo=UTC)
    times = merged_times(commits, {"m1": merged_m1, "s": merged_s, "elsewhere": merged_s})
    assert times == {"b1": merged_m1, "b2": merged_m1, "m1": merged_m1, "s": merged_s}
    assert merged_times(commits, {}) == {}


def test_project_state_round_trips_and_bounds_what_it_keeps() -> None:
    from metrichub_plugin_gitlab._state import LOOKBACK, MERGED_MAX, ProjectState

    state = ProjectState()
    for number in range(MERGED_MAX + 5):
        state.remember_merge(f"sha{number}", "2026-03-02T10:00:00Z")
    assert len(state.merged) == MERGED_MAX + 5  # whole during the run
    items = [
        {"id": 1, "updated_at": "2026-03-02T09:00:00.000Z"},
        {"id": 2, "updated_at": "2026-03-02T09:55:00.000Z"},
        {"id": 3, "updated_at": "2026-03-02T10:00:00.000Z"},
    ]
    state.deployments.advance(items)
    again = ProjectState(state.dump())
    assert len(again.merged) == MERGED_MAX and "sha4" not in again.merged and f"sha{MERGED_MAX + 4}" in again.merged
    assert again.deployments.cursor == "2026-03-02T10:00:00.000Z"
    assert set(again.deployments.seen) == {"2", "3"}  # within twice the look-back of the cursor
    assert again.deployments.after() == (parse_time("2026-03-02T10:00:00Z") - LOOKBACK).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert not again.deployments.is_new(items[2]) and again.deployments.is_new({**items[2], "updated_at": "x"})
