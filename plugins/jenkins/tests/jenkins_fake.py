"""A fake Jenkins served over real HTTP (the core's ``FakeUpstream``), built from recorded Jenkins payloads.

Every build is a copy of a fixture in ``fixtures/`` (DevLake's recorded ``allBuilds`` elements,
jenkins-rest's change-set build, the Pipeline REST API's ``wfapi/describe``) with only numbers,
results, times, SHAs, remotes, parameters, change-set items and stage statuses changed.

Like Jenkins, the fake answers ``403`` to a request without basic auth, reads ``tree=`` (fields,
nested fields and ``{M,N}`` ranges) and serves only what it names, always with ``_class``; an
untreed job shows ``builds`` (the newest 100, number and url only) and hides ``allBuilds``.
``depth=`` is refused, so a test fails if the plugin ever uses it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from metrichub_core.testing import FakeUpstream, RecordedRequest, Reply

FIXTURES = Path(__file__).parent / "fixtures"
USER = "metrichub"
TOKEN = "11e0a1b2c3SuperSecretJenkinsApiToken42"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

FREESTYLE = "hudson.model.FreeStyleProject"
PIPELINE = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
FOLDER = "com.cloudbees.hudson.plugins.folder.Folder"
MULTIBRANCH = "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
PIPELINE_RUN = "build.multibranch-workflowrun.devlake.json"
FREESTYLE_BUILD = "build.freestyle.git-builddata.devlake.json"
REMOTE = "https://github.com/acme/{}.git"
LIBRARY_REMOTE = "https://github.com/acme/jenkins-shared-library.git"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def make_sha(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


# -- tree= as Jenkins reads it (core/src/main/resources/hudson/model/Api/index.jelly) ---------------

Spec = dict[str, tuple["Spec | None", "tuple[int | None, int | None] | None"]]


def parse_tree(text: str) -> Spec:
    """``a,b[c,d[e]]{0,10}`` → ``{"a": (None, None), "b": ({…}, (0, 10))}``."""
    spec, position = _parse_list(text, 0)
    if position != len(text):
        raise ValueError(f"bad tree at {position}: {text!r}")
    return spec


def _parse_list(text: str, position: int) -> tuple[Spec, int]:
    spec: Spec = {}
    while position < len(text) and text[position] != "]":
        start = position
        while position < len(text) and text[position] not in ",[]{":
            position += 1
        name = text[start:position]
        sub: Spec | None = None
        bounds: tuple[int | None, int | None] | None = None
        if position < len(text) and text[position] == "[":
            sub, position = _parse_list(text, position + 1)
            if position >= len(text) or text[position] != "]":
                raise ValueError(f"unclosed [ in {text!r}")
            position += 1
        if position < len(text) and text[position] == "{":
            end = text.index("}", position)
            bounds = _range(text[position + 1 : end])
            position = end + 1
        spec[name] = (sub, bounds)
        if position < len(text) and text[position] == ",":
            position += 1
    return spec, position


def _range(text: str) -> tuple[int | None, int | None]:
    if "," not in text:
        return int(text), int(text) + 1  # {N}: just the N-th
    low, high = text.split(",", 1)
    return (int(low) if low else None), (int(high) if high else None)


class Builds(list[Any]):
    """A job's builds, newest first, turned into JSON only once sliced (a 1,000-build job stays cheap)."""


def prune(value: Any, spec: Spec | None) -> Any:
    """Keep what ``spec`` names (and ``_class``), slicing ranged lists, as Jenkins' tree does."""
    if callable(value):
        value = value()
    if isinstance(value, list):
        return [prune(item, spec) for item in value]
    if not isinstance(value, dict):
        return value
    out = {"_class": value["_class"]} if "_class" in value else {}
    for name, (sub, bounds) in (spec or {}).items():
        if name not in value or name == "_class":
            continue
        item = value[name]
        if callable(item):
            item = item()
        if isinstance(item, Builds):  # slice first, then build the JSON of what is served
            item = [build.json() for build in (item[slice(*bounds)] if bounds is not None else item)]
        elif isinstance(item, list) and bounds is not None:
            item = item[slice(*bounds)]
        out[name] = prune(item, sub) if sub is not None else _leaf(item)
    return out


