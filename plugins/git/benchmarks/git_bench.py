"""Benchmark: collecting a 50,000-commit / 1,000-tag repository against one ``git log`` pass over it.

    .venv/bin/python plugins/git/benchmarks/git_bench.py [--commits 50000] [--tags 1000] [--repeat 3]

The repository is generated with ``git fast-import`` in a temp dir: a main line where each
release is a run of feature branches (9 commits each) merged with ``--no-ff`` merges, one
tag per release (every tenth lightweight, the rest annotated). It prints, medians of
``--repeat`` runs:

- the baseline: one ``git log --format='%H %aI' --all`` pass, output read to the end;
- a full collection (``GitSource.collect(None)``: list tags, one walk, every Deployment
  and Change built and validated) and its ratio to the baseline (goal: <= 3x);
- a re-run after one new tag with 20 new commits (goal: < 1 s), and an unchanged re-run;
- a re-run after a tag dated in the middle of the history (one full walk, only changed ranges reported);
- the number of git processes each run started.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from metrichub_plugin_git import GitConfig, GitSource
from metrichub_plugin_git._runner import GitRunner

from metrichub_core import Change, Deployment, SourceContext

BASE = 1_700_000_000  # 2023-11-14, seconds since the epoch
STEP = 600  # ten minutes between commits
BRANCH = 9  # commits per feature branch (plus its merge)


def env() -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    return {**clean, "LC_ALL": "C"}


def stream(commits: int, tags: int) -> Iterator[bytes]:
    """A fast-import stream: releases of feature branches merged into main, one tag per release."""
    per_tag = commits // tags
    mark = 0
    main: int | None = None
    clock = BASE
    for release in range(tags):
        made = 0
        while made < per_tag:
            size = min(BRANCH, per_tag - made - 1) if per_tag - made > 1 else 0
            tip = main
            for _ in range(size):  # a feature branch off main
                mark += 1
                clock += STEP
                yield _commit(mark, clock, f"feature work {mark}", tip)
                tip = mark
            mark += 1
            clock += STEP
            if size and main is not None:
                yield _commit(mark, clock, f"Merge feature {mark}", main, tip)
            else:
                yield _commit(mark, clock, f"change {mark}", tip)
            main = mark
            made += size + 1
        name = f"v1.{release}.0"
        if release % 10 == 9:
            yield f"reset refs/tags/{name}\nfrom :{main}\n\n".encode()
        else:
            message = f"release {name}\n".encode()
            yield f"tag {name}\nfrom :{main}\ntagger Bench <b@example.invalid> {clock + 300} +0000\n".encode()
            yield f"data {len(message)}\n".encode() + message + b"\n"
    yield f"reset refs/heads/main\nfrom :{main}\n\n".encode()


def _commit(mark: int, at: int, subject: str, parent: int | str | None, merged: int | None = None) -> bytes:
    """A commit with no files; ``parent`` is a mark number or a commit id."""
    message = f"{subject}\n".encode()
    lines = [f"commit refs/heads/main\nmark :{mark}\n", f"author Dev <d@example.invalid> {at - 120} +0000\n",
             f"committer Dev <d@example.invalid> {at} +0000\n", f"data {len(message)}\n"]  # fmt: skip
    tail = "" if parent is None else f"from :{parent}\n" if isinstance(parent, int) else f"from {parent}\n"
    if merged is not None:
        tail += f"merge :{merged}\n"
    return "".join(lines).encode() + message + tail.encode() + b"\n"


def generate(path: Path, commits: int, tags: int) -> None:
    subprocess.run(["git", "init", "--quiet", "--bare", str(path)], check=True, env=env())
    data = b"".join(stream(commits, tags))
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=data, check=True, env=env())


def add_release(path: Path, name: str, commits: int = 20) -> None:
    """One more release on top of main: ``commits`` commits and an annotated tag."""
    head = subprocess.run(["git", "-C", str(path), "rev-parse", "main"], check=True, capture_output=True,
                          text=True, env=env()).stdout.strip()  # fmt: skip
    clock = int(time.time()) - 3600
    parts = [_commit(index + 1, clock + index, f"late change {index}", head if index == 0 else f":{index}")
             for index in range(commits)]  # fmt: skip
    message = f"release {name}\n".encode()
    parts.append(f"tag {name}\nfrom :{commits}\ntagger Bench <b@example.invalid> {clock + 600} +0000\n"
                 f"data {len(message)}\n".encode() + message + b"\n")  # fmt: skip
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=b"".join(parts), check=True, env=env())


def backdate(path: Path, name: str) -> None:
    """An annotated tag on a commit in the middle of the history, dated just after that commit."""
    revision = subprocess.run(["git", "-C", str(path), "log", "--format=%H %ct", "--skip=25000", "-1", "main"],
                              check=True, capture_output=True, text=True, env=env()).stdout.split()  # fmt: skip
    dated = {**env(), "GIT_COMMITTER_DATE": f"@{int(revision[1]) + 60} +0000", "GIT_COMMITTER_NAME": "Bench",
             "GIT_COMMITTER_EMAIL": "b@example.invalid"}  # fmt: skip
    subprocess.run(["git", "-C", str(path), "tag", "-a", name, "-m", name, revision[0]], check=True, env=dated)


def baseline(path: Path) -> float:
    started = time.perf_counter()
    out = subprocess.run(["git", "-C", str(path), "log", "--format=%H %aI", "--all"], check=True,
                         capture_output=True, env=env()).stdout  # fmt: skip
    elapsed = time.perf_counter() - started
    assert out.count(b"\n") > 0
    return elapsed


class Counting:
    """Counts the git processes the source starts (wraps ``GitRunner.run``)."""

    def __init__(self) -> None:
        self.calls = 0
        self._run = GitRunner.run
        counter = self

        async def run(runner: GitRunner, *args: str, stdin: bytes | None = None) -> bytes:
            counter.calls += 1
            return await counter._run(runner, *args, stdin=stdin)

        setattr(GitRunner, "run", run)  # noqa: B010 - patched for the benchmark only


async def collect(path: Path, state: dict[str, Any], since: Any) -> tuple[float, int, int]:
    config = GitConfig.model_validate({"kind": "git", "repository": str(path)})
    async with httpx.AsyncClient() as http:
        source = GitSource("bench", config, SourceContext(http=http, logger=logging.getLogger("bench"), state=state))
        started = time.perf_counter()
        deployments = changes = 0
        async for event in source.collect(since):
            deployments += isinstance(event, Deployment)
            changes += isinstance(event, Change)
        return time.perf_counter() - started, deployments, changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=50_000)
    parser.add_argument("--tags", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    counting = Counting()
    with tempfile.TemporaryDirectory(prefix="git-bench-") as tmp:
        path = Path(tmp) / "bench.git"
        started = time.perf_counter()
        generate(path, args.commits, args.tags)
        count = subprocess.run(["git", "-C", str(path), "rev-list", "--count", "--all"], check=True,
                               capture_output=True, text=True, env=env()).stdout.strip()  # fmt: skip
        print(f"generated {count} commits, {args.tags} tags in {time.perf_counter() - started:.1f} s (fast-import)")
        baselines, fulls = [], []
        for _ in range(args.repeat):
            baselines.append(baseline(path))
            counting.calls = 0
            elapsed, deployments, changes = asyncio.run(collect(path, {}, None))
            fulls.append(elapsed)
        full_calls = counting.calls
        base, full = statistics.median(baselines), statistics.median(fulls)
        print(f"baseline  git log --format='%H %aI' --all: {base:.3f} s (median of {args.repeat})")
        print(f"full collection: {full:.3f} s, {deployments} deployments, {changes} changes, "
              f"{full_calls} git processes -> {full / base:.2f}x the baseline (goal <= 3x)")  # fmt: skip
        state: dict[str, Any] = {}
        asyncio.run(collect(path, state, None))
        counting.calls = 0
        unchanged, _, _ = asyncio.run(collect(path, state, time.time()))
        print(f"unchanged re-run: {unchanged:.3f} s, {counting.calls} git processes")
        add_release(path, f"v1.{args.tags}.0")
        counting.calls = 0
        rerun, deployments, changes = asyncio.run(collect(path, state, time.time()))
        print(f"re-run with one new tag: {rerun:.3f} s ({deployments} deployment, {changes} changes, "
              f"{counting.calls} git processes; goal < 1 s)")  # fmt: skip
        backdate(path, "v0.0.5")
        counting.calls = 0
        late, deployments, changes = asyncio.run(collect(path, state, time.time()))
        print(f"re-run with one back-dated tag (mid-history): {late:.3f} s ({deployments} deployments re-derived, "
              f"{counting.calls} git processes)")  # fmt: skip
        ok = full / base <= 3 and rerun < 1
        print("goals met" if ok else "GOALS NOT MET")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
