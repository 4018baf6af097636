"""Two API hubs on one PostgreSQL database: a source's scheduled collections never overlap."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from metrichub_plugin_postgres import PostgresStorage

from metrichub_core import Deployment, Event, MetricHub, hookimpl
from metrichub_core.api import create_app
from metrichub_core.config import Settings
from metrichub_core.plugins import PluginHost
from metrichub_core.sources import Source, SourceConfig
from metrichub_core.storage import SourceLocking

RUNS: list[tuple[str, float, float]] = []
"""(hub, start, end) of every collection, in monotonic seconds."""


class SlowConfig(SourceConfig):
    kind: str = "slow"
    base_url: str = "http://127.0.0.1:9"
    hub: str = ""


class SlowSource(Source):
    """Takes 0.4 s to yield one deployment, and records when it ran."""

    kind: ClassVar[str] = "slow"
    Config: ClassVar[type[SourceConfig]] = SlowConfig

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        config = self.config
        assert isinstance(config, SlowConfig)
        start = time.monotonic()
        await asyncio.sleep(0.4)
        now, id_ = datetime.now(UTC), f"{config.hub}-{len(RUNS)}"
        yield Deployment(id=id_, source=self.id, service="api", status="success", started_at=now)
        RUNS.append((config.hub, start, time.monotonic()))

    async def check(self) -> None:
        return None


class _Plugin:
    @hookimpl
    def register_sources(self) -> list[type[Source]]:
        return [SlowSource]


def _hub(url: str, name: str) -> MetricHub:
    plugins = PluginHost.load(entry_point_group=None)
    plugins.register(_Plugin(), "tests.slow")
    # Every 0.15 s; the first run is due at once on both (the source never succeeded).
    sources = {"shared": {"kind": "slow", "hub": name, "schedule_minutes": 0.0025}}
    return MetricHub(PostgresStorage(url), settings=Settings(storage=url, sources=sources), plugins=plugins)


async def test_two_hubs_never_collect_one_source_at_the_same_time(pg_url: str) -> None:
    RUNS.clear()
    hubs = [_hub(pg_url, "a"), _hub(pg_url, "b")]
    assert all(isinstance(hub.storage, SourceLocking) for hub in hubs)
    apps = [create_app(hub, schedule=True) for hub in hubs]
    skipped: list[Any] = []
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        runners = [app.state.metrichub.runner for app in apps]
        for runner in runners:
            start = runner.start

            def counting(*args: Any, _start: Any = start, **kwargs: Any) -> Any:
                task = _start(*args, **kwargs)
                task.add_done_callback(lambda done: skipped.append(done.result()) if done.result().skipped else None)
                return task

            runner.start = counting
        await asyncio.sleep(2.0)
    RUNS.sort(key=lambda run: run[1])
    assert len(RUNS) >= 3, RUNS
    for (_, _, end), (_, start, _) in itertools.pairwise(RUNS):
        assert start >= end, f"overlapping collections: {RUNS}"
    assert skipped, "the other hub's scheduled runs were never skipped"
    storage = PostgresStorage(pg_url)
    await storage.open()
    try:
        assert await storage.get_state("shared") is not None
    finally:
        await storage.close()
