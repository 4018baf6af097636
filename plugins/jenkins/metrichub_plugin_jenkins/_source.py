"""``JenkinsSource``: deployments and the commits they shipped, from every build of the listed jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, ClassVar

from metrichub_core import Change, Deployment, Event, Source, SourceConfig, SourceContext
from metrichub_core.shipping import capped_change_ids
from metrichub_plugin_jenkins._builds import (
    BuildRecord,
    Status,
    builds_tree,
    deployment_status,
    from_millis,
    parse_build,
)
from metrichub_plugin_jenkins._client import JenkinsClient, JenkinsError, job_path
from metrichub_plugin_jenkins._config import JenkinsConfig
from metrichub_plugin_jenkins._jobs import CHILD_FIELDS, JobTarget, expand, is_container
from metrichub_plugin_jenkins._ledger import JobLedger
from metrichub_plugin_jenkins._stages import stage_outcome

__all__ = ["JenkinsSource"]

STATE_VERSION = 1
PAGE = 100  # builds per ranged request
MAX_PAGES = 10_000  # a guard against a server that never ends a list
_FIRST = f"{CHILD_FIELDS},firstBuild[number]"  # a configured name may be a folder: ask both at once


class JenkinsSource(Source):
    """Every build of the configured jobs (folders and multibranch projects expanded).

    ``ctx.state`` keeps a ``JobLedger`` per job: the build number up to which everything is
    finished and folded in, the newest number read, and the commits listed since each
    environment's last success. A re-run asks each job for the builds above that number only
    (one small ranged request when nothing is new) and reads still-running builds again.
    """

    kind: ClassVar[str] = "jenkins"
    Config: ClassVar[type[SourceConfig]] = JenkinsConfig

    def __init__(self, id: str, config: SourceConfig, ctx: SourceContext) -> None:
        if not isinstance(config, JenkinsConfig):
            config = JenkinsConfig.model_validate(config.model_dump())
        super().__init__(id, config, ctx)
        self.settings: JenkinsConfig = config
        self.last_request_count = 0

    def _client(self) -> JenkinsClient:
        token = self.settings.api_token.get_secret_value() if self.settings.api_token else None
        return JenkinsClient(self.ctx.http, self.settings.base_url, self.settings.username, token, self.ctx.logger)

    async def check(self) -> None:
        client = self._client()
        for entry in self.settings.jobs:
            await client.job_json(entry, "fullName")

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        full = since is None or self.ctx.state.get("version") != STATE_VERSION
        previous: dict[str, Any] = {} if full else dict(self.ctx.state.get("jobs", {}))
        client = self._client()
        ledgers: dict[str, dict[str, Any]] = {}  # also the jobs already read (a job found twice is read once)
        for entry in self.settings.jobs:
            if entry in ledgers:
                continue
            ledger = JobLedger.load(previous.get(entry))
            body = await client.job_json(entry, builds_tree(0, _first_size(ledger), job_fields=_FIRST))
            if not is_container(body):
                target = JobTarget(entry, entry, self.settings.service_of(entry, entry.rsplit("/", 1)[-1]))
                async for event in self._job(client, target, ledger, body, ledgers):
                    yield event
                continue
            for target in await expand(client, self.settings, entry, body):
                if target.full_name in ledgers:
                    continue
                branch_ledger = JobLedger.load(previous.get(target.full_name))
                async for event in self._job(client, target, branch_ledger, None, ledgers):
                    yield event
        self.last_request_count = client.requests
        self.ctx.logger.info("%s: %d Jenkins requests", self.id, client.requests)
        self.ctx.state.clear()
        self.ctx.state.update(version=STATE_VERSION, jobs=ledgers)

    async def _job(
        self,
        client: JenkinsClient,
        target: JobTarget,
        ledger: JobLedger,
        body: dict[str, Any] | None,
        ledgers: dict[str, dict[str, Any]],
    ) -> AsyncIterator[Event]:
        """Fold the job's new builds into its ledger in number order; yield their events."""
        items = await self._read_builds(client, target.full_name, ledger, body)
        if ledger.done is not None and items and int(items[0]["number"]) < ledger.done:
            self.ctx.logger.warning("%s: build numbers went back (job recreated?): reading it again", target.full_name)
            ledger = JobLedger()
            items = await self._read_builds(client, target.full_name, ledger, None)
        fresh = sorted(
            (item for item in items if ledger.done is None or int(item["number"]) > ledger.done),
            key=lambda item: int(item["number"]),
        )
        repository = self.settings.repositories.get(target.entry)
        saved: JobLedger | None = None  # the ledger as of the last build before one still running
        finished = ledger.done
        warned = False
        for item in fresh:
            record = parse_build(item, parameter=self.settings.environment_parameter, repository=repository)
            if record.building and saved is None:
                saved = ledger.copy()
                saved.done = finished
            elif saved is None:
                finished = record.number
            if record.other_checkouts and repository is None and not warned:
                warned = True
                self.ctx.logger.info(
                    "%s: builds check out several repositories; set repositories.%s to pick the job's own",
                    target.full_name,
                    target.entry,
                )
            status = await self._status(client, target.full_name, record, ledger)
            environment = self.settings.environment_of(record.environment_name)
            shipped = ledger.fold(environment, record.commits, status == "success")
            if status is None:
                continue  # NOT_BUILT, no result, or a deploy stage that did not run: its commits wait
            for sha, millis in shipped:
                if millis > 0:
                    committed = from_millis(millis)
                    yield Change(id=sha, source=self.id, service=target.service, committed_at=committed)
            yield self._deployment(target, record, status, environment, [sha for sha, _ in shipped])
        if saved is None:
            saved = ledger
            saved.done = finished
        numbers = [int(item["number"]) for item in items]
        saved.last_seen = max([*numbers, saved.done or 0, ledger.last_seen or 0]) or None
        saved.stages = {key: value for key, value in ledger.stages.items() if int(key) > (saved.done or 0)}
        ledgers[target.full_name] = saved.dump()

    async def _read_builds(
        self, client: JenkinsClient, name: str, ledger: JobLedger, body: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """The builds above ``ledger.done`` (all of them on a first run), newest first, by ranges."""
        size = _first_size(ledger)
        if body is None:
            body = await client.job_json(name, builds_tree(0, size, job_fields="firstBuild[number]"))
        first = (body.get("firstBuild") or {}).get("number")
        items: list[dict[str, Any]] = []
        start = 0
        for _ in range(MAX_PAGES):
            page = [item for item in body.get("allBuilds") or [] if isinstance(item, dict) and "number" in item]
            items.extend(page)
            if len(page) < size:
                return items  # the end of the list
            oldest = int(page[-1]["number"])
            if (ledger.done is not None and oldest <= ledger.done) or (first is not None and oldest <= int(first)):
                return items  # reached what was read before, or the job's first build
            start, size = start + size, PAGE
            body = await client.job_json(name, builds_tree(start, start + size))
        raise JenkinsError(f"{name}: more than {MAX_PAGES * PAGE} builds, or the build list never ends")

    async def _status(self, client: JenkinsClient, name: str, record: BuildRecord, ledger: JobLedger) -> Status | None:
        status = deployment_status(record, self.settings.unstable)
        pattern = self.settings.deploy_stage
        if pattern is None or not record.pipeline or status is None:
            return status
        if record.building:
            return None  # reported once finished, when its stages are final
        key = str(record.number)
        if key not in ledger.stages:  # stages are asked once per build
            describe = await client.get_json(f"{job_path(name)}/{record.number}/wfapi/describe")
            outcome = stage_outcome(describe, pattern, self.settings.unstable)
            ledger.stages[key] = outcome
        cached = ledger.stages[key]
        return None if cached is None else _as_status(cached)

    def _deployment(
        self, target: JobTarget, record: BuildRecord, status: Status, environment: str, change_ids: list[str]
    ) -> Deployment:
        labels = {"job": target.full_name}
        if record.environment_name:
            labels["jenkins_environment"] = record.environment_name
        return Deployment(
            id=f"{target.full_name}#{record.number}",
            source=self.id,
            service=target.service,
            environment=environment,
            status=status,
            started_at=record.started_at,
            finished_at=None if status == "running" else record.finished_at,
            commit_sha=record.sha,
            change_ids=capped_change_ids(change_ids, f"{target.full_name}#{record.number}", self.ctx.logger),
            url=record.url,
            labels=labels,
            updated_at=record.updated_at,
        )


def _first_size(ledger: JobLedger) -> int:
    """The first range: a full page on a first run, else just the builds above ``done`` and ``done`` itself."""
    if ledger.done is None:
        return PAGE
    return max(1, min(PAGE, (ledger.last_seen or ledger.done) - ledger.done + 1))


def _as_status(value: str) -> Status:
    statuses: dict[str, Status] = {"success": "success", "failure": "failure", "cancelled": "cancelled"}
    return statuses[value]