def _leaf(value: Any) -> Any:
    if isinstance(value, dict):
        return {"_class": value["_class"]} if "_class" in value else {}
    if isinstance(value, list):
        return [_leaf(item) for item in value]
    return value


# -- the fake's model ------------------------------------------------------------------------------


@dataclass
class FakeCommit:
    sha: str
    at: datetime


@dataclass
class FakeBuild:
    job: FakeJob
    number: int
    result: str | None
    building: bool
    started: datetime
    duration: timedelta
    environment: str | None = None
    commits: list[FakeCommit] = field(default_factory=list)
    sha: str | None = None
    stages: list[tuple[str, str]] | None = None
    library: list[FakeCommit] | None = None  # a shared library checked out (and in the changelog) too

    def finish(self, result: str, duration: timedelta) -> None:
        self.result, self.building, self.duration = result, False, duration

    @property
    def url(self) -> str:
        return f"{self.job.url}{self.number}/"

    def json(self) -> dict[str, Any]:
        pipeline = self.job.cls == PIPELINE
        template = (
            "build.multibranch-workflowrun.devlake.json" if pipeline else "build.freestyle.git-builddata.devlake.json"
        )
        item: dict[str, Any] = copy.deepcopy(fixture(template))
        actions: list[dict[str, Any]] = item["actions"]
        own = next(action for action in actions if "lastBuiltRevision" in action)
        own["lastBuiltRevision"]["SHA1"] = self.sha
        own["remoteUrls"] = [REMOTE.format(self.job.full_name.split("/")[0])]
        sets = [_change_set(self.commits)]
        if self.library is not None:
            library = copy.deepcopy(own)
            library["lastBuiltRevision"]["SHA1"] = self.library[-1].sha
            library["remoteUrls"] = [LIBRARY_REMOTE]
            actions.insert(actions.index(own), library)  # libraries load before the job's own checkout
            sets.insert(0, _change_set(self.library))
        if self.environment is not None:
            actions.insert(0, _parameters(self.environment))
        item.update(
            number=self.number, url=self.url, result=self.result, building=self.building,
            timestamp=ms(self.started), duration=0 if self.building else self.duration // timedelta(milliseconds=1),
            fullDisplayName=f"{' » '.join(self.job.full_name.split('/'))} #{self.number}",
        )  # fmt: skip
        if pipeline:
            item["changeSets"] = sets if self.commits or self.library else []
        else:
            item["changeSet"] = sets[-1]
        return item

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(fixture("local/wfapi.describe.pipeline-stage-view.json"))
        template = body["stages"][0]
        body.update(name=f"#{self.number}", status="IN_PROGRESS" if self.building else "SUCCESS")
        body["stages"] = [
            {**copy.deepcopy(template), "id": str(5 + 3 * index), "name": name, "status": status}
            for index, (name, status) in enumerate(self.stages or [])
        ]
        return body


def _change_set(commits: list[FakeCommit]) -> dict[str, Any]:
    template = fixture("build.changesets.jenkins-rest.json")["changeSets"][0]
    items = []
    for commit in commits:
        item = copy.deepcopy(template["items"][0])
        item.update(
            commitId=commit.sha, id=commit.sha, timestamp=ms(commit.at), msg=f"change {commit.sha[:7]}",
            comment=f"change {commit.sha[:7]}\n", date=commit.at.strftime("%Y-%m-%d %H:%M:%S GMT"),
        )  # fmt: skip
        items.append(item)
    return {"_class": template["_class"], "kind": template["kind"], "items": items}


