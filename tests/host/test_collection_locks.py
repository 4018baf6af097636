"""Every collection holds its source's lock: a second one elsewhere fails, naming the holder."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import httpx

from metrichub_core import Deployment, Event, MetricHub, hookimpl
from metrichub_core.api.app import create_app
from metrichub_core.config import Settings
from metrichub_core.plugins import PluginHost
from metrichub_core.sources import Source, SourceConfig
from metrichub_core.storage.lockfiles import LockFiles
from metrichub_core.storage.sqlite import SQLiteStorage

METRICHUB = [sys.executable, "-c", "from metrichub_core.cli import main; main()"]
GATE: asyncio.Event | None = None
STARTED: asyncio.Event | None = None
ME = f"pid {os.getpid()} on "


class GatedConfig(SourceConfig):
    kind: str = "gated"
    base_url: str = "http://127.0.0.1:9"


class GatedSource(Source):
    """Yields one deployment once ``GATE`` opens: a collection that runs as long as the test wants."""

    kind: ClassVar[str] = "gated"
    Config: ClassVar[type[SourceConfig]] = GatedConfig

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        if STARTED is not None:
            STARTED.set()
        if GATE is not None:
            await GATE.wait()
        yield Deployment(id="d1", source=self.id, service="api", status="success", started_at=datetime.now(UTC))


class _Plugin:
    @hookimpl
    def register_sources(self) -> list[type[Source]]:
        return [GatedSource]


def gated_hub(database: Path) -> MetricHub:
    plugins = PluginHost.load(entry_point_group=None)
    plugins.register(_Plugin(), "tests.gated")
    settings = Settings(sources={"shared": {"kind": "gated"}})
    return MetricHub(f"sqlite:///{database}", settings=settings, plugins=plugins)


async def test_a_second_hub_on_the_same_sqlite_file_cannot_collect_a_source_being_collected(tmp_path: Path) -> None:
    global GATE, STARTED
    GATE, STARTED = asyncio.Event(), asyncio.Event()
    first, second = gated_hub(tmp_path / "m.db"), gated_hub(tmp_path / "m.db")
    async with first, second:
        running = asyncio.create_task(first.collect(["shared"]))
        await STARTED.wait()  # the first hub holds the lock while its source collects
        (refused,) = await second.collect(["shared"])
        assert not refused.ok and refused.events == 0
        assert refused.locked_by is not None and refused.locked_by.startswith(ME)
        assert refused.error == f"shared is being collected by another process ({refused.locked_by})"

        app = create_app(second, schedule=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            answer = await client.post("/api/v1/sources/shared/collect")
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "conflict"
        assert ME in answer.json()["error"]["message"]

        GATE.set()
        (done,) = await running
        assert done.ok and done.events == 1 and done.locked_by is None
        assert await second.collection_holder("shared") is None
        (after,) = await second.collect(["shared"])  # released: the other hub may collect now
        assert after.ok
    GATE = STARTED = None


async def test_metrichub_collect_in_another_process_exits_1_naming_the_holder(tmp_path: Path) -> None:
    database = tmp_path / "m.db"
    config = tmp_path / "metrichub.toml"
    config.write_text(f'storage = "sqlite:///{database}"\n[sources.demo]\nkind = "demo"\ndays = 3\n')
    storage = SQLiteStorage(f"sqlite:///{database}")
    await storage.open()
    try:
        async with storage.source_lock("demo") as acquired:
            assert acquired
            result = await asyncio.to_thread(
                subprocess.run,
                [*METRICHUB, "collect", "demo", "--config", str(config), "-q"],
                capture_output=True,
                text=True,
                timeout=120,
            )
        assert result.returncode == 1, result.stdout + result.stderr
        assert "demo is being collected by another process (" + ME in result.stdout
        assert "Traceback" not in result.stdout + result.stderr
        again = await asyncio.to_thread(
            subprocess.run,
            [*METRICHUB, "collect", "demo", "--config", str(config), "-q"],
            capture_output=True,
            timeout=120,
        )
        assert again.returncode == 0
    finally:
        await storage.close()


async def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from metrichub_core.storage.lockfiles import LockFiles

        async def main():
            async with LockFiles(Path({str(tmp_path)!r})).lock("src") as acquired:
                print("held" if acquired else "busy", flush=True)
                await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and (await holder.stdout.readline()).strip() == b"held"
        locks = LockFiles(tmp_path)
        assert (await locks.holder("src") or "").startswith(f"pid {holder.pid} on ")
        async with locks.lock("src") as acquired:
            assert not acquired
    finally:
        holder.send_signal(signal.SIGKILL)
        await asyncio.wait_for(holder.wait(), timeout=10)
    assert await locks.holder("src") is None
    async with locks.lock("src") as acquired:
        assert acquired
        assert (await locks.holder("src") or "").startswith(ME)


async def test_sqlite_data_version_moves_with_other_processes_writes_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    mine, other = SQLiteStorage(url), SQLiteStorage(url)
    await mine.open()
    await other.open()
    try:
        event = Deployment(id="d", source="s", service="api", status="success", started_at=datetime.now(UTC))
        before = await mine.data_version()
        await mine.upsert([event])
        assert await mine.data_version() == before  # our own writes are known without asking
        await other.upsert([event.model_copy(update={"id": "e"})])
        assert await mine.data_version() != before
    finally:
        await mine.close()
        await other.close()
