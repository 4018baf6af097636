"""One Jenkins build as MetricHub needs it: the ``tree=`` that asks for it and its parsing.

Only the fields below are requested (``tree=allBuilds[…]{M,N}``): never ``depth=``, never
the whole ``BuildData`` (its ``buildsByBranchName`` grows with every branch ever built).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

__all__ = [
    "BUILD_FIELDS",
    "from_millis",
    "BuildRecord",
    "Commit",
    "Status",
    "builds_tree",
    "deployment_status",
    "parse_build",
]

Commit = tuple[str, int]
"""``(commitId, timestamp in ms)`` of one change-set item."""

_ITEMS = "items[commitId,timestamp]"
BUILD_FIELDS = (
    "number,url,result,building,timestamp,duration,"
    "actions[parameters[name,value],lastBuiltRevision[SHA1],remoteUrls],"
    f"changeSet[{_ITEMS}],changeSets[{_ITEMS}]"
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PIPELINE_RUN = "org.jenkinsci.plugins.workflow.job.WorkflowRun"
Status = Literal["success", "failure", "cancelled", "running"]


def builds_tree(start: int, end: int, *, job_fields: str = "") -> str:
    """``tree=`` for the builds at positions ``[start, end)``, newest first (Jenkins' ``{M,N}``)."""
    prefix = f"{job_fields}," if job_fields else ""
    return f"{prefix}allBuilds[{BUILD_FIELDS}]{{{start},{end}}}"


@dataclass
class BuildRecord:
    """The fields of a build the source uses, parsed from one ``allBuilds`` element."""

    number: int
    url: str | None
    result: str | None
    building: bool
    started_at: datetime
    duration: timedelta
    pipeline: bool
    environment_name: str | None
    sha: str | None
    commits: list[Commit] = field(default_factory=list)
    other_checkouts: int = 0  # BuildData actions of other repositories (libraries, extra checkouts)

    @property
    def finished_at(self) -> datetime | None:
        return None if self.building else self.started_at + self.duration

    @property
    def updated_at(self) -> datetime:
        """A build changes once, when it finishes: its end, else its start (the version of its deployment)."""
        return self.finished_at or self.started_at


def parse_build(item: dict[str, Any], *, parameter: str, repository: str | None) -> BuildRecord:
    """Parse an ``allBuilds`` element; ``repository`` (a regex) picks the job's own checkout."""
    actions = [action for action in item.get("actions") or [] if isinstance(action, dict)]
    checkouts = [action for action in actions if isinstance(action.get("lastBuiltRevision"), dict)]
    own = _own_checkout(checkouts, repository)
    own_sha = _sha(own)
    others = {_sha(action) for action in checkouts if action is not own} - {None, own_sha}
    sets = item.get("changeSets")
    if not isinstance(sets, list):
        sets = [item["changeSet"]] if isinstance(item.get("changeSet"), dict) else []
    commits: list[Commit] = []
    for change_set in sets:
        items = [entry for entry in (change_set or {}).get("items") or [] if entry.get("commitId")]
        ids = {str(entry["commitId"]) for entry in items}
        if repository is not None and ids & others and own_sha not in ids:
            continue  # another checkout's commits (a shared library): Jenkins shows its head among them
        commits += [(str(entry["commitId"]), int(entry.get("timestamp") or 0)) for entry in items]
    timestamp = int(item.get("timestamp") or 0)
    return BuildRecord(
        number=int(item["number"]),
        url=item.get("url"),
        result=item.get("result"),
        building=bool(item.get("building")),
        started_at=from_millis(timestamp),
        duration=timedelta(milliseconds=max(0, int(item.get("duration") or 0))),
        pipeline=item.get("_class") == _PIPELINE_RUN,
        environment_name=_parameter(actions, parameter),
        sha=own_sha,
        commits=commits,
        other_checkouts=len(others),
    )


def from_millis(value: int) -> datetime:
    """A Jenkins time (ms since the epoch) as an exact UTC datetime (no float rounding)."""
    return EPOCH + timedelta(milliseconds=value)


def deployment_status(record: BuildRecord, unstable: Status) -> Status | None:
    """A build's deployment status; ``None`` when it is no deployment (``NOT_BUILT``, no result)."""
    if record.building:
        return "running"  # Jenkins sets ``result`` before the build is over
    statuses: dict[str, Status] = {
        "SUCCESS": "success",
        "FAILURE": "failure",
        "UNSTABLE": unstable,
        "ABORTED": "cancelled",
    }
    return statuses.get(record.result or "")


def _own_checkout(checkouts: list[dict[str, Any]], repository: str | None) -> dict[str, Any] | None:
    if repository is None:
        return checkouts[0] if checkouts else None
    for action in checkouts:
        if any(re.search(repository, str(url)) for url in action.get("remoteUrls") or []):
            return action
    return None


def _sha(action: dict[str, Any] | None) -> str | None:
    if action is None:
        return None
    sha = action["lastBuiltRevision"].get("SHA1")
    return str(sha) if sha else None


def _parameter(actions: list[dict[str, Any]], name: str) -> str | None:
    for action in actions:
        for parameter in action.get("parameters") or []:
            if isinstance(parameter, dict) and parameter.get("name") == name:
                value = parameter.get("value")
                return None if value is None else str(value)
    return None
