from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from metrichub_core import Change, Event, MetricHub
from metrichub_core.storage.base import EventQuery
from metrichub_core.sync import SyncMetricHub


def test_sync_hub_ingests_without_await(tmp_path: Path) -> None:
    change = Change(id="c1", source="s", service="api", committed_at=datetime(2026, 3, 2, tzinfo=UTC))
    with SyncMetricHub(f"sqlite:///{tmp_path}/sync.db") as hub:
        assert hub.ingest([change]) == 1

    async def read_back() -> list[Event]:
        async with MetricHub(f"sqlite:///{tmp_path}/sync.db") as hub:
            return (await hub.storage.list_events(EventQuery(kind="change"))).items

    assert asyncio.run(read_back()) == [change]


async def test_sync_hub_works_inside_a_running_loop() -> None:
    # As in a notebook: the caller's loop is running, the hub uses its own.
    with SyncMetricHub("memory://") as hub:
        assert hub.ingest([]) == 0
