"""``GitHubSource``: incremental collection of deployments, shipped commits and incidents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from metrichub_core import Event, Source, SourceConfig, SourceContext
from metrichub_core.resilience import replayed
from metrichub_core.shipping import capped_change_ids
from metrichub_plugin_github._changes import compare_changes
from metrichub_plugin_github._client import GitHubClient
from metrichub_plugin_github._config import GitHubConfig
from metrichub_plugin_github._deployments import (
    RunRecord,
    deployment_outcome,
    parse_time,
    run_outcome,
    to_deployment,
)
from metrichub_plugin_github._incidents import has_label, is_pull_request, to_incident
from metrichub_plugin_github._state import RepositoryState
from metrichub_plugin_github._webhooks import parse_delivery, verify_signature

__all__ = ["GitHubSource"]

STATE_VERSION = 1
LOOKBACK = timedelta(minutes=10)  # re-read items GitHub timestamped just before the cursor


class GitHubSource(Source):
    """Deployments (or workflow runs), the commits they shipped, and incident issues.

    ``ctx.state`` keeps a ``RepositoryState`` per repository (the cursor). With it a re-run
    asks each list for its first page only; the host's ETag cache, told to keep just those
    pages and the statuses of what is still running, answers an unchanged one with a free
    ``304``.
    """

    kind: ClassVar[str] = "github"
    Config: ClassVar[type[SourceConfig]] = GitHubConfig

    def __init__(self, id: str, config: SourceConfig, ctx: SourceContext) -> None:
        if not isinstance(config, GitHubConfig):
            config = GitHubConfig.model_validate(config.model_dump())
        super().__init__(id, config, ctx)
        self.settings: GitHubConfig = config
        self.last_request_count = 0

    def _client(self) -> GitHubClient:
        token = self.settings.token.get_secret_value() if self.settings.token else None
        return GitHubClient(self.ctx.http, self.settings.base_url, token, self.ctx.logger)

    async def check(self) -> None:
        client = self._client()
        for repository in self.settings.repositories:
            await client.get_json(f"/repos/{repository}")
            if self.settings.deployments_from == "workflow_runs":
                await client.get_json(f"/repos/{repository}/actions/workflows/{self.settings.workflow}")

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        full = since is None or self.ctx.state.get("version") != STATE_VERSION
        previous: dict[str, Any] = {} if full else self.ctx.state.get("repositories", {})
        client = self._client()
        repositories: dict[str, dict[str, Any]] = {}
        for repository in self.settings.repositories:
            state = RepositoryState.load(previous.get(repository))
            async for event in self._collect_repository(client, repository, since, state, full):
                yield event
            repositories[repository] = state.dump()
        self.last_request_count = client.requests
        self.ctx.logger.info("%s: %d GitHub requests", self.id, client.requests)
        self.ctx.state.clear()
        self.ctx.state.update(version=STATE_VERSION, repositories=repositories)

    async def _collect_repository(
        self, client: GitHubClient, repository: str, since: datetime | None, state: RepositoryState, full: bool
    ) -> AsyncIterator[Event]:
        records = [] if full else await self._recheck_pending(client, repository, state)
        records.extend(await self._new_records(client, repository, since, state, full))
        service = self.settings.service_of(repository)
        records.sort(key=lambda record: (record.started_at, int(record.id)))
        for record in records:
            environment = self.settings.environment_of(record.environment_name)
            if record.outcome.status == "success" and record.sha:
                base = state.predecessor(environment, record)
                if base is not None:
                    changes = await compare_changes(
                        client, repository, base, record.sha, source=self.id, service=service
                    )
                    record.change_ids = capped_change_ids([c.id for c in changes], record.id, self.ctx.logger)
                    for change in changes:
                        yield change
                state.add_success(environment, record)
            yield to_deployment(record, source=self.id, service=service, environment=environment)
        async for incident in self._incidents(client, repository, since, state, full):
            yield incident
        abandoned = state.prune_pending()
        if abandoned:
            self.ctx.logger.info("%s: %s: no longer following deployments %s", self.id, repository, abandoned)

    async def _new_records(
        self, client: GitHubClient, repository: str, since: datetime | None, state: RepositoryState, full: bool
    ) -> list[RunRecord]:
        """Deployments (or runs) newer than the cursor, newest first, with their outcome."""
        workflow_mode = self.settings.deployments_from == "workflow_runs"
        if workflow_mode:
            path, items_key = f"/repos/{repository}/actions/workflows/{self.settings.workflow}/runs", "workflow_runs"
        else:
            path, items_key = f"/repos/{repository}/deployments", None
        cutoff = since - LOOKBACK if since is not None and not full else None
        items: list[dict[str, Any]] = []
        async with aclosing(client.pages(path, items_key=items_key)) as pages:
            async for page in pages:
                if (page.unchanged and not full) or _take_until(page.items, items, state.last_id, cutoff):
                    break  # an unchanged first page: nothing new since the last successful run
        if items:
            state.last_id = max(state.last_id or 0, *(int(item["id"]) for item in items))
            state.saw(max(parse_time(item["created_at"]) for item in items))
        records: list[RunRecord] = []
        for item in items:
            if workflow_mode:
                record = self._run(repository, item)
            else:
                record = await self._deployment(client, repository, item)
            if record is None:
                continue
            if not record.outcome.final:
                state.pending[record.id] = _compact(item)
                if workflow_mode:
                    continue  # only completed runs are deployments
            records.append(record)
        return records

    async def _recheck_pending(self, client: GitHubClient, repository: str, state: RepositoryState) -> list[RunRecord]:
        """Deployments still running last time: one request each (a free 304 while unchanged)."""
        records: list[RunRecord] = []
        for deployment_id, item in list(state.pending.items()):
            if self.settings.deployments_from == "workflow_runs":
                path = f"/repos/{repository}/actions/runs/{deployment_id}"
                response = await client.get(client.url(path), cache=_run_in_progress)
                if replayed(response):
                    continue
                record = self._run(repository, response.json())
                if record is None or record.outcome.final:
                    del state.pending[deployment_id]
                if record is not None and record.outcome.final:
                    records.append(record)
                continue
            statuses: list[dict[str, Any]] = []
            path = f"/repos/{repository}/deployments/{deployment_id}/statuses"
            same = False
            async for page in client.pages(path, cache=_deployment_running):
                same = page.unchanged
                statuses.extend(page.items)
            if same:
                continue
            outcome = deployment_outcome(statuses)
            if outcome.final:
                del state.pending[deployment_id]
                records.append(RunRecord.from_deployment(repository, item, outcome))
        return records

    async def _deployment(self, client: GitHubClient, repository: str, item: dict[str, Any]) -> RunRecord:
        path = f"/repos/{repository}/deployments/{item['id']}/statuses"
        statuses: list[dict[str, Any]] = []
        async for page in client.pages(path, cache=_deployment_running):  # only running ones are asked again
            statuses.extend(page.items)
        outcome = deployment_outcome(statuses)
        return RunRecord.from_deployment(repository, item, outcome)

    def _run(self, repository: str, run: dict[str, Any]) -> RunRecord | None:
        outcome = run_outcome(run)
        return None if outcome is None else RunRecord.from_run(repository, run, outcome)

    async def _incidents(
        self, client: GitHubClient, repository: str, since: datetime | None, state: RepositoryState, full: bool
    ) -> AsyncIterator[Event]:
        """Issues with the incident label, most recently updated first, down to the cursor.

        The cursor is the newest ``updated_at`` seen last time (GitHub's clock, not ours),
        else the host's ``since``.
        """
        cursor = parse_time(state.issues_updated_at) if state.issues_updated_at else since
        cutoff = cursor - LOOKBACK if cursor is not None and not full else None
        params: dict[str, str | int] = {
            "labels": self.settings.incident_label,
            "state": "all",
            "sort": "updated",
            "direction": "desc",
        }
        service = self.settings.service_of(repository)
        async with aclosing(client.pages(f"/repos/{repository}/issues", params)) as pages:
            async for page in pages:
                if page.unchanged and not full:
                    return  # as the last successful run saw it: nothing new
                for issue in page.items:
                    updated = parse_time(issue["updated_at"])
                    if cutoff is not None and updated < cutoff:
                        return
                    if state.issues_updated_at is None or updated > parse_time(state.issues_updated_at):
                        state.issues_updated_at = issue["updated_at"]
                    if is_pull_request(issue) or not has_label(issue, self.settings.incident_label):
                        continue
                    yield to_incident(
                        issue, repository=repository, source=self.id, service=service, resolve_deployment=state.resolve
                    )

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.settings.webhook_secret
        verify_signature(secret.get_secret_value() if secret else None, headers, body)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[Event]:
        def resolve(repository: str, reference: str) -> str:
            raw = self.ctx.state.get("repositories", {}).get(repository)
            return RepositoryState.load(raw).resolve(reference)

        return parse_delivery(self.settings, self.id, headers, body, resolve)


def _take_until(
    page: list[dict[str, Any]], into: list[dict[str, Any]], last_id: int | None, cutoff: datetime | None
) -> bool:
    """Append the page's items newer than the cursor; ``True`` once the cursor is reached."""
    for item in page:
        if last_id is not None and int(item["id"]) <= last_id:
            return True
        if last_id is None and cutoff is not None and parse_time(item["created_at"]) < cutoff:
            return True
        into.append(item)
    return False


def _deployment_running(response: httpx.Response) -> bool:
    """Keep a statuses page in the host's ETag cache only while the deployment runs (asked again)."""
    return not deployment_outcome(response.json()).final


def _run_in_progress(response: httpx.Response) -> bool:
    """Keep a workflow run in the host's ETag cache only until it completes (asked again until then)."""
    return bool(response.json().get("status") != "completed")


def _compact(item: dict[str, Any]) -> dict[str, Any]:
    """The fields of a deployment needed to report it once it finishes."""
    return {key: item.get(key) for key in ("id", "sha", "ref", "environment", "created_at")}
