"""A process killed mid-ingest loses nothing it acknowledged and leaves no partial batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

from metrichub_core.storage.base import EventQuery
from metrichub_core.storage.sqlite import SQLiteStorage

BATCH = 2_000

INGESTER = textwrap.dedent(
    f"""
    import asyncio, sys
    from datetime import UTC, datetime, timedelta
    from metrichub_core.models import Change
    from metrichub_core.storage.sqlite import SQLiteStorage

    async def main():
        storage = SQLiteStorage(sys.argv[1])
        await storage.open()
        start = datetime(2026, 1, 1, tzinfo=UTC)
        batch = 0
        while True:
            events = [
                Change(id=f"b{{batch}}-{{i}}", source="crash", service="api", committed_at=start + timedelta(seconds=i))
                for i in range({BATCH})
            ]
            await storage.upsert(events)
            print(f"ACK {{batch}}", flush=True)
            batch += 1

    asyncio.run(main())
    """
)


async def test_sigkill_mid_ingest_keeps_every_acknowledged_batch_whole(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/crash.db"
    process = subprocess.Popen([sys.executable, "-c", INGESTER, url], stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220
    assert process.stdout is not None
    acknowledged = []
    try:
        for line in process.stdout:
            acknowledged.append(int(line.split()[1]))
            if len(acknowledged) == 8:
                break
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    storage = SQLiteStorage(url)
    await storage.open()
    try:
        page = await storage.list_events(EventQuery(kind="change", limit=10_000_000))
    finally:
        await storage.close()
    per_batch = Counter(event.id.split("-")[0] for event in page.items)
    assert all(count == BATCH for count in per_batch.values()), per_batch
    assert {f"b{n}" for n in acknowledged} <= set(per_batch)
