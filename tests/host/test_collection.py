"""Collection: concurrent, isolated, batched as it goes, cursors advanced only on success."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from metrichub_core import Deployment, Incident, MetricHub, hookimpl
from metrichub_core.collection import Progress
from metrichub_core.config import Settings
from metrichub_core.models import Event
from metrichub_core.plugins import PluginHost
from metrichub_core.registry import UnknownSource
from metrichub_core.sources import Source, SourceConfig
from metrichub_core.storage.base import EventQuery
from metrichub_core.testing.sample import sample_items
from metrichub_core.testing.upstream import FakeUpstream, Reply, refused_url

FAST_POLICY = {"retries": 2, "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.02, "timeout_seconds": 2,
               "rate_limit_per_second": 500, "breaker_fail_max": 3}  # fmt: skip


def table(base_url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "sample", "base_url": base_url, "policy": FAST_POLICY, **extra}


def make_hub(host: PluginHost, sources: dict[str, dict[str, Any]]) -> MetricHub:
    return MetricHub("memory://", settings=Settings(sources=sources), plugins=host)


async def stored_ids(hub: MetricHub, source: str) -> list[str]:
    page = await hub.storage.list_events(EventQuery(kind="deployment", source=source, limit=10_000))
    return [event.id for event in page.items]


async def test_one_failing_source_never_stops_the_others(sample_host: PluginHost) -> None:
    with FakeUpstream() as upstream:
        upstream.pages("/deployments", sample_items(120), page_size=50)
        upstream.script("/dead", Reply(503))
        patient = {**FAST_POLICY, "breaker_fail_max": 9}
        hub = make_hub(
            sample_host,
            {
                "good": table(upstream.url),
                "refused": table(refused_url(), policy=patient),
                "dead": table(upstream.url, path="/dead"),
            },
        )
        async with hub:
            results = {result.id: result for result in await hub.collect()}
            assert results["good"].ok and results["good"].events == 120
            assert not results["refused"].ok
            assert "ConnectError after 3 attempt(s)" in str(results["refused"].error)
            assert not results["dead"].ok
            assert "/dead: HTTP 503; source 'dead': circuit breaker opened after 3" in str(results["dead"].error)
            assert sorted(await stored_ids(hub, "good")) == sorted(f"d{n}" for n in range(120))
            assert await hub.storage.get_state("refused") is None  # no cursor for a failed run
            health = await hub.source_health("dead")
            assert health.breaker["state"] == "open" and not health.ok
            assert health.last_run is not None and health.last_run["ok"] is False
            # the dead upstream receives nothing more while the breaker is open
            before = len(upstream.requests_for("/dead"))
            assert not (await hub.collect(["dead"]))[0].ok
            assert len(upstream.requests_for("/dead")) == before


async def test_cursor_is_the_start_of_the_last_successful_run(sample_host: PluginHost) -> None:
    with FakeUpstream() as upstream:
        upstream.pages("/deployments", sample_items(30), page_size=10, since_field="updated_at")
        async with make_hub(sample_host, {"s": table(upstream.url)}) as hub:
            first = (await hub.collect())[0]
            assert first.ok and first.events == 30
            assert "since" not in upstream.requests_for("/deployments")[0].query
            state = await hub.storage.get_state("s")
            assert state is not None
            assert state["cursor"] == first.started_at.isoformat()
            assert state["source"] == {"runs": 1}  # ctx.state is persisted with the cursor

            # new upstream data after the first run; the second run asks only for it
            newer = sample_items(3, start=datetime.now(UTC), prefix="n")
            upstream.set_items("/deployments", sample_items(30) + newer)
            requests_before = len(upstream.requests)
            second = (await hub.collect())[0]
            assert second.ok and second.events == 3
            assert upstream.requests[requests_before].query["since"] == first.started_at.isoformat()
            assert (await hub.storage.get_state("s") or {})["source"] == {"runs": 2}
            assert len(await stored_ids(hub, "s")) == 33

            # --full ignores the cursor
            full = (await hub.collect(full=True))[0]
            assert full.ok and full.events == 33 and full.full
            assert len(await stored_ids(hub, "s")) == 33


async def test_a_failed_run_keeps_the_previous_cursor(sample_host: PluginHost) -> None:
    with FakeUpstream() as upstream:
        upstream.pages("/deployments", sample_items(10), page_size=10)
        async with make_hub(sample_host, {"s": table(upstream.url)}) as hub:
            assert (await hub.collect())[0].ok
            saved = await hub.storage.get_state("s")
            upstream.script("/deployments", Reply(500))
            assert not (await hub.collect())[0].ok
            assert await hub.storage.get_state("s") == saved


class Exploding(Source):
    """Yields ``count`` events, then raises (mentioning its token, which must be redacted)."""

    kind = "exploding"

    class Config(SourceConfig):
        base_url: str = "http://unused"
        count: int = 10
        token: SecretStr

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        for index in range(self.config.count):  # type: ignore[attr-defined]
            yield Deployment(id=str(index), source="wrong-name", service="svc", status="success",
                             started_at=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
        raise RuntimeError(f"upstream rejected token {self.config.token.get_secret_value()}")  # type: ignore[attr-defined]


class ExplodingPlugin:
    @hookimpl
    def register_sources(self) -> list[type[Source]]:
        return [Exploding]


async def test_events_are_stored_in_batches_as_they_come_and_errors_are_redacted(sample_host: PluginHost) -> None:
    sample_host.register(ExplodingPlugin(), "exploding")
    progress: list[Progress] = []
    hub = make_hub(sample_host, {"boom": {"kind": "exploding", "token": "tok-123-secret"}})
    async with hub:
        from metrichub_core.collection import collect_sources

        results = await collect_sources(hub.sources, hub.storage, batch_size=4, progress=progress.append)
        result = results[0]
        assert not result.ok
        assert result.error == "RuntimeError: upstream rejected token **********"
        assert result.events == 8  # two full batches were stored before the failure
        assert sorted(await stored_ids(hub, "boom")) == [str(n) for n in range(8)]  # re-keyed to the source id
        assert [(p.phase, p.events) for p in progress] == [("started", 0), ("events", 4), ("events", 8),
                                                           ("finished", 8)]  # fmt: skip
        assert await hub.storage.get_state("boom") is None


@pytest.fixture
def observed_batches(sample_host: PluginHost) -> list[tuple[str | None, list[str]]]:
    """What an ``on_events_ingested`` observer registered on ``sample_host`` receives."""
    batches: list[tuple[str | None, list[str]]] = []

    class Observer:
        @hookimpl
        def on_events_ingested(self, source_id: str | None, events: list[Event]) -> None:
            batches.append((source_id, [event.id for event in events]))

    sample_host.register(Observer(), "observer")
    return batches


async def test_collected_batches_reach_on_events_ingested(
    sample_host: PluginHost, observed_batches: list[tuple[str | None, list[str]]]
) -> None:
    with FakeUpstream() as upstream:
        upstream.pages("/deployments", sample_items(5), page_size=2)
        async with make_hub(sample_host, {"s": table(upstream.url)}) as hub:
            assert (await hub.collect())[0].ok
    assert observed_batches == [("s", ["d0", "d1", "d2", "d3", "d4"])]


async def test_directly_ingested_events_reach_on_events_ingested(
    sample_host: PluginHost, observed_batches: list[tuple[str | None, list[str]]]
) -> None:
    async with make_hub(sample_host, {}) as hub:
        await hub.ingest([Incident(id="i1", source="pd", service="api", started_at=datetime(2026, 3, 2, tzinfo=UTC))])
    assert observed_batches == [(None, ["i1"])]


def test_config_errors_name_the_key_and_list_installed_kinds(sample_host: PluginHost) -> None:
    hub = make_hub(sample_host, {
        "a": {"kind": "sample"},
        "b": {"kind": "nope", "base_url": "http://x"},
        "c": {"kind": "sample", "base_url": "http://x", "page_size": 0, "colour": "red"},
        "d": {"kind": "sample", "base_url": "http://x", "policy": {"retries": -1}},
        "e": {"base_url": "http://x"},
    })  # fmt: skip
    faults = hub.sources.faults()
    assert faults["a"] == "source 'a' (plugin 'sample'): config: sources.a.base_url: Field required"
    assert (
        faults["b"] == "source 'b': config: sources.b.kind: unknown source kind 'nope' (installed kinds: demo, sample)"
    )
    assert "config: sources.c.page_size: Input should be greater than or equal to 1" in faults["c"]
    assert "config: sources.c.colour: Extra inputs are not permitted" in faults["c"]
    # The host reads ``policy`` itself; a plugin whose Config also declares it does not repeat the line.
    assert faults["d"].count("config: sources.d.policy.retries: Input should be greater than or equal to 0") == 1
    assert faults["e"] == "source 'e': config: sources.e.kind: required (installed kinds: demo, sample)"
    assert all("\n" not in fault for fault in faults.values())


def test_secrets_are_masked_in_describe(sample_host: PluginHost) -> None:
    hub = make_hub(sample_host, {"s": table("http://x", token="very-secret")})
    described = hub.sources["s"].describe()
    assert described["config"]["token"] == "**********"
    assert "very-secret" not in repr(described) and "very-secret" not in repr(hub.sources["s"].config)


async def test_unknown_source_id_is_refused_before_anything_runs(sample_host: PluginHost) -> None:
    async with make_hub(sample_host, {"s": table("http://x")}) as hub:
        with pytest.raises(UnknownSource, match=r"no source 'x' is configured \(configured: s\)"):
            await hub.collect(["x"])
        with pytest.raises(UnknownSource):
            hub.source("x")


async def test_webhook_lookup_returns_a_ready_source(sample_host: PluginHost) -> None:
    import json

    from metrichub_core.sources import WebhookRejected
    from metrichub_core.testing.sample import SIGNATURE_HEADER, sign

    hub = make_hub(sample_host, {"s": table("http://x", webhook_secret="whsec")})
    source = hub.source("s")
    body = json.dumps(sample_items(1)[0]).encode()
    source.verify_webhook({SIGNATURE_HEADER: sign("whsec", body)}, body)
    assert [event.id for event in source.parse_webhook({}, body)] == ["d0"]
    with pytest.raises(WebhookRejected):
        source.verify_webhook({SIGNATURE_HEADER: sign("other", body)}, body)


async def test_source_with_state_sees_a_copy_of_the_saved_state(sample_host: PluginHost) -> None:
    async with make_hub(sample_host, {"s": table("http://x")}) as hub:
        assert (await hub.source_with_state("s")).ctx.state == {}  # never collected
        saved = {"cursor": "2026-03-10T00:00:00+00:00", "source": {"shipped": {"abc1234": "42"}}, "http_cache": {}}
        await hub.storage.set_state("s", saved)
        source = await hub.source_with_state("s")
        assert source.ctx.state == {"shipped": {"abc1234": "42"}}
        assert hub.source("s").ctx.state == {}
        source.ctx.state["shipped"]["abc1234"] = "changed"
        assert await hub.storage.get_state("s") == saved  # read-only in effect: never written back
        shared = source.ctx.http
        assert (await hub.source_with_state("s", http=shared)).ctx.http is shared
        with pytest.raises(UnknownSource):
            await hub.source_with_state("x")


async def test_collector_counters_are_plain_data(sample_host: PluginHost) -> None:
    with FakeUpstream() as upstream:
        upstream.pages("/deployments", sample_items(4), page_size=2)
        async with make_hub(sample_host, {"s": table(upstream.url)}) as hub:
            await hub.collect()
            snapshot = hub.sources.snapshot()
    assert snapshot["s"]["kind"] == "sample"
    assert snapshot["s"]["stats"]["requests"] == 2
    assert snapshot["s"]["stats"]["responses"] == {"200": 2}
    assert snapshot["s"]["breaker"]["state"] == "closed"


async def test_etags_persist_between_runs_so_unchanged_pages_cost_nothing(sample_host: PluginHost) -> None:
    with FakeUpstream() as upstream:
        upstream.pages("/deployments", sample_items(6), page_size=3)
        async with make_hub(sample_host, {"s": table(upstream.url)}) as hub:
            assert (await hub.collect(full=True))[0].events == 6
            second = (await hub.collect(full=True))[0]
            stats = hub.sources.snapshot()["s"]["stats"]
    assert second.ok and second.events == 6
    assert [bool(r.headers.get("if-none-match")) for r in upstream.requests] == [False, False, True, True]
    assert stats["cache_hits"] == 2 and stats["responses"] == {"200": 2, "304": 2}


class Trickle(Source):
    """Yields one event every 0.15 s: a slow upstream."""

    kind = "trickle"

    class Config(SourceConfig):
        base_url: str = "http://unused"

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        import asyncio

        for index in range(4):
            await asyncio.sleep(0.15)
            yield Deployment(id=str(index), source=self.id, service="svc", status="success",
                             started_at=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip


async def test_a_slow_source_is_stored_as_it_goes_not_at_the_end(sample_host: PluginHost) -> None:
    from metrichub_core.collection import collect_sources

    class Plugin:
        @hookimpl
        def register_sources(self) -> list[type[Source]]:
            return [Trickle]

    sample_host.register(Plugin(), "trickle")
    progress: list[Progress] = []
    async with make_hub(sample_host, {"slow": {"kind": "trickle"}}) as hub:
        (result,) = await collect_sources(hub.sources, hub.storage, progress=progress.append, flush_seconds=0.2)
    assert result.ok and result.events == 4
    stored_as_it_went = [p.events for p in progress if p.phase == "events"]
    assert len(stored_as_it_went) >= 2 and stored_as_it_went[-1] == 4
