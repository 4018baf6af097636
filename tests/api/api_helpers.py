"""Helpers for API tests: a test source with signed webhooks, hub and event builders, envelope assertions."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from metrichub_core import Deployment, Event, Incident, MetricHub, Storage, hookimpl
from metrichub_core.config import ApiSettings, Settings
from metrichub_core.plugins import PluginHost
from metrichub_core.sources import Source, SourceConfig, WebhookRejected

SOURCE_TOKEN = "src-token-3f9a1c77e2"
WEBHOOK_SECRET = "whsec-9b2e4d1a60"
API_TOKEN = "api-token-c4d8e1f207"
SECRETS = (SOURCE_TOKEN, WEBHOOK_SECRET, API_TOKEN)

NOW = datetime(2026, 3, 16, tzinfo=UTC)


class HookedConfig(SourceConfig):
    kind: str = "hooked"
    base_url: str = "http://127.0.0.1:9"
    token: SecretStr = SecretStr("")
    webhook_secret: SecretStr = SecretStr("")
    collect_delay: float = Field(0.0, ge=0)
    fail: bool = False


class HookedSource(Source):
    """Yields two deployments; accepts HMAC-signed webhooks carrying deployments."""

    kind: ClassVar[str] = "hooked"
    Config: ClassVar[type[SourceConfig]] = HookedConfig

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        config = self.config
        assert isinstance(config, HookedConfig)
        for number in range(2):
            if config.collect_delay:
                await asyncio.sleep(config.collect_delay)
            if config.fail:
                raise RuntimeError(f"upstream refused token {config.token.get_secret_value()}")
            yield deployment(f"collected-{number}", source=self.id)
            self.ctx.state["last_deployment"] = f"collected-{number}"

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        config = self.config
        assert isinstance(config, HookedConfig)
        if not hmac.compare_digest(
            headers.get("x-signature", ""), sign(body, config.webhook_secret.get_secret_value())
        ):
            raise WebhookRejected("signature mismatch")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[Event]:
        payload = json.loads(body)
        self.ctx.state["parsed"] = True  # webhooks see the stored state; nothing they change is saved
        if payload.get("event") == "incident":  # "caused by our last collected deployment", from the state
            return [Incident.model_validate({**payload["incident"], "source": self.id, "caused_by": self._last()})]
        if payload.get("event") != "deployment":
            return []
        try:
            return [Deployment.model_validate({**payload["deployment"], "source": self.id})]
        except KeyError as exc:
            raise WebhookRejected(f"missing {exc}") from None

    def _last(self) -> str | None:
        last = self.ctx.state.get("last_deployment")
        return last if isinstance(last, str) else None


class _TestPlugin:
    @hookimpl
    def register_sources(self) -> list[type[Source]]:
        return [HookedSource]


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deployment(id: str, *, source: str = "api", service: str = "checkout", **fields: Any) -> Deployment:
    values: dict[str, Any] = {
        "id": id,
        "source": source,
        "service": service,
        "status": "success",
        "started_at": NOW - timedelta(days=1, minutes=10),
        "finished_at": NOW - timedelta(days=1),
    }
    values.update(fields)
    return Deployment.model_validate(values)


def default_sources() -> dict[str, dict[str, Any]]:
    return {
        "hooks": {"kind": "hooked", "token": SOURCE_TOKEN, "webhook_secret": WEBHOOK_SECRET},
        "demo": {"kind": "demo", "days": 30},
    }


def make_hub(
    *,
    sources: dict[str, dict[str, Any]] | None = None,
    tokens: list[str] | None = None,
    storage: str | Storage = "memory://",
    **api: Any,
) -> MetricHub:
    plugins = PluginHost.load(entry_point_group=None)
    plugins.register(_TestPlugin(), "tests.hooked")
    settings = Settings(
        storage="memory://",
        api=ApiSettings(tokens=[SecretStr(token) for token in tokens or []], **api),
        sources=default_sources() if sources is None else sources,
    )
    return MetricHub(storage, settings=settings, plugins=plugins)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details", "trace_id"}
    assert error["code"] == code
    assert error["trace_id"] == response.headers["x-request-id"]
    assert isinstance(error["message"], str) and error["message"]
    return error  # type: ignore[no-any-return]


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"data", "trace_id"}
    assert body["trace_id"] == response.headers["x-request-id"]
    return body["data"]
