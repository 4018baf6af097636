"""``SampleSource``: a small reference source that the kit's own tests and benchmarks use.

It reads deployments from any API shaped like ``FakeUpstream.pages()``:
``GET {base_url}{path}?per_page=N[&since=ISO]`` returning JSON lists linked by
``Link: rel="next"``, and accepts HMAC-signed webhooks. ``sample_items()`` makes
matching upstream data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field, SecretStr

from metrichub_core.hookspecs import hookimpl
from metrichub_core.models import Deployment, Event
from metrichub_core.resilience.pagination import paginate
from metrichub_core.sources import Source, SourceConfig, WebhookRejected

__all__ = ["SIGNATURE_HEADER", "SampleConfig", "SampleSource", "sample_items", "sign"]

SIGNATURE_HEADER = "X-Sample-Signature"


class SampleConfig(SourceConfig):
    base_url: str
    token: SecretStr | None = None
    path: str = "/deployments"
    page_size: int = Field(100, ge=1, le=1000)
    webhook_secret: SecretStr | None = None


class SampleSource(Source):
    """Deployments from a paged JSON API (kind ``sample``)."""

    kind = "sample"
    Config = SampleConfig

    @property
    def settings(self) -> SampleConfig:
        assert isinstance(self.config, SampleConfig)
        return self.config

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        params: dict[str, Any] = {"per_page": self.settings.page_size}
        if since is not None:
            params["since"] = since.isoformat()
        headers = {}
        if self.settings.token is not None:
            headers["Authorization"] = f"Bearer {self.settings.token.get_secret_value()}"
        async for item in paginate(self.ctx.http, self.settings.path, params=params, headers=headers):
            yield _deployment(self.id, item)
        self.ctx.state["runs"] = int(self.ctx.state.get("runs", 0)) + 1

    async def check(self) -> None:
        response = await self.ctx.http.get(self.settings.path, params={"per_page": 1})
        response.raise_for_status()

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.settings.webhook_secret
        if secret is None:
            raise WebhookRejected("no webhook_secret is configured")
        sent = {key.lower(): value for key, value in headers.items()}.get(SIGNATURE_HEADER.lower(), "")
        if not hmac.compare_digest(sent, sign(secret.get_secret_value(), body)):
            raise WebhookRejected("bad signature")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[Event]:
        return [_deployment(self.id, json.loads(body))]


def _deployment(source_id: str, item: Mapping[str, Any]) -> Deployment:
    return Deployment(
        id=str(item["id"]),
        source=source_id,
        service=item["service"],
        environment=item.get("environment", "production"),
        status=item["status"],
        started_at=item["started_at"],
        finished_at=item.get("finished_at"),
        commit_sha=item.get("sha"),
        updated_at=item.get("updated_at"),
    )


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sample_items(
    count: int, *, start: datetime | None = None, service: str = "api", prefix: str = "d"
) -> list[dict[str, Any]]:
    """``count`` upstream deployment items, one every 10 minutes from ``start``, oldest first."""
    start = start or datetime(2026, 1, 5, tzinfo=UTC)
    items = []
    for index in range(count):
        begun = start + timedelta(minutes=10 * index)
        finished = begun + timedelta(minutes=4)
        items.append(
            {
                "id": f"{prefix}{index}",
                "service": service,
                "status": "failure" if index % 7 == 3 else "success",
                "started_at": begun.isoformat(),
                "finished_at": finished.isoformat(),
                "updated_at": finished.isoformat(),
                "sha": f"{index:040x}",
            }
        )
    return items


@hookimpl
def register_sources() -> list[type[Source]]:
    """This module is a plugin: ``host.register(metrichub_core.testing.sample, "sample")``, or an entry point."""
    return [SampleSource]
