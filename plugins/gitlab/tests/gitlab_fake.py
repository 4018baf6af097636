"""A fake GitLab REST v4 served over real HTTP (the core's ``FakeUpstream``), built from GitLab's own examples.

Every item is a copy of a fixture in ``fixtures/rest`` with only ids, SHAs, times, states,
names, labels and texts changed. The compare API has no fixture (GitLab's docs omit
``authored_date``), so its commits take the fixture deployment's ``deployable.commit`` plus
the fields of GitLab's Commit entity (``lib/api/entities/commit.rb``).

The fake checks ``PRIVATE-TOKEN`` (or ``Authorization: Bearer``) and answers 401
without it; pages with ``Link`` and ``X-Next-Page``/``X-Total-Pages`` (``per_page`` capped at
``max_per_page``); sends ``RateLimit-*`` headers and weak ETags and answers ``If-None-Match``
with ``304``; enforces the deployments finder's rules (``updated_after`` needs
``order_by=updated_at``: 400, as GitLab 16+); and answers chosen requests with scripted faults.
``History`` generates a project history and the hand-computed facts the tests check.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

from metrichub_core.testing import FakeUpstream, RecordedRequest, Reply

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "glpat-SuperSecretTestToken0123456789"
PRODUCTION_TIERS = {"production": "production", "live": "production", "prod": "other"}
TIERS = {**PRODUCTION_TIERS, "staging": "staging"}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def iso(moment: datetime) -> str:
    """GitLab's REST form: milliseconds and ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _sha(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


@dataclass
class FakeProject:
    id: int
    path: str
    commits: list[dict[str, Any]] = field(default_factory=list)  # creation order
    deployments: list[dict[str, Any]] = field(default_factory=list)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    merge_requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def head(self) -> str:
        return str(self.commits[-1]["id"])

    def position(self, sha: str) -> int | None:
        return next((i for i, commit in enumerate(self.commits) if commit["id"] == sha), None)

    def reachable(self, sha: str) -> set[str]:
        by_id = {commit["id"]: commit for commit in self.commits}
        seen: set[str] = set()
        stack = [sha]
        while stack:
            current = stack.pop()
            if current in seen or current not in by_id:
                continue
            seen.add(current)
            stack.extend(by_id[current]["parent_ids"])
        return seen

    def between(self, base: str, head: str) -> list[dict[str, Any]]:
        """Commits reachable from ``head`` and not from ``base``, oldest first (compare with ``straight=false``)."""
        shipped = self.reachable(head) - self.reachable(base)
        return [commit for commit in self.commits if commit["id"] in shipped]


Handler = Callable[[RecordedRequest, FakeProject], Any]


