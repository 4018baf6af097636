"""Real git repositories built in a temp dir with fixed dates, and a dumb-HTTP remote served by ``FakeUpstream``.

``GitRepo`` drives the ``git`` command with ``GIT_AUTHOR_DATE``/``GIT_COMMITTER_DATE`` set,
so every time a test's arithmetic uses is the one git records. ``serve_dumb_http`` publishes
a bare copy of a repository as static files (git's "dumb" HTTP protocol) on the core's
``FakeUpstream``, so a remote clone and fetch go over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from metrichub_core import Change, Deployment, MetricHub
from metrichub_core.storage.base import EventQuery
from metrichub_core.testing import FakeUpstream, Reply

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def hours(value: float) -> datetime:
    return T0 + timedelta(hours=value)


def _git_date(moment: datetime) -> str:
    return f"@{int(moment.timestamp())} +0000"


def git_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(LC_ALL="C", GIT_CONFIG_NOSYSTEM="1", HOME=os.environ.get("HOME", "/tmp"), **extra)
    return env


class GitRepo:
    """A repository in a temp dir; every command gets explicit author/committer dates."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--initial-branch=main")
        self.git("config", "user.name", "Test Author")
        self.git("config", "user.email", "author@example.invalid")
        self.git("config", "commit.gpgsign", "false")
        self.git("config", "tag.gpgsign", "false")
        self._counter = 0

    def git(self, *args: str, at: datetime | None = None, authored: datetime | None = None) -> str:
        env = git_env()
        if at is not None:
            env["GIT_COMMITTER_DATE"] = _git_date(at)
            env["GIT_AUTHOR_DATE"] = _git_date(authored or at)
        done = subprocess.run(
            ["git", "-C", str(self.path), *args], env=env, capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    def commit(self, message: str, authored: datetime, committed: datetime | None = None) -> str:
        """A commit touching one file; committed at ``committed`` (default: when authored)."""
        self._counter += 1
        (self.path / f"file{self._counter}.txt").write_text(message + "\n")
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message, at=committed or authored, authored=authored)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, at: datetime, ref: str = "HEAD", *, force: bool = False) -> None:
        """An annotated tag whose tagger date is ``at``."""
        self.git("tag", *(["--force"] if force else []), "-a", name, "-m", f"release {name}", ref, at=at)

    def lightweight(self, name: str, ref: str = "HEAD") -> None:
        self.git("tag", name, ref)

    def branch(self, name: str, start: str) -> None:
        self.git("checkout", "--quiet", "-b", name, start)

    def checkout(self, name: str) -> None:
        self.git("checkout", "--quiet", name)

    def merge(self, branch: str, at: datetime) -> str:
        self.git("merge", "--quiet", "--no-ff", "-m", f"Merge {branch}", branch, at=at)
        return self.head()


def serve_dumb_http(upstream: FakeUpstream, repository: Path, bare: Path, name: str = "acme.git") -> str:
    """Copy ``repository`` to a bare ``bare`` and script its files on ``upstream``; returns the URL path."""
    subprocess.run(["git", "clone", "--quiet", "--bare", str(repository), str(bare)], check=True, env=git_env())
    publish(upstream, bare, name)
    return f"/{name}"


def publish(upstream: FakeUpstream, bare: Path, name: str) -> None:
    """(Re)publish ``bare``: one pack plus ``info/refs``, as ``git update-server-info`` lays them out."""
    for args in (["repack", "-a", "-d", "-q"], ["update-server-info"]):
        subprocess.run(["git", "-C", str(bare), *args], check=True, env=git_env())
    for path in [bare / "HEAD", bare / "info" / "refs", bare / "objects" / "info" / "packs"]:
        upstream.script(f"/{name}/{path.relative_to(bare).as_posix()}", Reply(200, body=path.read_bytes()))
    for path in (bare / "objects" / "pack").iterdir():
        upstream.script(f"/{name}/objects/pack/{path.name}", Reply(200, body=path.read_bytes()))


async def collected(hub: MetricHub) -> tuple[dict[str, Deployment], dict[str, Change]]:
    """The deployments and changes stored in ``hub``, by id."""
    deployments = (await hub.storage.list_events(EventQuery(kind="deployment", limit=1000))).items
    changes = (await hub.storage.list_events(EventQuery(kind="change", limit=1000))).items
    return (
        {event.id: event for event in deployments if isinstance(event, Deployment)},
        {event.id: event for event in changes if isinstance(event, Change)},
    )