def _parameters(environment: str) -> dict[str, Any]:
    action: dict[str, Any] = copy.deepcopy(fixture("build.changesets.jenkins-rest.json")["actions"][0])
    action["_class"] = "hudson.model.ParametersAction"
    action["parameters"] = [
        {"_class": "hudson.model.StringParameterValue", "name": "ENVIRONMENT", "value": environment},
        {"_class": "hudson.model.BooleanParameterValue", **action["parameters"][0]},
    ]
    return action


@dataclass
class FakeJob:
    jenkins: FakeJenkins
    full_name: str
    cls: str
    builds: list[FakeBuild] = field(default_factory=list)  # oldest first

    @property
    def url(self) -> str:
        return self.jenkins.url_of(self.full_name)

    def add(self, result: str | None, started: datetime, **fields: Any) -> FakeBuild:
        building = fields.pop("building", False)
        number = self.builds[-1].number + 1 if self.builds else 1
        duration = fields.pop("duration", timedelta(minutes=7))
        build = FakeBuild(self, number, result, building, started, duration, **fields)
        self.builds.append(build)
        self.jenkins.publish()
        return build

    def json(self, *, tree: bool) -> dict[str, Any]:
        newest = Builds(reversed(self.builds))
        body: dict[str, Any] = {
            "_class": self.cls, "name": self.full_name.rsplit("/", 1)[-1], "fullName": self.full_name,
            "url": self.url, "nextBuildNumber": len(self.builds) + 1,
        }  # fmt: skip
        if not tree:  # Jenkins' default view: ``builds`` (newest 100) and first/last as number and url
            shallow = [{"_class": _run_class(self.cls), "number": b.number, "url": b.url} for b in newest]
            return body | {"builds": shallow[:100], "firstBuild": shallow[-1] if shallow else None,
                           "lastBuild": shallow[0] if shallow else None}  # fmt: skip
        return body | {
            "builds": Builds(newest[:100]), "allBuilds": newest,  # ``allBuilds`` only shows when named in tree
            "firstBuild": (lambda: self.builds[0].json()) if self.builds else None,
            "lastBuild": (lambda: self.builds[-1].json()) if self.builds else None,
        }  # fmt: skip


def _run_class(job_class: str) -> str:
    return "org.jenkinsci.plugins.workflow.job.WorkflowRun" if job_class == PIPELINE else "hudson.model.FreeStyleBuild"


