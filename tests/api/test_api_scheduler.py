from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from api_helpers import data, make_hub

from metrichub_core.collection import SourceResult
from metrichub_core.scheduling import CollectionBusy, CollectionRunner
from metrichub_core.storage.base import EventQuery, StorageError


def result(source_id: str, *, ok: bool = True, events: int = 0, **failure: Any) -> SourceResult:
    return SourceResult(source_id, "fake", ok, events, 0.0, datetime.now(UTC), **failure)


async def test_scheduled_collection_runs_in_the_background(make_app: Any, client_for: Any) -> None:
    hub = make_hub(sources={"tick": {"kind": "hooked", "schedule_minutes": 0.002}})  # every 0.12 s
    app = make_app(hub, close_hub=False)
    async with app.router.lifespan_context(app):
        for _ in range(100):
            await asyncio.sleep(0.05)
            if app.state.metrichub.runner.last.get("tick"):
                break
        outcome = app.state.metrichub.runner.last["tick"]
        assert outcome.ok and outcome.trigger == "schedule"
        listing = data(await client_for(app).get("/api/v1/sources"))
        assert listing[0]["schedule_minutes"] == 0.002
    assert len((await hub.storage.list_events(EventQuery(kind="deployment"))).items) == 2


async def test_shutdown_lets_the_collection_in_flight_finish(make_app: Any, client_for: Any) -> None:
    hub = make_hub(sources={"slow": {"kind": "hooked", "collect_delay": 0.2}})
    app = make_app(hub, close_hub=False)
    async with app.router.lifespan_context(app):
        data(await client_for(app).post("/api/v1/sources/slow/collect"), 202)
        await asyncio.sleep(0.05)
    # Shutdown waited: both events of the slow source are stored, and its cursor was saved.
    assert len((await hub.storage.list_events(EventQuery(kind="deployment"))).items) == 2
    assert await hub.storage.get_state("slow") is not None


async def test_shutdown_cancels_a_collection_past_the_grace_period() -> None:
    started = asyncio.Event()

    async def never_ends(source_id: str, full: bool) -> SourceResult:
        started.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    runner = CollectionRunner(never_ends, grace_seconds=0.05)
    task = runner.start("x")
    await started.wait()
    await runner.close()
    assert task.cancelled()
    with pytest.raises(CollectionBusy):
        runner.start("x")


async def test_a_raising_collect_is_a_failed_outcome() -> None:
    async def boom(source_id: str, full: bool) -> SourceResult:
        raise RuntimeError("secret-ish detail")

    finished: list[Any] = []
    runner = CollectionRunner(boom, on_finished=finished.append)
    outcome = await runner.start("x")
    assert not outcome.ok and outcome.error == "RuntimeError"
    assert finished == [outcome]


async def test_the_first_scheduled_run_follows_the_last_success() -> None:
    from datetime import UTC, datetime, timedelta

    runs: list[str] = []

    async def collect(source_id: str, full: bool) -> SourceResult:
        runs.append(source_id)
        return result(source_id)

    async def last_success(source_id: str) -> datetime | None:
        if source_id == "recent":
            return datetime.now(UTC) - timedelta(seconds=1)
        if source_id == "overdue":
            return datetime.now(UTC) - timedelta(hours=1)
        return None

    runner = CollectionRunner(collect)
    runner.schedule({"never": 1.0, "overdue": 1.0, "recent": 1.0}, last_success=last_success)  # every minute
    await asyncio.sleep(0.2)
    await runner.close()
    assert sorted(runs) == ["never", "overdue"]


async def test_a_scheduled_run_is_skipped_while_another_process_holds_the_source_lock() -> None:
    held = "pid 4242 on build-7 since 2026-11-30T05:00:00+00:00"

    async def collect(source_id: str, full: bool) -> SourceResult:
        if source_id == "busy":
            error = f"busy is being collected by another process ({held})"
            return result(source_id, ok=False, error=error, locked_by=held)
        return result(source_id, events=3)

    finished: list[Any] = []
    runner = CollectionRunner(collect, on_finished=finished.append)
    skipped = await runner.start("busy", trigger="schedule")
    assert skipped.skipped and skipped.ok and "busy" not in runner.last and finished == []
    ran = await runner.start("free", trigger="schedule")
    assert not ran.skipped and ran.ok and finished == [ran]
    # Asked for through the API, the same run is a failure that names the holder.
    asked = await runner.start("busy")
    assert not asked.ok and not asked.skipped and held in (asked.error or "") and runner.last["busy"] is asked
    await runner.close()


async def test_a_collection_that_raises_is_a_failed_run() -> None:
    async def collect(source_id: str, full: bool) -> SourceResult:
        raise StorageError("down")

    runner = CollectionRunner(collect)
    outcome = await runner.start("x", trigger="schedule")
    assert not outcome.ok and outcome.error == "StorageError" and runner.last["x"] is outcome
