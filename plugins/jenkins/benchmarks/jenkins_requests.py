"""Requests the Jenkins source makes against the fake Jenkins of its tests (real HTTP on 127.0.0.1).

    .venv/bin/python plugins/jenkins/benchmarks/jenkins_requests.py [--builds 1000] [--jobs 3] [--stage-builds 200]

Prints, for ``--jobs`` freestyle jobs of ``--builds`` builds each (results mixed, 0-2 commits a
build): the requests of a full sync, of a re-run with nothing new, and of a run after 10 new
builds per job; then a full sync with ``deploy_stage`` of one pipeline job of ``--stage-builds``
builds (one ``wfapi/describe`` per finished build, once). Request counts do not depend on the
machine; the seconds do (the fake answers small requests in ~40 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from jenkins_fake import T0, FakeJenkins, History, table
from metrichub_plugin_jenkins import JenkinsConfig, JenkinsSource

from metrichub_core import SourceContext
from metrichub_core.testing import FakeUpstream


async def run(jenkins: FakeJenkins, state: dict[str, Any], since: Any, **overrides: Any) -> tuple[int, int, float]:
    jenkins.clear()
    config = JenkinsConfig.model_validate(table(jenkins, **overrides))
    started = time.perf_counter()
    async with httpx.AsyncClient() as http:
        ctx = SourceContext(http=http, logger=logging.getLogger("bench"), state=state)
        events = [event async for event in JenkinsSource("bench", config, ctx).collect(since)]
    return len(jenkins.log), len(events), time.perf_counter() - started


def populate(jenkins: FakeJenkins, history: History, jobs: list[str], builds: int, *, pipeline: bool) -> None:
    for name in jobs:
        jenkins.job(name, pipeline=pipeline)
    results = ["SUCCESS"] * 6 + ["FAILURE", "UNSTABLE", "ABORTED", "NOT_BUILT"]
    stages = {"SUCCESS": "SUCCESS", "FAILURE": "FAILED", "UNSTABLE": "SUCCESS", "ABORTED": "ABORTED"}
    for _ in range(builds):
        for name in jobs:
            result = history.rng.choice(results)
            ran = [("Build", "SUCCESS"), ("Deploy", stages.get(result, "NOT_EXECUTED"))] if pipeline else None
            history.build(name, result, commits=history.rng.randint(0, 2), stages=ran)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--stage-builds", type=int, default=200)
    args = parser.parse_args()
    jobs = [f"deploy-{n}" for n in range(args.jobs)]
    with FakeUpstream() as upstream:
        jenkins = FakeJenkins(upstream)
        history = History(jenkins)
        populate(jenkins, history, jobs, args.builds, pipeline=False)
        state: dict[str, Any] = {}
        full, events, seconds = await run(jenkins, state, None, jobs=jobs)
        print(f"full sync, {args.jobs} jobs x {args.builds} builds: {full} requests "
              f"({full / args.jobs:.1f} per job), {events} events, {seconds:.2f} s")  # fmt: skip
        again, _, seconds = await run(jenkins, state, T0, jobs=jobs)
        print(f"re-run with nothing new: {again} requests ({again / args.jobs:.1f} per job; "
              f"{again / full:.3f} of the full sync), {seconds:.2f} s")  # fmt: skip
        for _ in range(10):
            for name in jobs:
                history.build(name, "SUCCESS", commits=1)
        newer, events, seconds = await run(jenkins, state, T0, jobs=jobs)
        print(f"run after 10 new builds per job: {newer} requests, {events} events, {seconds:.2f} s")
    with FakeUpstream() as upstream:
        jenkins = FakeJenkins(upstream)
        populate(jenkins, History(jenkins), jobs[:1], args.stage_builds, pipeline=True)
        state = {}
        full, events, seconds = await run(jenkins, state, None, jobs=jobs[:1], deploy_stage="(?i)deploy")
        print(f"deploy_stage, 1 pipeline job x {args.stage_builds} builds: {full} requests (ranges and one "
              f"wfapi/describe per finished build that may deploy), {seconds:.2f} s")  # fmt: skip
        again, _, _ = await run(jenkins, state, T0, jobs=jobs[:1], deploy_stage="(?i)deploy")
        print(f"deploy_stage re-run with nothing new: {again} request(s)")


if __name__ == "__main__":
    asyncio.run(main())
