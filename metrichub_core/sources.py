"""The ``Source`` contract that collector plugins implement."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, ClassVar

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from metrichub_core.errors import WebhookNotSupported, WebhookRejected
from metrichub_core.models import Event
from metrichub_core.resilience.policy import Policy

__all__ = ["HttpBaseUrl", "Source", "SourceConfig", "SourceContext", "WebhookNotSupported", "WebhookRejected"]


def _http_base_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


HttpBaseUrl = Annotated[str, AfterValidator(_http_base_url)]
"""A ``Config``'s ``base_url`` for an HTTP API: ``http(s)://…``, without a trailing slash."""


class SourceConfig(BaseModel):
    """The convenient base of a source's ``Config``: ``base_url`` and the keys the host reads itself.

    Plugins subclass it, keep ``base_url`` (defaulting to the public service where
    there is one) and declare secrets as ``pydantic.SecretStr``. It is not required: the
    host takes ``kind``, ``policy`` and ``schedule_minutes`` out of the table itself and
    hands any pydantic ``Config`` only the keys it declares of those three.
    """

    model_config = ConfigDict(extra="forbid")

    kind: str
    base_url: str
    policy: Policy = Field(default_factory=Policy)
    schedule_minutes: float | None = Field(None, gt=0, description="Collect in the background every N minutes.")


@dataclass
class SourceContext:
    """What the host hands a source: policy-wrapped HTTP, persisted state, a logger.

    ``state`` is the source's own cursor (last ids, page markers...): loaded before a
    run and saved by the host only when the run succeeds. ``parse_webhook`` gets a
    read-only copy of the saved one. (ETags are the host's job: see ``CACHE_EXTENSION``
    in ``metrichub_core.resilience``.)
    """

    http: httpx.AsyncClient
    logger: logging.Logger
    state: dict[str, Any] = field(default_factory=dict)


class Source(ABC):
    """A kind of upstream that yields deployments, changes and incidents."""

    kind: ClassVar[str]
    Config: ClassVar[type[BaseModel]]

    def __init__(self, id: str, config: BaseModel, ctx: SourceContext) -> None:
        self.id = id
        self.config = config
        self.ctx = ctx

    @abstractmethod
    def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        """Yield events changed since ``since`` (everything when ``None``).

        Implement as an ``async def`` generator. ``since`` is the start of this
        source's last successful collection.
        """

    async def check(self) -> None:  # noqa: B027 - optional hook with a no-op default
        """Raise when the source is unusable (bad credentials, unknown project...)."""

    @classmethod
    def accepts_webhooks(cls) -> bool:
        return cls.parse_webhook is not Source.parse_webhook

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``WebhookRejected`` unless the delivery is authentic."""
        raise WebhookNotSupported(self.kind)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[Event]:
        """Turn a verified delivery into events; unrelated deliveries give ``[]``.

        ``self.ctx.state`` is a copy of what the last successful collection saved; changes
        to it are not saved.
        """
        raise WebhookNotSupported(self.kind)