class FakeGitLab:
    """The fake's state; tests mutate ``projects`` and read ``log``. Start it with ``with FakeGitLab() as gitlab``."""

    def __init__(self) -> None:
        self.upstream = FakeUpstream()
        self.token = TOKEN
        self.projects: dict[str, FakeProject] = {}
        self.log: list[tuple[str, int]] = []  # (path?query, status) of every request
        self.faults: dict[int, Reply] = {}  # 1-based request number (counted in ``log``) → the reply, once
        self.max_per_page = 100
        self.remaining = 2000

    def reset(self) -> None:
        """Empty the fake for the next test (the server keeps running)."""
        self.token = TOKEN
        self.projects = {}
        self.log = []
        self.faults = {}
        self.max_per_page = 100
        self.remaining = 2000
        self.upstream.requests.clear()

    def __enter__(self) -> FakeGitLab:
        self.upstream.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.upstream.stop()

    @property
    def base_url(self) -> str:
        return self.upstream.url

    def project(self, path: str, id: int | None = None) -> FakeProject:
        if path not in self.projects:
            project = FakeProject(id or 100 + len(self.projects), path)
            self.projects[path] = project
            api = "/api/v4/projects"
            routes: dict[str, Handler] = {
                f"{api}/{path}": self._project,  # sent as acme%2Fweb: the server decodes the path
                f"{api}/{project.id}/deployments": self._deployments,
                f"{api}/{project.id}/environments": self._environments,
                f"{api}/{project.id}/issues": self._issues,
                f"{api}/{project.id}/merge_requests": self._merge_requests,
                f"{api}/{project.id}/repository/compare": self._compare,
            }
            for route, handler in routes.items():
                self.upstream.script(route, self._responder(project, handler))
        return self.projects[path]

    def count(self, pattern: str = "") -> int:
        return sum(1 for path, _ in self.log if pattern in path)

    def statuses(self, status: int) -> int:
        return sum(1 for _, code in self.log if code == status)

    # -- serving -------------------------------------------------------------------

    def _rate_headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": "2000",
            "RateLimit-Observed": str(2000 - self.remaining),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(int(time.time()) + 60),  # an epoch, not seconds
        }

    def _responder(self, project: FakeProject, handler: Handler) -> Callable[[RecordedRequest], Reply]:
        def respond(request: RecordedRequest) -> Reply:
            reply = self._answer(request, project, handler)
            where = request.path + (f"?{urlencode(request.query)}" if request.query else "")
            self.log.append((where, reply.status))
            return reply

        return respond

    def _answer(self, request: RecordedRequest, project: FakeProject, handler: Handler) -> Reply:
        fault = self.faults.pop(len(self.log) + 1, None)  # one shot: a cleared log does not repeat it
        if fault is not None:
            return fault
        headers = request.headers
        if headers.get("private-token") != self.token and headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, json={"message": "401 Unauthorized"}, headers=self._rate_headers())
        try:
            result = handler(request, project)
        except _BadRequest as exc:
            return Reply(400, json={"message": str(exc)}, headers=self._rate_headers())
        if result is None:
            return Reply(404, json={"message": "404 Not found"}, headers=self._rate_headers())
        body, extra = result if isinstance(result, tuple) else (result, {})
        content = json.dumps(body).encode()
        etag = 'W/"' + hashlib.sha256(content + extra.get("Link", "").encode()).hexdigest()[:32] + '"'
        reply_headers = {**self._rate_headers(), **extra, "ETag": etag, "Content-Type": "application/json"}
        if headers.get("if-none-match") == etag:
            return Reply(304, headers={key: value for key, value in reply_headers.items() if key != "Content-Type"})
        self.remaining -= 1
        return Reply(200, body=content, headers=reply_headers)

    def _page(self, request: RecordedRequest, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        per_page = min(int(request.query.get("per_page", 20)), self.max_per_page, 100)
        page = max(int(request.query.get("page", 1)), 1)
        pages = max(1, math.ceil(len(items) / per_page))
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        host = request.headers.get("host", "127.0.0.1")
        links = []
        if page < pages:
            links.append(f'<http://{host}{request.path}?{urlencode({**request.query, "page": page + 1})}>; rel="next"')
        links.append(f'<http://{host}{request.path}?{urlencode({**request.query, "page": 1})}>; rel="first"')
        headers["Link"] = ", ".join(links)
        return items[(page - 1) * per_page : page * per_page], headers

    @staticmethod
    def _ordered(request: RecordedRequest, items: list[dict[str, Any]], default: str) -> list[dict[str, Any]]:
        key = request.query.get("order_by", default)
        descending = request.query.get("sort", "desc" if default != "id" else "asc") == "desc"
        return sorted(items, key=lambda item: (item[key], item["id"]), reverse=descending)

    def _project(self, request: RecordedRequest, project: FakeProject) -> Any:
        item = copy.deepcopy(fixture("webhooks/deployment_hook.success.json")["project"])
        name = project.path.rsplit("/", 1)[1]
        web = f"https://gitlab.example.com/{project.path}"
        item.update(id=project.id, name=name, path_with_namespace=project.path, web_url=web, homepage=web)
        return item

    def _deployments(self, request: RecordedRequest, project: FakeProject) -> Any:
        """``app/finders/deployments_finder.rb``: the pairing rules, then the filters."""
        query = request.query
        order = query.get("order_by", "id")
        if ("updated_after" in query or "updated_before" in query) and order != "updated_at":
            raise _BadRequest("`updated_at` filter requires `updated_at` sort")
        if "finished_after" in query and (order != "finished_at" or query.get("status") != "success"):
            raise _BadRequest("`finished_at` filter requires `finished_at` sort and `success` status")
        items = project.deployments
        if "updated_after" in query:
            floor = parse(query["updated_after"])
            items = [item for item in items if parse(item["updated_at"]) >= floor]
        if "status" in query:
            items = [item for item in items if item["status"] == query["status"]]
        return self._page(request, self._ordered(request, items, "id"))

    def _environments(self, request: RecordedRequest, project: FakeProject) -> Any:
        return self._page(request, sorted(project.environments.values(), key=lambda env: env["id"]))

    def _issues(self, request: RecordedRequest, project: FakeProject) -> Any:
        query = request.query
        items = project.issues
        if query.get("state", "all") != "all":
            items = [item for item in items if item["state"] == query["state"]]
        if "issue_type" in query:
            items = [item for item in items if item["issue_type"] == query["issue_type"]]
        for label in filter(None, query.get("labels", "").split(",")):
            items = [item for item in items if label in item["labels"]]
        if "updated_after" in query:
            items = [item for item in items if parse(item["updated_at"]) >= parse(query["updated_after"])]
        return self._page(request, self._ordered(request, items, "created_at"))

    def _merge_requests(self, request: RecordedRequest, project: FakeProject) -> Any:
        query = request.query
        items = [item for item in project.merge_requests if query.get("state", "all") in ("all", item["state"])]
        if "updated_after" in query:
            items = [item for item in items if parse(item["updated_at"]) >= parse(query["updated_after"])]
        return self._page(request, self._ordered(request, items, "created_at"))

    def _compare(self, request: RecordedRequest, project: FakeProject) -> Any:
        base, head = request.query.get("from", ""), request.query.get("to", "")
        if project.position(base) is None or project.position(head) is None:
            return None
        commits = project.between(base, head)
        return {
            "commit": commits[-1] if commits else None,
            "commits": commits,
            "diffs": [],
            "compare_timeout": False,
            "compare_same_ref": base == head,
            "web_url": f"https://gitlab.example.com/{project.path}/-/compare/{base}...{head}",
        }


class _BadRequest(Exception):
    pass


# -- the history generator ------------------------------------------------------------


def make_commit(project: FakeProject, authored: datetime, parents: list[str], title: str) -> dict[str, Any]:
    """GitLab's Commit entity; ``committed_date`` differs from ``authored_date`` (as after a rebase)."""
    base = fixture("rest/list_project_deployments.json")[0]["deployable"]["commit"]
    sha = _sha(project.path, len(project.commits), title, authored)
    committed = authored + timedelta(minutes=7)
    commit: dict[str, Any] = copy.deepcopy(base)
    commit.update(
        id=sha, short_id=sha[:8], title=title, message=title, parent_ids=parents,
        created_at=iso(committed), authored_date=iso(authored), committed_date=iso(committed),
        committer_name=base["author_name"], committer_email=base["author_email"],
        web_url=f"https://gitlab.example.com/{project.path}/-/commit/{sha}",
    )  # fmt: skip
    return commit


@dataclass
class Truth:
    """What a hand computation says the collected events must be."""

    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → expected fields
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # sha → committed_at, merged_at
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)  # "path#iid" → expected fields


