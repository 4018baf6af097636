"""The source contract: one test suite every source plugin runs against its own fake upstream.

A plugin's tests subclass ``SourceContract``, name the class under test, provide an
``upstream`` fixture (a running ``FakeUpstream`` scripted like the real API) and
the config table pointing at it::

    class TestMySourceContract(SourceContract):
        source_class = MySource

        @pytest.fixture
        def upstream(self):
            with FakeUpstream() as upstream:
                upstream.pages("/api/deployments", ITEMS, since_field="updated_at")
                yield upstream

        def source_table(self, base_url: str) -> dict:
            return {"kind": "mine", "base_url": base_url, "token": "t0ken"}

        def webhook_delivery(self, table):            # optional: (headers, body) of a valid delivery
            ...

The suite checks the config schema (a pydantic model with ``base_url``, unknown keys
rejected, secrets never shown), that collection yields valid events keyed by the
source id, that a re-run gets the previous run's start as ``since`` and neither
duplicates nor loses anything, that an unreachable upstream fails the run cleanly,
and that webhook verification rejects tampering.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from metrichub_core.collection import SourceResult
from metrichub_core.config import Settings
from metrichub_core.hookspecs import hookimpl
from metrichub_core.hub import MetricHub
from metrichub_core.models import Change, Deployment, Event, EventKind, Incident
from metrichub_core.plugins import PluginHost
from metrichub_core.registry import config_of
from metrichub_core.sources import Source, WebhookNotSupported, WebhookRejected
from metrichub_core.storage.base import EventQuery
from metrichub_core.testing.upstream import FakeUpstream, refused_url

__all__ = ["SourceContract"]

SOURCE_ID = "contract"


class SourceContract:
    """What every ``Source`` must do; subclass it in a plugin's tests."""

    source_class: ClassVar[type[Source]]
    expected_keys: ClassVar[set[tuple[str, str]] | None] = None
    """``(kind, id)`` of every event the fake upstream should produce; ``None`` skips the exact check."""

    # -- what the plugin provides -------------------------------------------

    def source_table(self, base_url: str) -> dict[str, Any]:
        """The ``[sources.<id>]`` table (with ``kind``) pointing at ``base_url``."""
        raise NotImplementedError("SourceContract subclasses define source_table(base_url)")

    def webhook_delivery(self, table: Mapping[str, Any]) -> tuple[dict[str, str], bytes] | None:
        """Headers and body of one authentic delivery, or ``None`` if the source has no webhooks."""
        return None

    # -- helpers ---------------------------------------------------------------

    def _host(self, source_class: type[Source]) -> PluginHost:
        class Plugin:
            @hookimpl
            def register_sources(self) -> list[type[Source]]:
                return [source_class]

        host = PluginHost.load(entry_point_group=None, builtins=("metrichub_core.builtins.storage",))
        info = host.register(Plugin(), "contract-plugin")
        assert info.status == "active", info.error
        return host

    async def _stored(self, hub: MetricHub) -> list[tuple[str, str]]:
        keys: list[tuple[str, str]] = []
        kinds: tuple[EventKind, ...] = ("deployment", "change", "incident")
        for kind in kinds:
            cursor = None
            while True:
                query = EventQuery(kind=kind, source=SOURCE_ID, limit=1000, cursor=cursor)
                page = await hub.storage.list_events(query)
                keys += [(kind, event.id) for event in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
        return keys

    # -- the contract ------------------------------------------------------------

    def test_config_schema(self, upstream: FakeUpstream) -> None:
        source_class = self.source_class
        assert isinstance(source_class.kind, str) and source_class.kind, "kind must be a non-empty string"
        assert issubclass(source_class.Config, BaseModel), "Config must be a pydantic model"
        assert "base_url" in source_class.Config.model_fields, "every source config has base_url"
        table = self.source_table(upstream.url)
        assert table.get("kind") == source_class.kind
        config = config_of(source_class.Config, table)
        assert str(getattr(config, "base_url", "")).startswith(upstream.url), "base_url points at the fake upstream"
        with pytest.raises(ValidationError) as caught:
            config_of(source_class.Config, {**table, "no_such_key_xyz": 1})
        assert any(error["loc"] == ("no_such_key_xyz",) for error in caught.value.errors()), "unknown keys rejected"
        shown = repr(config) + str(config) + config.model_dump_json()
        for name in source_class.Config.model_fields:
            value = getattr(config, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                assert value.get_secret_value() not in shown, f"secret {name} is shown"

    @pytest.mark.asyncio
    async def test_collects_valid_events(self, upstream: FakeUpstream) -> None:
        hub = MetricHub("memory://", settings=Settings(sources={SOURCE_ID: self.source_table(upstream.url)}),
                        plugins=self._host(self.source_class))  # fmt: skip
        async with hub:
            (result,) = await hub.collect()
            assert result.ok, result.error
            assert result.events > 0, "the fake upstream should produce events"
            keys = await self._stored(hub)
        assert len(keys) == len(set(keys))
        if self.expected_keys is not None:
            assert set(keys) == self.expected_keys

    @pytest.mark.asyncio
    async def test_events_are_valid_and_keyed_by_source_id(self, upstream: FakeUpstream) -> None:
        table = self.source_table(upstream.url)
        source_class = self.source_class
        host = self._host(source_class)
        hub = MetricHub("memory://", settings=Settings(sources={SOURCE_ID: table}), plugins=host)
        async with hub:
            instance = hub.sources[SOURCE_ID].create()
            try:
                events = [event async for event in instance.collect(None)]
            finally:
                await instance.ctx.http.aclose()
        assert table["kind"] == source_class.kind
        assert events, "the fake upstream should produce events"
        for event in events:
            assert isinstance(event, Deployment | Change | Incident), f"{event!r} is not an event"
            assert event.source == SOURCE_ID, "events carry the configured source id (self.id)"

    @pytest.mark.asyncio
    async def test_incremental_rerun(self, upstream: FakeUpstream) -> None:
        seen_since: list[datetime | None] = []
        base = self.source_class

        class Recording(base):  # type: ignore[valid-type,misc]
            def collect(self, since: datetime | None) -> AsyncIterator[Event]:
                seen_since.append(since)
                events: AsyncIterator[Event] = super().collect(since)
                return events

        Recording.kind = base.kind
        table = self.source_table(upstream.url)
        hub = MetricHub("memory://", settings=Settings(sources={SOURCE_ID: table}), plugins=self._host(Recording))
        async with hub:
            first: SourceResult = (await hub.collect())[0]
            assert first.ok, first.error
            after_first = sorted(await self._stored(hub))
            second = (await hub.collect())[0]
            assert second.ok, second.error
            after_second = sorted(await self._stored(hub))
        assert seen_since == [None, first.started_at], "a re-run gets the previous run's start as since"
        assert after_second == after_first, "a re-run neither duplicates nor loses events"

    @pytest.mark.asyncio
    async def test_unreachable_upstream_fails_cleanly(self, upstream: FakeUpstream) -> None:
        table = self.source_table(refused_url())
        table["policy"] = {**table.get("policy", {}), "retries": 1, "backoff_initial_seconds": 0.01}
        hub = MetricHub(
            "memory://", settings=Settings(sources={SOURCE_ID: table}), plugins=self._host(self.source_class)
        )
        async with hub:
            (result,) = await hub.collect()
            assert not result.ok, "a source must let the host's HTTP errors propagate, not swallow them"
            assert await hub.storage.get_state(SOURCE_ID) is None, "a failed run saves no cursor"
        for value in _secret_values(table):
            assert value not in (result.error or ""), "the error shows a secret"

    def test_webhook_verification(self, upstream: FakeUpstream) -> None:
        table = self.source_table(upstream.url)
        delivery = self.webhook_delivery(table)
        hub = MetricHub(
            "memory://", settings=Settings(sources={SOURCE_ID: table}), plugins=self._host(self.source_class)
        )
        source = hub.source(SOURCE_ID)
        if delivery is None:
            assert not self.source_class.accepts_webhooks(), (
                "the source parses webhooks: define webhook_delivery() to test their verification"
            )
            # A source without webhooks keeps the defaults: the API answers 404 for it.
            with pytest.raises(WebhookNotSupported):
                source.verify_webhook({}, b"{}")
            return
        headers, body = delivery
        source.verify_webhook(headers, body)
        events = source.parse_webhook(headers, body)
        for event in events:
            assert isinstance(event, Deployment | Change | Incident)
            assert event.source == SOURCE_ID
        with pytest.raises(WebhookRejected):
            source.verify_webhook(headers, body + b" ")
        with pytest.raises(WebhookRejected):
            source.verify_webhook({}, body)


def _secret_values(table: Mapping[str, Any]) -> list[str]:
    """Values of keys that look like secrets (token, password, secret, key)."""
    found: list[str] = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            found += _secret_values(value)
        elif isinstance(value, str) and any(word in key.lower() for word in ("token", "password", "secret", "key")):
            found.append(value)
    return [value for value in found if len(value) >= 4]
