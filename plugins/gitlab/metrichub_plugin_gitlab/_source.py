"""``GitLabSource``: incremental collection of deployments, shipped commits and incidents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from datetime import datetime
from typing import Any, ClassVar

from metrichub_core import Event, Source, SourceConfig, SourceContext
from metrichub_core.shipping import capped_change_ids
from metrichub_plugin_gitlab._changes import compare_changes
from metrichub_plugin_gitlab._client import GitLabClient, Params, project_ref
from metrichub_plugin_gitlab._config import GitLabConfig
from metrichub_plugin_gitlab._deployments import DeploymentRecord, to_deployment
from metrichub_plugin_gitlab._incidents import is_incident, to_incident
from metrichub_plugin_gitlab._state import ProjectState, UpdatedCursor
from metrichub_plugin_gitlab._webhooks import parse_delivery, verify_delivery

__all__ = ["GitLabSource"]

STATE_VERSION = 1


class GitLabSource(Source):
    """Deployments, the commits each shipped, and incident issues of the configured projects.

    ``ctx.state`` keeps a ``ProjectState`` per project: the numeric project id, ``updated_after``
    cursors (GitLab's clock) for deployments, merged merge requests and incident issues, and the
    successful deployments that are the next compare bases. A re-run asks each list once, with the
    same ``updated_after`` as the last run when nothing changed, which the host's ETag cache turns
    into a free ``304``.
    """

    kind: ClassVar[str] = "gitlab"
    Config: ClassVar[type[SourceConfig]] = GitLabConfig

    def __init__(self, id: str, config: SourceConfig, ctx: SourceContext) -> None:
        if not isinstance(config, GitLabConfig):
            config = GitLabConfig.model_validate(config.model_dump())
        super().__init__(id, config, ctx)
        self.settings: GitLabConfig = config
        self.last_request_count = 0

    def _client(self) -> GitLabClient:
        token = self.settings.token.get_secret_value() if self.settings.token else None
        return GitLabClient(self.ctx.http, self.settings.api_url, token, self.settings.auth, self.ctx.logger)

    async def check(self) -> None:
        client = self._client()
        for project in self.settings.projects:
            await client.get_json(f"/projects/{project_ref(project)}")

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        full = since is None or self.ctx.state.get("version") != STATE_VERSION
        previous: dict[str, Any] = {} if full else self.ctx.state.get("projects", {})
        client = self._client()
        projects: dict[str, dict[str, Any]] = {}
        for project in self.settings.projects:
            state = ProjectState(previous.get(project))
            async for event in self._collect_project(client, project, state, full):
                yield event
            projects[project] = state.dump()
        self.last_request_count = client.requests
        self.ctx.logger.info("%s: %d GitLab requests", self.id, client.requests)
        self.ctx.state.clear()
        self.ctx.state.update(version=STATE_VERSION, projects=projects)

    async def _collect_project(
        self, client: GitLabClient, project: str, state: ProjectState, full: bool
    ) -> AsyncIterator[Event]:
        if state.project_id is None:  # the numeric id survives renames (a renamed path only redirects)
            state.project_id = int((await client.get_json(f"/projects/{project_ref(project)}"))["id"])
        base = f"/projects/{state.project_id}"
        service = self.settings.service_of(project)
        await self._merged_requests(client, base, state, full)
        items = await _read_updated(client, f"{base}/deployments", {}, state.deployments, full)
        records = [record for item in items if (record := DeploymentRecord.from_api(project, item)) is not None]
        tiers = await self._tiers(client, base, state, records, full)
        records.sort(key=lambda record: (record.started_at, int(record.id)))
        merged = state.merged_times() if records else {}
        for record in records:
            environment = self.settings.environment_of(record.environment_name, tiers.get(record.environment_name))
            if record.status == "success" and record.sha:
                previous = state.bases.predecessor(record.environment_name, record.started_at, record.id)
                if previous is not None:
                    changes = await compare_changes(
                        client,
                        state.project_id,
                        previous,
                        record.sha,
                        source=self.id,
                        service=service,
                        merged=merged,
                    )
                    record.change_ids = capped_change_ids([c.id for c in changes], record.id, self.ctx.logger)
                    for change in changes:
                        yield change
                production = environment == "production"
                state.add_success(record.environment_name, production, record.started_at, record.id, record.sha)
            yield to_deployment(record, source=self.id, service=service, environment=environment)
        async for incident in self._incidents(client, base, project, state, full):
            yield incident

    async def _tiers(
        self, client: GitLabClient, base: str, state: ProjectState, records: list[DeploymentRecord], full: bool
    ) -> dict[str, str | None]:
        """Environment name → tier (the deployments list has no tier); asked only when a name is new."""
        names = {record.environment_name for record in records}
        if names and (full or not names <= set(state.tiers)):
            state.tiers = {}
            async for page in client.pages(f"{base}/environments"):
                state.tiers.update({str(env["name"]): env.get("tier") for env in page.items})
            state.tiers.update({name: None for name in names - set(state.tiers)})  # deleted: not asked again
        return dict(state.tiers)

    async def _merged_requests(self, client: GitLabClient, base: str, state: ProjectState, full: bool) -> None:
        """Merged merge requests: their merge, squash and head commits → ``merged_at`` (for ``Change.merged_at``)."""
        items = await _read_updated(client, f"{base}/merge_requests", {"state": "merged"}, state.merge_requests, full)
        for request in items:
            merged_at = request.get("merged_at")
            if not merged_at:
                continue  # GitLab before 11.x has no merged_at
            for key in ("sha", "squash_commit_sha", "merge_commit_sha"):  # the merge commit wins: remembered last
                if request.get(key):
                    state.remember_merge(str(request[key]), str(merged_at))

    async def _incidents(
        self, client: GitLabClient, base: str, project: str, state: ProjectState, full: bool
    ) -> AsyncIterator[Event]:
        """Issues of type incident, and issues labelled ``incident_label``; ordinary issues never."""
        queries: list[Params] = [{"issue_type": "incident", "state": "all"}]
        if self.settings.incident_label:
            queries.append({"labels": self.settings.incident_label, "state": "all"})
        issues: dict[str, dict[str, Any]] = {}  # by id: an incident may carry the label too
        for query in queries:
            for issue in await _read_updated(client, f"{base}/issues", query, state.issues, full, advance=False):
                issues[str(issue["id"])] = issue
        state.issues.advance(list(issues.values()))
        service = self.settings.service_of(project)
        for issue in issues.values():
            if is_incident(issue, self.settings.incident_label):
                yield to_incident(
                    issue, project=project, source=self.id, service=service, resolve_deployment=state.resolve
                )

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        verify_delivery(self.settings, headers, body)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[Event]:
        def project_state(project: str) -> ProjectState:
            return ProjectState(self.ctx.state.get("projects", {}).get(project))

        return parse_delivery(self.settings, self.id, headers, body, project_state)


async def _read_updated(
    client: GitLabClient, path: str, params: Params, cursor: UpdatedCursor, full: bool, *, advance: bool = True
) -> list[dict[str, Any]]:
    """Items new since the cursor, oldest update first; everything (oldest created first) on a full run.

    Incremental reads send ``updated_after`` with ``order_by=updated_at`` (GitLab 16+ answers 400
    to ``updated_after`` with any other order; ``finished_after`` would drop failed deployments).
    A page the host replays from its cache is as the last successful run read it: skipped.
    """
    after = None if full else cursor.after()
    query: Params = {**params, "sort": "asc"}
    if after is None:
        query["order_by"] = "created_at"  # stable while paging: updates do not move items between pages
    else:
        query.update(order_by="updated_at", updated_after=after)
    items: list[dict[str, Any]] = []
    async with aclosing(client.pages(path, query)) as pages:
        async for page in pages:
            if page.unchanged and not full:
                continue
            items.extend(item for item in page.items if full or cursor.is_new(item))
    if advance:
        cursor.advance(items)
    return items