class FakeJenkins:
    """Jobs, folders and multibranch projects served by a ``FakeUpstream``; tests mutate and read the log."""

    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream
        self.jobs: dict[str, FakeJob] = {}
        self.containers: dict[str, str] = {}  # full name → class
        self.anonymous_read = False
        self.fail_next: list[int] = []  # statuses to answer the next job requests with (a fault, then normal)

    @property
    def base_url(self) -> str:
        return self.upstream.url

    def url_of(self, full_name: str) -> str:
        return self.base_url + "".join(f"/job/{quote(part, safe='')}" for part in full_name.split("/")) + "/"

    def job(self, full_name: str, *, pipeline: bool = False) -> FakeJob:
        if full_name not in self.jobs:
            self.jobs[full_name] = FakeJob(self, full_name, PIPELINE if pipeline else FREESTYLE)
            self.publish()
        return self.jobs[full_name]

    def folder(self, full_name: str, *, multibranch: bool = False) -> None:
        self.containers[full_name] = MULTIBRANCH if multibranch else FOLDER
        self.publish()

    # -- serving ------------------------------------------------------------------------------

    def publish(self) -> None:
        """(Re)register every path: job and folder ``api/json``, each pipeline build's ``wfapi/describe``."""
        for name in [*self.jobs, *self.containers]:
            self.upstream.script(_path(name) + "/api/json", self._responder(name))
        for job in self.jobs.values():
            if job.cls == PIPELINE:
                for build in job.builds:
                    self.upstream.script(f"{_path(job.full_name)}/{build.number}/wfapi/describe", self._stages(build))

    def _authorised(self, request: RecordedRequest) -> Reply | None:
        expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
        if request.headers.get("authorization") == expected or self.anonymous_read:
            return None
        body = "<html><head><title>Error 403 Forbidden</title></head><body>Authentication required</body></html>"
        return Reply(403, body=body, headers={"content-type": "text/html;charset=utf-8"})

    def _responder(self, name: str) -> Callable[[RecordedRequest], Reply]:
        def answer(request: RecordedRequest) -> Reply:
            refused = self._authorised(request)
            if refused is not None:
                return refused
            if self.fail_next:
                status = self.fail_next.pop(0)
                return Reply(
                    status, body=f"<html><body>Error {status}</body></html>", headers={"content-type": "text/html"}
                )
            if "depth" in request.query:
                return Reply(400, json={"message": "the fake Jenkins refuses depth= (use tree=)"})
            tree = request.query.get("tree")
            body = self.jobs[name].json(tree=tree is not None) if name in self.jobs else self._container(name)
            if tree is None:
                return Reply(200, json=body)
            try:
                spec = parse_tree(tree)
            except ValueError as exc:
                return Reply(400, json={"message": str(exc)})
            return Reply(200, json=prune(body, spec))

        return answer

    def _container(self, name: str) -> dict[str, Any]:
        children = [
            {"_class": cls, "name": child.rsplit("/", 1)[-1], "url": self.url_of(child), "color": "blue"}
            for child, cls in [*((j, job.cls) for j, job in self.jobs.items()), *self.containers.items()]
            if child.rsplit("/", 1)[0] == name and "/" in child
        ]
        return {"_class": self.containers[name], "name": name.rsplit("/", 1)[-1], "fullName": name,
                "url": self.url_of(name), "jobs": children}  # fmt: skip

    def _stages(self, build: FakeBuild) -> Callable[[RecordedRequest], Reply]:
        def answer(request: RecordedRequest) -> Reply:
            refused = self._authorised(request)
            return refused if refused is not None else Reply(200, json=build.describe())

        return answer

    # -- the request log ------------------------------------------------------------------------

    @property
    def log(self) -> list[RecordedRequest]:
        return list(self.upstream.requests)

    def clear(self) -> None:
        self.upstream.requests.clear()


def _path(full_name: str) -> str:
    """The decoded path the server sees (``feature%2Fx`` stays as named: it is sent as ``feature%252Fx``)."""
    return "".join(f"/job/{part}" for part in full_name.split("/"))


def table(jenkins: FakeJenkins, **overrides: Any) -> dict[str, Any]:
    """A ``[sources.ci]`` table pointing at the fake (fast policy)."""
    values: dict[str, Any] = {
        "kind": "jenkins",
        "base_url": jenkins.base_url,
        "username": USER,
        "api_token": TOKEN,
        "policy": {"rate_limit_per_second": 1000, "backoff_initial_seconds": 0.01, "retries": 1},
    }
    return {**values, **overrides}


# -- a history of builds and what a hand computation says they are ----------------------------------

STATUS_OF_RESULT = {"SUCCESS": "success", "FAILURE": "failure", "ABORTED": "cancelled"}  # UNSTABLE: per config
ENVIRONMENT_OF_PARAMETER = {None: "production", "production": "production", "prod": "production", "staging": "staging"}


