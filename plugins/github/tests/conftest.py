"""A fake GitHub served over real HTTP, built from GitHub's own example payloads.

Every response is a copy of a fixture in ``fixtures/`` with only ids, SHAs, times,
states, labels and bodies changed. The server checks bearer auth, pages with ``Link``
(``per_page`` capped at 100 as on GitHub), sends ``X-RateLimit-*`` headers and ETags,
answers ``If-None-Match`` with ``304``, and can answer one chosen request with a
primary rate-limit ``403``. ``History`` generates a repository history and the
hand-computed facts a test checks the collected events against.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "ghp_SuperSecretTestToken0123456789abcdef"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


API = "https://api.github.com"


def make_commit(repo: str, sha: str, date: datetime, message: str) -> dict[str, Any]:
    commit: dict[str, Any] = copy.deepcopy(fixture("compare_commits.json")["commits"][0])
    commit.update(sha=sha, url=f"{API}/repos/{repo}/commits/{sha}", html_url=f"https://github.com/{repo}/commit/{sha}")
    commit["commit"]["author"]["date"] = iso(date)
    commit["commit"]["committer"]["date"] = iso(date + timedelta(minutes=5))
    commit["commit"]["message"] = message
    return commit


def make_deployment(repo: str, id: int, sha: str, environment: str, created: datetime) -> dict[str, Any]:
    item: dict[str, Any] = copy.deepcopy(fixture("list_deployments.json")[0])
    item.update(
        id=id, sha=sha, ref="main", environment=environment, original_environment=environment,
        created_at=iso(created), updated_at=iso(created), url=f"{API}/repos/{repo}/deployments/{id}",
        statuses_url=f"{API}/repos/{repo}/deployments/{id}/statuses", repository_url=f"{API}/repos/{repo}",
        production_environment=environment != "staging",
    )  # fmt: skip
    return item


def make_status(repo: str, deployment: dict[str, Any], id: int, state: str, created: datetime) -> dict[str, Any]:
    item: dict[str, Any] = copy.deepcopy(fixture("list_deployment_statuses.json")[0])
    number = deployment["id"]
    item.update(
        id=id, state=state, environment=deployment["environment"], created_at=iso(created), updated_at=iso(created),
        url=f"{API}/repos/{repo}/deployments/{number}/statuses/{id}", deployment_url=deployment["url"],
        repository_url=f"{API}/repos/{repo}", target_url=f"https://ci.example.com/{number}",
        log_url=f"https://ci.example.com/{number}", description=f"Deployment {state}",
    )  # fmt: skip
    return item


def make_issue(
    repo: str,
    number: int,
    *,
    title: str,
    body: str | None,
    labels: list[str],
    created: datetime,
    closed: datetime | None,
    pull_request: bool = False,
) -> dict[str, Any]:
    item: dict[str, Any] = copy.deepcopy(fixture("list_repository_issues.json")[0])
    label_template = item["labels"][0]
    item.update(
        id=900000 + number, number=number, title=title, body=body, state="closed" if closed else "open",
        created_at=iso(created), closed_at=iso(closed) if closed else None, updated_at=iso(closed or created),
        url=f"{API}/repos/{repo}/issues/{number}", html_url=f"https://github.com/{repo}/issues/{number}",
        repository_url=f"{API}/repos/{repo}", locked=False, active_lock_reason=None,
        labels=[{**label_template, "name": name, "id": 100 + i, "default": False} for i, name in enumerate(labels)],
    )  # fmt: skip
    if not pull_request:
        del item["pull_request"]
    return item


def make_run(
    repo: str, id: int, sha: str, *, status: str, conclusion: str | None, created: datetime, updated: datetime
) -> dict[str, Any]:
    item: dict[str, Any] = copy.deepcopy(fixture("list_workflow_runs.json")["workflow_runs"][0])
    item.update(
        id=id, head_sha=sha, head_branch="main", status=status, conclusion=conclusion, workflow_id=4242,
        created_at=iso(created), run_started_at=iso(created), updated_at=iso(updated),
        url=f"{API}/repos/{repo}/actions/runs/{id}", html_url=f"https://github.com/{repo}/actions/runs/{id}",
    )  # fmt: skip
    return item


@dataclass
class FakeRepo:
    name: str
    commits: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    workflow: dict[str, Any] = field(
        default_factory=lambda: {"id": 4242, "name": "deploy", "path": ".github/workflows/deploy.yml"}
    )

    def index(self, sha: str) -> int | None:
        return next((i for i, commit in enumerate(self.commits) if commit["sha"] == sha), None)


_REPO = r"/repos/(?P<repo>[^/]+/[^/]+)"
_DOCS = "https://docs.github.com/rest"


class FakeGitHub:
    """The state and the Starlette app of the fake; tests mutate ``repos`` and read ``log``."""

    def __init__(self) -> None:
        self.base_url = ""
        self.reset()
        self.routes: list[tuple[re.Pattern[str], Callable[..., tuple[Any, str]]]] = [
            (re.compile(f"^{_REPO}$"), self._repository),
            (re.compile(f"^{_REPO}/deployments$"), self._deployments),
            (re.compile(f"^{_REPO}/deployments/(?P<id>[0-9]+)/statuses$"), self._statuses),
            (re.compile(f"^{_REPO}/compare/(?P<base>[0-9a-f]+)\\.\\.\\.(?P<head>[0-9a-f]+)$"), self._compare),
            (re.compile(f"^{_REPO}/issues$"), self._issues),
            (re.compile(f"^{_REPO}/actions/workflows/(?P<workflow>[^/]+)/runs$"), self._runs),
            (re.compile(f"^{_REPO}/actions/workflows/(?P<workflow>[^/]+)$"), self._workflow),
            (re.compile(f"^{_REPO}/actions/runs/(?P<id>[0-9]+)$"), self._run),
        ]
        self.app = Starlette(routes=[Route("/{path:path}", self.handle)])

    def reset(self) -> None:
        self.token = TOKEN
        self.repos: dict[str, FakeRepo] = {}
        self.log: list[tuple[str, int]] = []  # (path?query, status) of every request received
        self.rate_limit_on: set[int] = set()  # 1-based request numbers answered with a primary rate-limit 403
        self.remaining = 5000

    def repo(self, name: str) -> FakeRepo:
        return self.repos.setdefault(name, FakeRepo(name))

    def count(self, pattern: str = "") -> int:
        return sum(1 for path, _ in self.log if pattern in path)

    def statuses_count(self, status: int) -> int:
        return sum(1 for _, code in self.log if code == status)

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Used": str(5000 - self.remaining),
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Resource": "core",
        }

    async def handle(self, request: Request) -> Response:
        path = request.url.path.removeprefix("/api/v3")  # GitHub Enterprise Server's API root
        where = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        number = len(self.log) + 1
        response = self._answer(request, path, number)
        self.log.append((where, response.status_code))
        return response

    def _answer(self, request: Request, path: str, number: int) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"message": "Bad credentials", "documentation_url": _DOCS}, 401, self._rate_headers())
        if number in self.rate_limit_on:
            headers = {**self._rate_headers(), "X-RateLimit-Remaining": "0", "X-RateLimit-Used": "5000"}
            headers["X-RateLimit-Reset"] = str(int(time.time()) + 1)
            message = "API rate limit exceeded for user ID 1."
            return JSONResponse({"message": message, "documentation_url": _DOCS}, 403, headers)
        for pattern, handler in self.routes:
            match = pattern.match(path)
            if match and match["repo"] in self.repos:
                args = {key: value for key, value in match.groupdict().items() if key != "repo"}
                body, links = handler(request, self.repos[match["repo"]], **args)
                break
        else:
            return JSONResponse({"message": "Not Found", "documentation_url": _DOCS}, 404, self._rate_headers())
        if body is None:
            return JSONResponse({"message": "Not Found", "documentation_url": _DOCS}, 404, self._rate_headers())
        content = json.dumps(body).encode()
        etag = 'W/"' + hashlib.sha256(content).hexdigest()[:40] + '"'
        headers = {**self._rate_headers(), "ETag": etag, "Cache-Control": "private, max-age=60, s-maxage=60"}
        if links:
            headers["Link"] = links
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)  # free: no rate limit spent
        self.remaining -= 1
        headers["X-RateLimit-Remaining"] = str(self.remaining)
        return Response(content, 200, headers, media_type="application/json; charset=utf-8")

    @staticmethod
    def _page(request: Request, items: list[Any], default_per_page: int = 30) -> tuple[list[Any], str]:
        per_page = min(int(request.query_params.get("per_page", default_per_page)), 100)
        page = max(int(request.query_params.get("page", 1)), 1)
        last = max(1, math.ceil(len(items) / per_page))
        links = []
        if page < last:
            links += [(page + 1, "next"), (last, "last")]
        if page > 1:
            links += [(1, "first"), (page - 1, "prev")]
        header = ", ".join(f'<{request.url.include_query_params(page=n)}>; rel="{rel}"' for n, rel in links)
        return items[(page - 1) * per_page : page * per_page], header

    def _repository(self, request: Request, repo: FakeRepo, **_: str) -> tuple[Any, str]:
        item = copy.deepcopy(fixture("webhooks/push.branch.json")["repository"])
        owner, name = repo.name.split("/")
        item.update(name=name, full_name=repo.name, url=f"{API}/repos/{repo.name}")
        item["owner"]["login"] = owner
        return item, ""

    def _deployments(self, request: Request, repo: FakeRepo, **_: str) -> tuple[Any, str]:
        items = sorted(repo.deployments, key=lambda item: item["id"], reverse=True)
        return self._page(request, items)

    def _statuses(self, request: Request, repo: FakeRepo, id: str, **_: str) -> tuple[Any, str]:
        if not any(item["id"] == int(id) for item in repo.deployments):
            return None, ""
        items = sorted(repo.statuses.get(int(id), []), key=lambda item: item["id"], reverse=True)
        return self._page(request, items)

    def _compare(self, request: Request, repo: FakeRepo, base: str, head: str, **_: str) -> tuple[Any, str]:
        base_index, head_index = repo.index(base), repo.index(head)
        if base_index is None or head_index is None:
            return None, ""
        body = copy.deepcopy(fixture("compare_commits.json"))
        ahead = repo.commits[base_index + 1 : head_index + 1] if head_index > base_index else []
        status = "identical" if head_index == base_index else "ahead" if ahead else "behind"
        body.update(
            status=status, ahead_by=len(ahead), behind_by=max(0, base_index - head_index), total_commits=len(ahead),
            base_commit=repo.commits[base_index], merge_base_commit=repo.commits[min(base_index, head_index)],
            url=f"{API}/repos/{repo.name}/compare/{base}...{head}", files=[],
        )  # fmt: skip
        if "per_page" in request.query_params or "page" in request.query_params:
            body["commits"], links = self._page(request, ahead)
            return body, links
        body["commits"] = ahead[:250]
        return body, ""

    def _issues(self, request: Request, repo: FakeRepo, **_: str) -> tuple[Any, str]:
        query = request.query_params
        wanted = [label for label in query.get("labels", "").split(",") if label]
        state = query.get("state", "open")
        items = [
            issue
            for issue in repo.issues
            if (state == "all" or issue["state"] == state)
            and all(label in {item["name"] for item in issue["labels"]} for label in wanted)
        ]
        key = "updated_at" if query.get("sort") == "updated" else "created_at"
        items.sort(key=lambda issue: (issue[key], issue["number"]), reverse=query.get("direction", "desc") == "desc")
        return self._page(request, items)

    def _runs(self, request: Request, repo: FakeRepo, workflow: str, **_: str) -> tuple[Any, str]:
        if workflow not in (str(repo.workflow["id"]), repo.workflow["path"].rsplit("/", 1)[1]):
            return None, ""
        items = sorted(repo.runs, key=lambda run: run["id"], reverse=True)
        page, links = self._page(request, items)
        return {"total_count": len(items), "workflow_runs": page}, links

    def _workflow(self, request: Request, repo: FakeRepo, workflow: str, **_: str) -> tuple[Any, str]:
        if workflow not in (str(repo.workflow["id"]), repo.workflow["path"].rsplit("/", 1)[1]):
            return None, ""
        return dict(repo.workflow, state="active"), ""

    def _run(self, request: Request, repo: FakeRepo, id: str, **_: str) -> tuple[Any, str]:
        return next((run for run in repo.runs if run["id"] == int(id)), None), ""


@dataclass
class Truth:
    """What a hand computation says the collected events must be."""

    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → expected fields
    changes: dict[str, datetime] = field(default_factory=dict)  # sha → committed_at (shipped to production)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)  # "repo#n" → expected fields
    running: list[str] = field(default_factory=list)


class History:
    """A seeded history of commits, deployments (staging, failures, a running one) and incidents."""

    T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    def __init__(self, fake: FakeGitHub, seed: int = 6) -> None:
        self.fake = fake
        self.rng = random.Random(seed)
        self.truth = Truth()
        self.next_deployment_id = 5000
        self.next_status_id = 70000
        self.clock = self.T0
        self.last_success: dict[tuple[str, str], dict[str, Any]] = {}  # (repo, env) → deployment

    def _minutes(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=int(self.rng.uniform(low, high) * 60))  # GitHub times have whole seconds

    def services(self) -> dict[str, str]:
        return {"acme/web": "storefront"}

    def service(self, repo: str) -> str:
        return self.services().get(repo, repo.split("/")[1])

    def generate(self, rounds: dict[str, int]) -> History:
        end = self.T0
        for repo, count in rounds.items():
            self.clock = self.T0  # the repositories' histories overlap in time
            for number in range(count):
                self.round(repo, number, big=(repo == "acme/api" and number == 40))
            end = max(end, self.clock)
        self.clock = end
        return self

    def add_commits(self, repo: str, count: int) -> list[dict[str, Any]]:
        data = self.fake.repo(repo)
        added = []
        for _ in range(count):
            self.clock += self._minutes(5, 240)
            sha = _sha(repo, len(data.commits))
            commit = make_commit(repo, sha, self.clock, f"change {len(data.commits)}")
            data.commits.append(commit)
            added.append(commit)
        return added

    def deploy(self, repo: str, environment: str, outcome: str, *, inactive_later: bool = True) -> dict[str, Any]:
        """Deploy the head commit; ``outcome`` is a final state or ``running``."""
        data = self.fake.repo(repo)
        head = data.commits[-1]
        self.clock += self._minutes(10, 90)
        self.next_deployment_id += self.rng.randint(1, 5)
        deployment = make_deployment(repo, self.next_deployment_id, head["sha"], environment, self.clock)
        data.deployments.append(deployment)
        statuses = data.statuses.setdefault(deployment["id"], [])
        statuses.append(self._status(repo, deployment, "in_progress", self.clock + timedelta(minutes=1)))
        env = "production" if environment in ("production", "prod") else environment
        expected: dict[str, Any] = {
            "repo": repo, "environment": env, "status": "running", "finished_at": None, "sha": head["sha"],
            "change_ids": [], "started_at": self.clock,
        }  # fmt: skip
        if outcome == "running":
            self.truth.running.append(str(deployment["id"]))
        else:
            finished = self.clock + self._minutes(3, 25)
            statuses.append(self._status(repo, deployment, outcome, finished))
            expected.update(status="success" if outcome == "success" else "failure", finished_at=finished)
            self.clock = finished
        if outcome == "success":
            previous = self.last_success.get((repo, env))
            if previous is not None:
                start = data.index(previous["sha"])
                assert start is not None
                shipped = data.commits[start + 1 :]
                expected["change_ids"] = [commit["sha"] for commit in shipped]
                if env == "production":
                    for commit in shipped:
                        date = datetime.fromisoformat(commit["commit"]["author"]["date"].replace("Z", "+00:00"))
                        self.truth.changes.setdefault(commit["sha"], date)
                if inactive_later and self.rng.random() < 0.6:  # superseded: GitHub marks the old one inactive
                    old = self.fake.repo(repo).deployments
                    target = next(item for item in old if str(item["id"]) == previous["id"])
                    data.statuses[target["id"]].append(self._status(repo, target, "inactive", self.clock))
            self.last_success[(repo, env)] = {"id": str(deployment["id"]), "sha": head["sha"]}
        self.truth.deployments[str(deployment["id"])] = expected
        return deployment

    def run(self, repo: str, conclusion: str | None) -> dict[str, Any]:
        """A run of the deploy workflow on the head commit; ``None`` leaves it in progress."""
        data = self.fake.repo(repo)
        head = data.commits[-1]
        self.clock += self._minutes(10, 90)
        self.next_deployment_id += self.rng.randint(1, 5)
        finished = self.clock + self._minutes(3, 25)
        status = "completed" if conclusion else "in_progress"
        run = make_run(repo, self.next_deployment_id, head["sha"], status=status, conclusion=conclusion,
                       created=self.clock, updated=finished if conclusion else self.clock)  # fmt: skip
        data.runs.append(run)
        self.clock = finished
        statuses = {"success": "success", "failure": "failure", "timed_out": "failure", "cancelled": "cancelled"}
        if conclusion is None or conclusion in statuses:
            self.truth.deployments[str(run["id"])] = {
                "repo": repo, "environment": "production", "status": statuses.get(conclusion or "", "running"),
                "finished_at": finished if conclusion else None, "sha": head["sha"], "change_ids": [],
                "started_at": datetime.fromisoformat(run["created_at"].replace("Z", "+00:00")),
            }  # fmt: skip
        if conclusion == "success":
            self._ship(repo, "production", self.truth.deployments[str(run["id"])], str(run["id"]))
        return run

    def _ship(self, repo: str, env: str, expected: dict[str, Any], deployment_id: str) -> None:
        data = self.fake.repo(repo)
        previous = self.last_success.get((repo, env))
        if previous is not None:
            start = data.index(previous["sha"])
            assert start is not None
            expected["change_ids"] = [commit["sha"] for commit in data.commits[start + 1 :]]
            for commit in data.commits[start + 1 :]:
                date = datetime.fromisoformat(commit["commit"]["author"]["date"].replace("Z", "+00:00"))
                self.truth.changes.setdefault(commit["sha"], date)
        self.last_success[(repo, env)] = {"id": deployment_id, "sha": expected["sha"]}

    def _status(self, repo: str, deployment: dict[str, Any], state: str, when: datetime) -> dict[str, Any]:
        self.next_status_id += 1
        return make_status(repo, deployment, self.next_status_id, state, when)

    def round(self, repo: str, number: int, *, big: bool = False) -> None:
        self.add_commits(repo, 130 if big else self.rng.randint(1, 3))
        if self.rng.random() < 0.4:
            self.deploy(repo, "staging", "success" if self.rng.random() < 0.9 else "failure")
        draw = self.rng.random()
        outcome = "failure" if draw < 0.15 else "error" if draw < 0.2 else "success"
        environment = "prod" if self.rng.random() < 0.2 else "production"
        deployment = self.deploy(repo, environment, outcome)
        if outcome == "success" and self.rng.random() < 0.3:
            self.incident(repo, deployment)

    def incident(self, repo: str, deployment: dict[str, Any], *, open_: bool = False) -> dict[str, Any]:
        data = self.fake.repo(repo)
        expected = self.truth.deployments[str(deployment["id"])]
        started = expected["finished_at"] + self._minutes(5, 120)
        resolved = None if open_ else started + self._minutes(15, 400)
        style = self.rng.random()
        if style < 0.5:
            body, caused_by = f"Errors after the deploy.\n\nCaused-by: {deployment['id']}\n", str(deployment["id"])
        elif style < 0.8:
            body, caused_by = f"Rollback needed.\r\nCaused-by: {deployment['sha'][:12]}", str(deployment["id"])
        else:
            body, caused_by = "Pager went off, cause unknown.", None
        number = len(data.issues) + 1
        labels = ["incident"] + (["sev2"] if self.rng.random() < 0.5 else [])
        issue = make_issue(
            repo, number, title=f"Outage {number}", body=body, labels=labels, created=started, closed=resolved
        )
        data.issues.append(issue)
        self.truth.incidents[f"{repo}#{number}"] = {
            "started_at": started, "resolved_at": resolved, "caused_by": caused_by, "service": self.service(repo),
            "attributed_to": str(deployment["id"]),
        }  # fmt: skip
        self.clock = max(self.clock, resolved or started)
        return issue

    def noise(self, repo: str) -> None:
        """Issues the source must skip: a labelled pull request and an unlabelled bug."""
        data = self.fake.repo(repo)
        when = self.clock + timedelta(hours=1)
        for number, labels, pull_request in (
            (len(data.issues) + 1, ["incident"], True),
            (len(data.issues) + 2, ["bug"], False),
        ):
            data.issues.append(
                make_issue(
                    repo,
                    number,
                    title="Fix the outage" if pull_request else "Typo",
                    body="Caused-by: 1",
                    labels=labels,
                    created=when,
                    closed=None,
                    pull_request=pull_request,
                )
            )


class LiveServer:
    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        config = uvicorn.Config(fake.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake GitHub did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def _fake_server() -> Any:
    fake = FakeGitHub()
    with LiveServer(fake) as url:
        yield fake, url


@pytest.fixture
def github(_fake_server: Any) -> FakeGitHub:
    """A fresh fake GitHub (same server, emptied state); its ``base_url`` is set."""
    fake: FakeGitHub = _fake_server[0]
    url: str = _fake_server[1]
    fake.reset()
    fake.base_url = url
    return fake


@pytest.fixture
def history_factory(github: FakeGitHub) -> Any:
    return lambda seed=6: History(github, seed)
