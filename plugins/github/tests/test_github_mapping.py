"""Mapping rules: deployment statuses, workflow run conclusions, incident issues."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from metrichub_plugin_github._deployments import deployment_outcome, run_outcome
from metrichub_plugin_github._incidents import to_incident

FIXTURES = Path(__file__).parent / "fixtures"


def status(state: str, minute: int, id: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = json.loads((FIXTURES / "list_deployment_statuses.json").read_text())[0]
    item.update(state=state, id=id or minute, created_at=f"2026-03-02T10:{minute:02d}:00Z")
    return item


def at(minute: int) -> datetime:
    return datetime(2026, 3, 2, 10, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], ("running", None, False)),
        ([("pending", 1)], ("running", None, False)),
        ([("queued", 1), ("in_progress", 2)], ("running", None, False)),
        ([("in_progress", 1), ("success", 5)], ("success", at(5), True)),
        ([("in_progress", 1), ("failure", 6)], ("failure", at(6), True)),
        ([("in_progress", 1), ("error", 7)], ("failure", at(7), True)),
        # inactive = a success later superseded: the success and its time stand
        ([("in_progress", 1), ("success", 5), ("inactive", 30)], ("success", at(5), True)),
        ([("inactive", 30)], ("success", at(30), True)),
        # a retried deployment: the newest decisive status wins
        ([("failure", 3), ("in_progress", 4), ("success", 9)], ("success", at(9), True)),
    ],
)
def test_deployment_outcome(states: list[tuple[str, int]], expected: tuple[Any, ...]) -> None:
    statuses = [status(state, minute) for state, minute in reversed(states)]  # the API lists newest first
    outcome = deployment_outcome(statuses)
    assert (outcome.status, outcome.finished_at, outcome.final) == expected


def test_deployment_outcome_orders_by_time_not_by_list_position() -> None:
    shuffled = [status("in_progress", 1), status("success", 5), status("inactive", 30)]
    assert deployment_outcome(shuffled).finished_at == at(5)
    assert deployment_outcome(shuffled).url == "https://example.com/deployment/42/output"


def test_a_deployment_is_as_new_as_its_newest_status() -> None:
    """``updated_at``: a replayed older status (an earlier version) never replaces a newer one."""
    assert deployment_outcome([status("success", 5), status("inactive", 30), status("in_progress", 1)]).updated_at == (
        at(30)
    )
    assert deployment_outcome([status("in_progress", 1)]).updated_at == at(1)
    assert deployment_outcome([]).updated_at is None


@pytest.mark.parametrize(
    ("status", "conclusion", "expected"),
    [
        ("completed", "success", "success"),
        ("completed", "failure", "failure"),
        ("completed", "timed_out", "failure"),
        ("completed", "startup_failure", "failure"),
        ("completed", "cancelled", "cancelled"),
        ("completed", "skipped", None),
        ("completed", "neutral", None),
        ("completed", "action_required", None),
        ("in_progress", None, "running"),
        ("queued", None, "running"),
    ],
)
def test_run_outcome(status: str, conclusion: str | None, expected: str | None) -> None:
    run: dict[str, Any] = json.loads((FIXTURES / "list_workflow_runs.json").read_text())["workflow_runs"][0]
    run.update(status=status, conclusion=conclusion)
    outcome = run_outcome(run)
    assert (outcome.status if outcome else None) == expected
    if outcome is not None:  # the example run's own update time
        assert outcome.updated_at == datetime(2020, 1, 22, 19, 33, 8, tzinfo=UTC)


def test_incident_from_the_issue_example() -> None:
    issue: dict[str, Any] = json.loads((FIXTURES / "list_repository_issues.json").read_text())[0]
    del issue["pull_request"]
    issue.update(
        state="closed",
        closed_at="2011-04-22T15:00:00Z",
        body="Caused-by: a84d88e",
        labels=[*issue["labels"], {"name": "incident"}, {"name": "sev1"}, {"name": "seventh-heaven"}],
    )
    known = {"a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d": "1"}

    def resolve(reference: str) -> str:
        return next((known[sha] for sha in known if sha.startswith(reference)), reference)

    incident = to_incident(
        issue, repository="octocat/Hello-World", source="gh", service="hello", resolve_deployment=resolve
    )
    assert incident.id == "octocat/Hello-World#1347"
    assert incident.started_at == datetime(2011, 4, 22, 13, 33, 48, tzinfo=UTC)
    assert incident.resolved_at == datetime(2011, 4, 22, 15, 0, tzinfo=UTC)
    assert (incident.caused_by, incident.severity, incident.title) == ("1", "sev1", "Found a bug")
    assert incident.url == "https://github.com/octocat/Hello-World/issues/1347"
    assert incident.updated_at == datetime(2011, 4, 22, 13, 33, 48, tzinfo=UTC)  # the issue's updated_at
    issue["state"] = "open"  # an open issue has no resolution, whatever closed_at says
    assert to_incident(issue, repository="octocat/Hello-World", source="gh", service="hello").resolved_at is None