class History:
    """Builds with commits, in time order; ``expected()`` derives the events by the issue's rules, by hand."""

    def __init__(self, jenkins: FakeJenkins, seed: int = 7) -> None:
        import random

        self.jenkins = jenkins
        self.rng = random.Random(seed)
        self.clock = T0
        self.heads: dict[str, str] = {}
        self.made = 0
        self.committed: dict[str, datetime] = {}

    def _minutes(self, low: float, high: float) -> timedelta:
        return timedelta(milliseconds=int(self.rng.uniform(low, high) * 60_000))

    def commits(self, job: str, count: int) -> list[FakeCommit]:
        made = []
        for _ in range(count):
            self.clock += self._minutes(5, 240)
            self.made += 1
            commit = FakeCommit(make_sha(job, self.made), self.clock)
            self.committed[commit.sha] = commit.at
            made.append(commit)
        if made:
            self.heads[job] = made[-1].sha
        return made

    def build(
        self, job: str, result: str | None, *, commits: int = 0, building: bool = False, **fields: Any
    ) -> FakeBuild:
        listed = self.commits(job, commits)
        self.clock += self._minutes(10, 60)
        started = self.clock
        duration = self._minutes(3, 25)
        if not building:
            self.clock = started + duration
        head = self.heads.setdefault(job, make_sha(job, "root"))
        return self.jenkins.jobs[job].add(
            result, started, building=building, duration=duration, commits=listed, sha=head, **fields
        )

    def finish(self, build: FakeBuild, result: str) -> None:
        build.finish(result, self._minutes(3, 25))
        self.clock = max(self.clock, build.started + build.duration) + timedelta(minutes=1)

    def expected(
        self,
        jobs: dict[str, str],
        *,
        unstable: str = "failure",
        deploy_stage: str | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Deployment id → expected fields, for ``jobs`` (full name → service).

        The rule, literally: a successful build for environment E ships every commit listed by
        any build of the job (whatever its result or environment) after E's previous success,
        up to and including itself.
        """
        expected: dict[str, dict[str, Any]] = {}
        for name, service in jobs.items():
            builds = self.jenkins.jobs[name].builds
            last_success: dict[str, int] = {}
            for build in builds:
                status = self._status(build, unstable, deploy_stage)
                if status is None:
                    continue
                environment = ENVIRONMENT_OF_PARAMETER[build.environment]
                change_ids: list[str] = []
                if status == "success":
                    previous = last_success.get(environment, 0)
                    for other in builds:
                        if previous < other.number <= build.number:
                            change_ids += [c.sha for c in other.commits if c.sha not in change_ids]
                    last_success[environment] = build.number
                expected[f"{name}#{build.number}"] = {
                    "service": service, "environment": environment, "status": status,
                    "started_at": build.started,
                    "finished_at": None if status == "running" else build.started + build.duration,
                    "commit_sha": build.sha, "change_ids": change_ids, "job": name,
                }  # fmt: skip
        return expected

    @staticmethod
    def _status(build: FakeBuild, unstable: str, deploy_stage: str | None) -> str | None:
        if deploy_stage is not None and build.job.cls == PIPELINE:
            if build.building:
                return None  # reported once finished
            ran = [status for name, status in build.stages or [] if deploy_stage.lower() in name.lower()]
            order = {"FAILED": "failure", "ABORTED": "cancelled", "UNSTABLE": unstable, "SUCCESS": "success"}
            return next((order[status] for status in order if status in ran), None)
        if build.building:
            return "running"
        if build.result == "UNSTABLE":
            return unstable
        return STATUS_OF_RESULT.get(build.result or "")


def check_deployments(events: list[Any], expected: dict[str, dict[str, Any]]) -> None:
    """The collected deployments are exactly the expected ones, field by field."""
    from metrichub_core import Deployment

    deployments = {event.id: event for event in events if isinstance(event, Deployment)}
    assert sorted(deployments) == sorted(expected)
    for deployment_id, want in expected.items():
        got = deployments[deployment_id]
        fields = {
            "service": got.service, "environment": got.environment, "status": got.status,
            "started_at": got.started_at, "finished_at": got.finished_at, "commit_sha": got.commit_sha,
            "change_ids": got.change_ids, "job": got.labels["job"],
        }  # fmt: skip
        assert fields == want, (
            deployment_id,
            {key: (fields[key], want[key]) for key in want if fields[key] != want[key]},
        )
