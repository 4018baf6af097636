"""What every route reaches through ``request.app.state.metrichub``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from starlette.requests import HTTPConnection

from metrichub_core.api._hub import HubAccess
from metrichub_core.api.auth import BearerAuth
from metrichub_core.api.cache import DoraCache
from metrichub_core.api.prometheus import ApiMetrics
from metrichub_core.config import ApiSettings
from metrichub_core.hub import MetricHub
from metrichub_core.scheduling import CollectionRunner

if TYPE_CHECKING:
    from metrichub_core.api.operations import Operation
    from metrichub_core.storage.base import WebhookDeliveries

__all__ = ["ApiContext", "context"]


@dataclass
class ApiContext:
    hub: MetricHub
    settings: ApiSettings
    access: HubAccess
    auth: BearerAuth
    metrics: ApiMetrics
    cache: DoraCache
    runner: CollectionRunner
    deliveries: WebhookDeliveries
    operations: list[Operation] = field(default_factory=list)
    openapi_document: bytes = b"{}"
    scrape_task: asyncio.Task[None] | None = None
    writes_task: asyncio.Task[None] | None = None
    scopes_memo: tuple[int, float, list[tuple[str, str]]] | None = None

    def data_changed(self) -> None:
        """Stored events changed: cached DORA results are stale."""
        self.cache.invalidate()


def context(conn: HTTPConnection) -> ApiContext:
    return cast(ApiContext, conn.app.state.metrichub)