class History:
    """A seeded history: merge, squash, fast-forward and direct commits; deployments to production-tier,
    regex-matched, staging and review environments with every status; incidents by type and by label."""

    T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    SERVICES: ClassVar[dict[str, str]] = {"acme/web": "storefront"}

    def __init__(self, fake: FakeGitLab, seed: int = 10) -> None:
        self.fake = fake
        self.rng = random.Random(seed)
        self.truth = Truth()
        self.clock = self.T0
        self.next_deployment_id = 4000
        self.next_issue_id = 9000
        self.merged: dict[str, datetime] = {}  # sha → merged_at of its merge request
        self.last_success: dict[tuple[str, str], str] = {}  # (project, GitLab environment) → sha

    def service(self, path: str) -> str:
        return self.SERVICES.get(path, path.rsplit("/", 1)[1])

    def _minutes(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=int(self.rng.uniform(low, high) * 60))

    # -- commits and merge requests ---------------------------------------------

    def commit(
        self, path: str, parents: list[str] | None = None, title: str = "change", *, at: datetime | None = None
    ) -> dict[str, Any]:
        project = self.fake.project(path)
        self.clock = at or self.clock + self._minutes(5, 120)
        if parents is None:
            parents = [project.head] if project.commits else []
        commit = make_commit(project, self.clock, parents, f"{title} {len(project.commits)}")
        project.commits.append(commit)
        return commit

    def change(self, path: str) -> None:
        """One unit of work landing on main: a merge, squash or fast-forward merge request, or a direct push."""
        project = self.fake.project(path)
        if not project.commits:
            self.commit(path, title="initial")
        style = self.rng.choice(["merge", "merge", "squash", "ff", "direct"])
        if style == "direct":
            self.commit(path)
            return
        if style == "merge":
            main = project.head
            branch = [self.commit(path, [main], "feature")]
            for _ in range(self.rng.randint(0, 2)):
                branch.append(self.commit(path, [branch[-1]["id"]], "feature"))
            merge = self.commit(path, [main, branch[-1]["id"]], "Merge branch")
            merged_at = self.clock + timedelta(seconds=30)
            shas = [commit["id"] for commit in [*branch, merge]]
            self._merge_request(project, merged_at, head=branch[-1]["id"], merge=merge["id"], squash=None)
        elif style == "squash":
            squash = self.commit(path, title="Squashed")
            merged_at = self.clock + timedelta(seconds=30)
            shas = [squash["id"]]
            self._merge_request(project, merged_at, head=_sha("branch", squash["id"]), merge=None, squash=squash["id"])
        else:  # fast-forward: only the head commit is known to the merge request list
            commits = [self.commit(path) for _ in range(self.rng.randint(1, 3))]
            merged_at = self.clock + timedelta(seconds=30)
            shas = [commits[-1]["id"]]
            self._merge_request(project, merged_at, head=commits[-1]["id"], merge=None, squash=None)
        self.clock = merged_at
        for sha in shas:
            self.merged[sha] = merged_at

    def _merge_request(
        self, project: FakeProject, merged_at: datetime, *, head: str, merge: str | None, squash: str | None
    ) -> None:
        item: dict[str, Any] = copy.deepcopy(fixture("rest/list_project_merge_requests.json")[0])
        iid = len(project.merge_requests) + 1
        item.update(
            id=70000 + project.id * 1000 + iid, iid=iid, project_id=project.id, target_project_id=project.id,
            state="merged", merged_at=iso(merged_at), created_at=iso(merged_at - timedelta(hours=3)),
            updated_at=iso(merged_at + timedelta(seconds=2)), sha=head, merge_commit_sha=merge,
            squash_commit_sha=squash, squash=squash is not None,
            web_url=f"https://gitlab.example.com/{project.path}/-/merge_requests/{iid}",
        )  # fmt: skip
        project.merge_requests.append(item)

    # -- deployments ---------------------------------------------------------------

    def environment(self, path: str, name: str) -> dict[str, Any]:
        project = self.fake.project(path)
        if name not in project.environments:
            item: dict[str, Any] = copy.deepcopy(fixture("rest/list_project_environments.json")[0])
            tier = TIERS.get(name, "development")
            item.update(
                id=len(project.environments) + 1 + project.id * 100, name=name, slug=re.sub(r"[^a-z0-9]+", "-", name),
                tier=tier, state="available", external_url=f"https://{name}.example.com",
                created_at=iso(self.T0), updated_at=iso(self.T0), auto_stop_at=None,
            )  # fmt: skip
            project.environments[name] = item
        return project.environments[name]

    def deploy(
        self,
        path: str,
        name: str,
        status: str,
        *,
        api_created: bool = False,
        at: datetime | None = None,
        minutes: int = 0,
    ) -> dict[str, Any]:
        """Deploy main's head to GitLab environment ``name`` with GitLab ``status``.

        ``at``: created then, its job started a minute later and finished ``minutes`` after that.
        """
        project = self.fake.project(path)
        env = self.environment(path, name)
        self.clock = at or self.clock + self._minutes(10, 90)
        self.next_deployment_id += self.rng.randint(1, 5)
        created = self.clock
        job_started = created + timedelta(minutes=1) if at or self.rng.random() < 0.7 else None
        finished = None
        if status in ("success", "failed", "canceled", "skipped"):
            finished = (
                job_started + timedelta(minutes=minutes) if at and job_started else created + self._minutes(3, 25)
            )
            self.clock = finished
        updated = (finished or created) + timedelta(seconds=2)
        item = self._deployment_item(project, env, status, created, updated, job_started, finished, api_created)
        project.deployments.append(item)
        if status == "skipped":
            return item
        environment = "production" if name in PRODUCTION_TIERS else name
        expected: dict[str, Any] = {
            "project": path, "environment": environment, "gitlab_environment": name,
            "status": {"success": "success", "failed": "failure", "canceled": "cancelled"}.get(status, "running"),
            "started_at": (job_started if job_started and not api_created else created),
            "finished_at": (finished if not api_created else updated) if finished else None,
            "sha": project.head, "change_ids": [],
        }  # fmt: skip
        self.truth.deployments[str(item["id"])] = expected
        if status == "success":
            self._ship(path, name, expected)
        return item

    def _deployment_item(
        self,
        project: FakeProject,
        env: dict[str, Any],
        status: str,
        created: datetime,
        updated: datetime,
        job_started: datetime | None,
        finished: datetime | None,
        api_created: bool,
    ) -> dict[str, Any]:
        item: dict[str, Any] = copy.deepcopy(fixture("rest/list_project_deployments.json")[0])
        head = project.commits[-1]
        item.update(
            id=self.next_deployment_id, iid=len(project.deployments) + 1, ref="main", sha=head["id"], status=status,
            created_at=iso(created), updated_at=iso(updated),
            environment={"id": env["id"], "name": env["name"], "external_url": env["external_url"]},
        )  # fmt: skip
        if api_created:
            item["deployable"] = None  # deployments created through the API have no job
            return item
        job = item["deployable"]
        job_status = {"created": "created", "blocked": "manual"}.get(status, status)  # the job of the deployment
        job.update(
            id=self.next_deployment_id * 10, status=job_status,
            created_at=iso(created), started_at=iso(job_started) if job_started else None,
            finished_at=iso(finished) if finished else None,
        )  # fmt: skip
        job["commit"].update({key: head[key] for key in ("id", "short_id", "title", "message", "created_at")})
        job["pipeline"].update(
            id=self.next_deployment_id, sha=head["id"], created_at=iso(created), updated_at=iso(updated),
            web_url=f"https://gitlab.example.com/{project.path}/-/pipelines/{self.next_deployment_id}",
        )  # fmt: skip
        return item

    def _ship(self, path: str, name: str, expected: dict[str, Any]) -> None:
        project = self.fake.project(path)
        previous = self.last_success.get((path, name))
        self.last_success[(path, name)] = expected["sha"]
        if previous is None:
            return  # the first success of a project and environment ships nothing
        shipped = project.between(previous, expected["sha"])
        expected["change_ids"] = [commit["id"] for commit in shipped]
        if expected["environment"] == "production":
            for commit in shipped:
                self.truth.changes.setdefault(
                    commit["id"],
                    {"committed_at": parse(commit["authored_date"]), "merged_at": self.merged.get(commit["id"])},
                )

    # -- incidents -----------------------------------------------------------------

    def issue(
        self,
        path: str,
        *,
        title: str,
        description: str | None,
        issue_type: str,
        labels: list[str],
        created: datetime,
        closed: datetime | None,
        severity: str = "UNKNOWN",
    ) -> dict[str, Any]:
        project = self.fake.project(path)
        item: dict[str, Any] = copy.deepcopy(fixture("rest/list_project_issues.json")[0])
        iid = len(project.issues) + 1
        self.next_issue_id += 1
        item.update(
            id=self.next_issue_id, iid=iid, project_id=project.id, title=title, description=description,
            state="closed" if closed else "opened", created_at=iso(created), updated_at=iso(closed or created),
            closed_at=iso(closed) if closed else None, closed_by=item["closed_by"] if closed else None,
            labels=labels, issue_type=issue_type, type=issue_type.upper(), severity=severity,
            web_url=f"https://gitlab.example.com/{path}/-/issues/{iid}", references={
                "short": f"#{iid}", "relative": f"#{iid}", "full": f"{path}#{iid}"},
        )  # fmt: skip
        project.issues.append(item)
        return item

    def incident(self, path: str, deployment: dict[str, Any], *, style: str | None = None) -> dict[str, Any]:
        """An incident after ``deployment`` (a production success): named by id, by SHA, or not at all."""
        expected_deployment = self.truth.deployments[str(deployment["id"])]
        started = expected_deployment["finished_at"] + self._minutes(5, 120)
        resolved = started + self._minutes(15, 400) if self.rng.random() < 0.85 else None
        style = style or self.rng.choice(["id", "sha", "none", "label"])
        caused_by: str | None = str(deployment["id"])
        if style == "sha":
            description = f"Checkout fails.\n\n* Caused-by: `{deployment['sha'][:10]}`\n"
        elif style == "none":
            description, caused_by = "The pager went off; cause unknown.", None
        else:
            description = f"Errors after the deploy.\r\nCaused-by: {deployment['id']}"
        severity = self.rng.choice(["UNKNOWN", "LOW", "HIGH", "CRITICAL"])
        labeled = style == "label"
        issue = self.issue(
            path, title=f"Outage after {deployment['id']}", description=description,
            issue_type="issue" if labeled else "incident", labels=["outage"] if labeled else ["sev"],
            created=started, closed=resolved, severity="UNKNOWN" if labeled else severity,
        )  # fmt: skip
        self.truth.incidents[f"{path}#{issue['iid']}"] = {
            "started_at": started, "resolved_at": resolved, "caused_by": caused_by, "service": self.service(path),
            "attributed_to": str(deployment["id"]),
            "severity": None if labeled or severity == "UNKNOWN" else severity.lower(),
        }  # fmt: skip
        self.clock = max(self.clock, resolved or started)
        return issue

    def noise(self, path: str) -> None:
        """Issues the source must skip or count once: a plain bug naming a deployment, an incident also labelled."""
        project = self.fake.project(path)
        incident = next(issue for issue in reversed(project.issues) if issue["issue_type"] == "incident")
        incident["labels"] = [*incident["labels"], "outage"]  # found by both queries, reported once
        when = self.clock + timedelta(hours=1)
        self.issue(path, title="Typo", description="Caused-by: 1", issue_type="issue", labels=["bug"],
                   created=when, closed=None)  # fmt: skip

    # -- whole histories -------------------------------------------------------------

    def round(self, path: str) -> None:
        for _ in range(self.rng.randint(1, 2)):
            self.change(path)
        if self.rng.random() < 0.4:
            self.deploy(path, "staging", "success" if self.rng.random() < 0.9 else "failed")
        if self.rng.random() < 0.1:
            self.deploy(path, f"review/feature-{self.rng.randint(1, 99)}", "success")
        draw = self.rng.random()
        status = (
            "failed" if draw < 0.12 else "canceled" if draw < 0.17 else "skipped" if draw < 0.21
            else "blocked" if draw < 0.23 else "success"
        )  # fmt: skip
        name = self.rng.choices(["production", "live", "prod"], weights=[75, 15, 10])[0]
        deployment = self.deploy(path, name, status, api_created=self.rng.random() < 0.1)
        if status == "success" and self.rng.random() < 0.3:
            self.incident(path, deployment)

    def generate(self, rounds: dict[str, int]) -> History:
        end = self.clock
        for path, count in rounds.items():
            self.clock = self.T0  # the projects' histories overlap in time
            for _ in range(count):
                self.round(path)
            end = max(end, self.clock)
        self.clock = end
        return self
