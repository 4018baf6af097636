"""The storage contract: one test suite that every backend must pass.

A backend's tests subclass ``StorageContract`` and provide a ``storage_url``
fixture (a fresh, empty location per test)::

    class TestMyBackend(PersistentStorageContract):
        @pytest.fixture
        def storage_url(self, tmp_path) -> str:
            return f"mybackend://.../{tmp_path.name}"

``PersistentStorageContract`` adds the tests that reopen the same URL
(migrations, durability); in-process backends subclass ``StorageContract``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from metrichub_core.dora import DoraScope, FactsRequest, Window
from metrichub_core.models import Change, Deployment, Event, Incident
from metrichub_core.plugins import PluginHost
from metrichub_core.storage.base import DeliveryRetention, EventQuery, Storage, StorageError, WebhookDeliveries
from metrichub_core.storage.memory import MemoryStorage

__all__ = ["PersistentStorageContract", "StorageContract", "sample_events"]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_KEEP = DeliveryRetention(seconds=86_400, max_ids=1_000)

OpenStorage = Callable[[], Awaitable[Storage]]


def sample_events(count: int, *, service: str = "api", source: str = "contract") -> list[Event]:
    """``count`` deployments, each with one change, and an incident every tenth deployment."""
    events: list[Event] = []
    for n in range(count):
        finished = T0 + timedelta(minutes=10 * n)
        events.append(Change(id=f"c{n}", source=source, service=service, committed_at=finished - timedelta(hours=2)))
        events.append(
            Deployment(
                id=f"d{n}", source=source, service=service, status="success",
                started_at=finished - timedelta(minutes=5), finished_at=finished, change_ids=[f"c{n}"],
                labels={"team": "core" if n % 2 else "edge"},
            )
        )  # fmt: skip
        if n % 10 == 0:
            events.append(
                Incident(id=f"i{n}", source=source, service=service, started_at=finished + timedelta(minutes=1))
            )
    return events


class StorageContract:
    """Semantics shared by every ``Storage`` backend."""

    @pytest.fixture
    async def open_storage(self, storage_url: str) -> AsyncIterator[OpenStorage]:
        """Opens the URL under test; every storage opened this way is closed afterwards."""
        host = PluginHost.load()
        opened: list[Storage] = []

        async def open_() -> Storage:
            storage = host.create_storage(storage_url)
            await storage.open()
            opened.append(storage)
            return storage

        yield open_
        for storage in opened:
            await storage.close()

    @pytest.fixture
    async def storage(self, open_storage: OpenStorage) -> Storage:
        return await open_storage()

    async def test_upsert_is_idempotent(self, storage: Storage) -> None:
        events = sample_events(5)
        await storage.upsert(events)
        await storage.upsert(events)
        assert len(await _all(storage, "deployment")) == 5
        assert len(await _all(storage, "change")) == 5
        assert len(await _all(storage, "incident")) == 1

    async def test_upsert_updates_in_place(self, storage: Storage) -> None:
        incident = Incident(id="i1", source="pd", service="api", started_at=T0)
        await storage.upsert([incident])
        resolved = incident.model_copy(update={"resolved_at": T0 + timedelta(minutes=42), "severity": "sev1"})
        await storage.upsert([resolved])
        assert await storage.get("incident", "pd", "i1") == resolved
        assert len(await _all(storage, "incident")) == 1

    async def test_an_older_version_never_replaces_a_newer_one(self, storage: Storage) -> None:
        """A replayed "opened" after "closed" (each with the upstream's update time) leaves it closed."""
        opened = Incident(id="i1", source="gh", service="api", started_at=T0, updated_at=T0)
        closed = opened.model_copy(update={"resolved_at": T0 + timedelta(hours=1), "updated_at": T0 + _HOUR})
        await storage.upsert([opened])
        await storage.upsert([closed])
        assert await storage.upsert([opened]) == 1  # accepted, as a duplicate is: nothing to do
        assert await storage.get("incident", "gh", "i1") == closed
        # The same upstream time replaces (a re-read may carry more), a newer one too.
        retitled = closed.model_copy(update={"title": "enriched"})
        await storage.upsert([retitled])
        assert await storage.get("incident", "gh", "i1") == retitled
        # No upstream time: written, and the stored time is kept, so the replay still loses.
        manual = retitled.model_copy(update={"severity": "sev1", "updated_at": None})
        await storage.upsert([manual])
        assert await storage.get("incident", "gh", "i1") == manual.model_copy(update={"updated_at": T0 + _HOUR})
        await storage.upsert([opened])
        assert (await storage.get("incident", "gh", "i1")) == manual.model_copy(update={"updated_at": T0 + _HOUR})

    async def test_every_kind_keeps_its_newest_version_even_within_a_batch(self, storage: Storage) -> None:
        running = Deployment(
            id="d1", source="ci", service="api", status="running", started_at=T0, updated_at=T0, change_ids=["c1"]
        )
        done = running.model_copy(update={"status": "success", "finished_at": T0 + _HOUR, "updated_at": T0 + _HOUR})
        change = Change(id="c1", source="gh", service="api", committed_at=T0 - _HOUR, updated_at=T0)
        merged = change.model_copy(update={"merged_at": T0 + _HOUR, "updated_at": T0 + _HOUR})
        # Newest first in one batch, then the older ones again alone.
        await storage.upsert([done, merged, running, change])
        await storage.upsert([running, change])
        assert await storage.get("deployment", "ci", "d1") == done
        assert await storage.get("change", "gh", "c1") == merged
        # A stored version without a time is replaced by any version with one.
        untimed = Incident(id="i1", source="pd", service="api", started_at=T0, resolved_at=T0 + _HOUR)
        timed = untimed.model_copy(update={"resolved_at": None, "updated_at": T0})
        await storage.upsert([untimed])
        await storage.upsert([timed])
        assert await storage.get("incident", "pd", "i1") == timed

    async def test_a_refused_version_leaves_the_dora_facts_of_the_newest(self, storage: Storage) -> None:
        """Derived data is queued for a refused row too; it must be derived from the row kept."""
        final: list[Event] = [
            Change(id="c1", source="gh", service="api", committed_at=T0 - _HOUR, updated_at=T0),
            Deployment(
                id="d1", source="ci", service="api", status="success", started_at=T0, finished_at=T0 + _HOUR,
                change_ids=["c1"], updated_at=T0 + _HOUR,
            ),
            Incident(
                id="i1", source="gh", service="api", started_at=T0 + 2 * _HOUR, resolved_at=T0 + 3 * _HOUR,
                caused_by="d1", updated_at=T0 + 3 * _HOUR,
            ),
        ]  # fmt: skip
        older: list[Event] = [
            final[0].model_copy(update={"service": "web", "committed_at": T0 - 9 * _HOUR, "updated_at": T0 - _HOUR}),
            final[1].model_copy(update={"status": "failure", "service": "web", "updated_at": T0}),
            final[2].model_copy(update={"resolved_at": None, "caused_by": None, "updated_at": T0 + 2 * _HOUR}),
        ]
        request = FactsRequest(DoraScope(service="api"), [Window(T0 - _DAY, T0 + _DAY)])
        everywhere = FactsRequest(DoraScope(), [Window(T0 - _DAY, T0 + _DAY)])
        await storage.upsert(final)
        await storage.dora_facts(request)  # derived once, so that the refused rows must be derived again
        for event in older:
            await storage.upsert([event])
        await storage.upsert(older)
        reference = MemoryStorage()  # the reference rules over the newest versions alone
        await reference.upsert(final)
        for asked in (request, everywhere):
            assert await storage.dora_facts(asked) == await reference.dora_facts(asked)
        facts = (await storage.dora_facts(request))[0]
        assert (facts.deployments, facts.failed) == (1, 1)  # still the success d1, which i1 names

    async def test_same_id_from_two_sources_are_two_events(self, storage: Storage) -> None:
        first = Change(id="abc", source="github", service="api", committed_at=T0)
        second = first.model_copy(update={"source": "gitlab"})
        await storage.upsert([first, second])
        assert {change.source for change in await _all(storage, "change")} == {"github", "gitlab"}

    async def test_round_trip_keeps_every_field(self, storage: Storage) -> None:
        deployment = Deployment(
            id="d1", source="gh", service="api", environment="staging", status="failure",
            started_at=T0, finished_at=T0 + timedelta(microseconds=1_500_001), commit_sha="abc",
            change_ids=["c2", "c1"], url="https://example.test/d1", labels={"team": "core", "rework": "true"},
        )  # fmt: skip
        incident = Incident(
            id="i1", source="pd", service="api", started_at=T0, resolved_at=T0 + timedelta(hours=1), severity="sev2",
            caused_by="d1", deployment_related=False, title="Oops", url="https://example.test/i1",
        )  # fmt: skip
        change = Change(id="c1", source="gh", service="api", committed_at=T0, merged_at=T0 + timedelta(hours=1))
        await storage.upsert([deployment, incident, change])
        assert await storage.get("deployment", "gh", "d1") == deployment
        assert await storage.get("incident", "pd", "i1") == incident
        assert await storage.get("change", "gh", "c1") == change
        assert await storage.get("change", "gh", "missing") is None

    async def test_a_batch_with_an_unwritable_event_writes_nothing(self, storage: Storage) -> None:
        good = sample_events(20)
        # A lone surrogate cannot be encoded by any backend; validation is bypassed on purpose.
        bad = Change.model_construct(id="bad\ud800", source="contract", service="api", committed_at=T0)
        with pytest.raises(StorageError):
            await storage.upsert([*good, bad])
        for kind in ("deployment", "change", "incident"):
            assert await _all(storage, kind) == []
        assert await storage.upsert(good) == len(good)

    async def test_listing_pages_newest_first_without_gaps(self, storage: Storage) -> None:
        await storage.upsert(sample_events(25))
        seen: list[str] = []
        cursor = None
        while True:
            page = await storage.list_events(EventQuery(kind="deployment", limit=7, cursor=cursor))
            seen += [event.id for event in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == [f"d{n}" for n in range(24, -1, -1)]

    async def test_listing_filters(self, storage: Storage) -> None:
        await storage.upsert(sample_events(10) + sample_events(3, service="web", source="contract-web"))
        window = EventQuery(
            kind="deployment", service="api", since=T0 + timedelta(minutes=20), until=T0 + timedelta(minutes=50)
        )
        assert [event.id for event in (await storage.list_events(window)).items] == ["d4", "d3", "d2"]
        team = EventQuery(kind="deployment", service="api", labels={"team": "core"}, limit=100)
        assert [event.id for event in (await storage.list_events(team)).items] == ["d9", "d7", "d5", "d3", "d1"]
        staging = EventQuery(kind="deployment", environment="staging")
        assert (await storage.list_events(staging)).items == []
        assert [e.service for e in await _all(storage, "deployment", service="web")] == ["web"] * 3

    async def test_invalid_cursor_is_a_value_error(self, storage: Storage) -> None:
        with pytest.raises(ValueError, match="invalid cursor"):
            await storage.list_events(EventQuery(kind="change", cursor="not-a-cursor"))

    async def test_source_state_round_trip(self, storage: Storage) -> None:
        assert await storage.get_state("gh") is None
        state = {"cursor": "2026-03-02T09:00:00+00:00", "etags": {"/repos/a/b": 'W/"1"'}, "pages": [1, 2]}
        await storage.set_state("gh", state)
        assert await storage.get_state("gh") == state
        await storage.set_state("gh", {"cursor": None})
        assert await storage.get_state("gh") == {"cursor": None}
        assert await storage.get_state("other") is None

    async def test_health(self, storage: Storage) -> None:
        health = await storage.health()
        assert health.ok

    async def test_closed_storage_refuses_work(self, open_storage: OpenStorage) -> None:
        storage = await open_storage()
        await storage.close()
        with pytest.raises(StorageError):
            await storage.upsert(sample_events(1))

    async def test_readers_see_whole_batches_during_a_write(self, storage: Storage) -> None:
        await storage.upsert(sample_events(100, source="before"))
        big = sample_events(20_000, source="during")
        write = asyncio.ensure_future(storage.upsert(big))
        counts = set()
        while not write.done():
            counts.add(len(await _all(storage, "incident")))
            await asyncio.sleep(0)
        await write
        counts.add(len(await _all(storage, "incident")))
        # 10 incidents before the write, 2,010 after: a reader never sees a partial batch.
        assert counts <= {10, 2_010}
        assert 2_010 in counts

    async def test_a_delivery_id_is_claimed_once_per_source(self, storage: Storage) -> None:
        deliveries = _deliveries(storage)
        assert await deliveries.claim_delivery("gh", "d-1", at=T0, retention=_KEEP)
        assert not await deliveries.claim_delivery("gh", "d-1", at=T0 + _HOUR, retention=_KEEP)
        assert await deliveries.claim_delivery("gl", "d-1", at=T0, retention=_KEEP)  # another source's id
        # Concurrent claims of one id: exactly one wins.
        claims = [deliveries.claim_delivery("gh", "d-2", at=T0, retention=_KEEP) for _ in range(8)]
        assert sorted(await asyncio.gather(*claims)) == [False] * 7 + [True]
        # A released id (its processing failed) is claimed again.
        await deliveries.release_delivery("gh", "d-2")
        await deliveries.release_delivery("gh", "never-claimed")
        assert await deliveries.claim_delivery("gh", "d-2", at=T0, retention=_KEEP)

    async def test_delivery_ids_expire_and_only_the_newest_are_kept(self, storage: Storage) -> None:
        deliveries = _deliveries(storage)
        keep = DeliveryRetention(seconds=3600, max_ids=3)
        assert await deliveries.claim_delivery("gh", "a", at=T0, retention=keep)
        # Still remembered an instant before the hour is up (received_at >= at - 1 h), forgotten at it.
        assert not await deliveries.claim_delivery("gh", "a", at=T0 + _HOUR, retention=keep)
        assert await deliveries.claim_delivery("gh", "a", at=T0 + _HOUR + timedelta(microseconds=1), retention=keep)
        # At most 3: b, c, d claimed after a (its second claim) push a out, the oldest; b stays.
        for name in ("b", "c", "d"):
            assert await deliveries.claim_delivery("gh", name, at=T0 + 2 * _HOUR, retention=keep)
        assert await deliveries.claim_delivery("gh", "a", at=T0 + 2 * _HOUR, retention=keep)  # forgotten: new again
        assert not await deliveries.claim_delivery("gh", "d", at=T0 + 2 * _HOUR, retention=keep)  # kept: a duplicate
        # Now a, c, d (b was the oldest of four).
        assert await deliveries.claim_delivery("gh", "b", at=T0 + 2 * _HOUR, retention=keep)


class PersistentStorageContract(StorageContract):
    """The contract plus what a backend that outlives the process must keep."""

    async def test_delivery_ids_are_shared_by_processes_and_survive_a_restart(self, open_storage: OpenStorage) -> None:
        first, second = _deliveries(await open_storage()), _deliveries(await open_storage())
        claims = [store.claim_delivery("gh", "d-1", at=T0, retention=_KEEP) for store in (first, second) * 4]
        assert sorted(await asyncio.gather(*claims)) == [False] * 7 + [True]
        await first.close()  # type: ignore[attr-defined]
        await second.close()  # type: ignore[attr-defined]
        reopened = _deliveries(await open_storage())
        assert not await reopened.claim_delivery("gh", "d-1", at=T0 + _HOUR, retention=_KEEP)
        assert await reopened.claim_delivery("gh", "d-2", at=T0 + _HOUR, retention=_KEEP)

    async def test_reopening_keeps_data_and_schema(self, open_storage: OpenStorage) -> None:
        first = await open_storage()
        fresh = await first.health()
        assert fresh.schema_version is not None and fresh.schema_version >= 1
        await first.upsert(sample_events(3))
        await first.set_state("gh", {"n": 1})
        await first.close()
        second = await open_storage()
        assert (await second.health()).schema_version == fresh.schema_version
        assert len(await _all(second, "deployment")) == 3
        assert await second.get_state("gh") == {"n": 1}


def _deliveries(storage: Storage) -> WebhookDeliveries:
    if not isinstance(storage, WebhookDeliveries):
        pytest.skip("the backend does not remember webhook deliveries (the optional WebhookDeliveries)")
    return storage


async def _all(storage: Storage, kind: str, **filters: str) -> list[Event]:
    page = await storage.list_events(EventQuery(kind=kind, limit=100_000, **filters))  # type: ignore[arg-type]
    return page.items
