"""The ``shipit`` source: deployments and incidents from the (fictional) Shipit CD API.

The API, as the tests' fake upstream serves it::

    GET {base_url}/deploys?per_page=100[&updated_since=ISO]     -> [{"id", "app", "env", "state", ...}]
    GET {base_url}/incidents?per_page=100[&updated_since=ISO]   -> [{"id", "app", "opened_at", ...}]
    pages linked by `Link: <...>; rel="next"`; auth `Authorization: Bearer <token>`
    webhooks: POST with `X-Shipit-Signature: sha256=<hex HMAC of the body>`

Everything about resilience (retries, Retry-After, rate limits, the circuit
breaker, ETags) comes from ``ctx.http``: the plugin writes no retry loop.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from pydantic import Field, SecretStr

from metrichub_core import Deployment, Event, Incident, Source, SourceConfig
from metrichub_core.resilience import paginate
from metrichub_core.sources import WebhookRejected

__all__ = ["SIGNATURE_HEADER", "ShipitConfig", "ShipitSource"]

SIGNATURE_HEADER = "X-Shipit-Signature"
_STATES = {"succeeded": "success", "failed": "failure", "cancelled": "cancelled", "running": "running"}


class ShipitConfig(SourceConfig):
    """``[sources.<id>]`` with ``kind = "shipit"``."""

    base_url: str = "https://shipit.example.com/api/v1"
    token: SecretStr
    page_size: int = Field(100, ge=1, le=100)
    webhook_secret: SecretStr | None = None


class ShipitSource(Source):
    """Deployments and incidents of every app Shipit deploys."""

    kind = "shipit"
    Config = ShipitConfig

    @property
    def settings(self) -> ShipitConfig:
        assert isinstance(self.config, ShipitConfig)
        return self.config

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.token.get_secret_value()}", "Accept": "application/json"}

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        params: dict[str, Any] = {"per_page": self.settings.page_size}
        if since is not None:
            params["updated_since"] = since.isoformat()
        async for item in paginate(self.ctx.http, "deploys", params=params, headers=self._headers()):
            yield self._deployment(item)
        async for item in paginate(self.ctx.http, "incidents", params=params, headers=self._headers()):
            yield self._incident(item)

    async def check(self) -> None:
        response = await self.ctx.http.get("deploys", params={"per_page": 1}, headers=self._headers())
        response.raise_for_status()

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.settings.webhook_secret
        if secret is None:
            raise WebhookRejected("webhook_secret is not configured")
        sent = {name.lower(): value for name, value in headers.items()}.get(SIGNATURE_HEADER.lower(), "")
        expected = "sha256=" + hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sent, expected):
            raise WebhookRejected("signature mismatch")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[Event]:
        payload = json.loads(body)
        if payload.get("type") == "deploy":
            return [self._deployment(payload["deploy"])]
        if payload.get("type") == "incident":
            return [self._incident(payload["incident"])]
        return []  # deliveries we do not use are accepted and ignored

    def _deployment(self, item: Mapping[str, Any]) -> Deployment:
        return Deployment(
            id=str(item["id"]),
            source=self.id,
            service=item["app"],
            environment=item.get("env", "production"),
            status=_STATES.get(item["state"], "running"),
            started_at=item["started_at"],
            finished_at=item.get("finished_at"),
            commit_sha=item.get("sha"),
            change_ids=list(item.get("commits", [])),
            url=item.get("url"),
            updated_at=item.get("updated_at"),  # so that a replayed older delivery never replaces a newer state
        )

    def _incident(self, item: Mapping[str, Any]) -> Incident:
        return Incident(
            id=str(item["id"]),
            source=self.id,
            service=item["app"],
            started_at=item["opened_at"],
            resolved_at=item.get("resolved_at"),
            severity=item.get("severity"),
            caused_by=item.get("deploy_id"),
            title=item.get("title"),
            updated_at=item.get("updated_at"),
        )
