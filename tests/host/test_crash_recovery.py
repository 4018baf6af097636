"""A collection killed with SIGKILL, then re-run: storage ends up equal to the upstream, exactly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from metrichub_core import Deployment, MetricHub
from metrichub_core.plugins import PluginHost
from metrichub_core.storage.base import EventQuery
from metrichub_core.testing.distributions import fake_distribution
from metrichub_core.testing.sample import sample_items
from metrichub_core.testing.upstream import FakeUpstream

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def collect_command(config: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from metrichub_core.cli import main; main()",
        "collect",
        "--config",
        str(config),
        "-q",
    ]


async def _stored(db: Path) -> list[tuple[str, str, str]]:
    async with MetricHub(f"sqlite:///{db}", plugins=PluginHost.load(entry_point_group=None)) as hub:
        page = await hub.storage.list_events(EventQuery(kind="deployment", source="s", limit=100_000))
    assert page.next_cursor is None
    return [
        (event.id, event.status, event.started_at.isoformat()) for event in page.items if isinstance(event, Deployment)
    ]


def stored(db: Path) -> list[tuple[str, str, str]]:
    return asyncio.run(_stored(db))


def upstream_rows(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted(
        (item["id"], item["status"], datetime.fromisoformat(item["started_at"]).isoformat()) for item in items
    )


def test_sigkill_mid_collection_then_rerun_stores_exactly_the_upstream_set(tmp_path: Path) -> None:
    site = fake_distribution(tmp_path / "site", "metrichub-sample", {"sample": "metrichub_core.testing.sample"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    db = tmp_path / "hub.db"
    items = sample_items(1500)
    with FakeUpstream(latency=0.02) as upstream:
        upstream.pages("/deployments", items, page_size=25, since_field="updated_at")
        config = tmp_path / "metrichub.toml"
        config.write_text(
            f'storage = "sqlite:///{db}"\n[sources.s]\nkind = "sample"\nbase_url = "{upstream.url}"\npage_size = 25\n'
            "[sources.s.policy]\nrate_limit_per_second = 1000\n"
        )
        process = subprocess.Popen(collect_command(config), env=env, cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 30
        while len(upstream.requests_for("/deployments")) < 30:  # 750 of 1,500 items fetched: one batch stored
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the collection never got going"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()
        assert process.returncode == -signal.SIGKILL

        partial = stored(db)
        assert 0 < len(partial) < len(items)

        rerun = subprocess.run(collect_command(config), env=env, cwd=tmp_path, capture_output=True, text=True,
                               timeout=120)  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        assert "since" not in upstream.requests_for("/deployments")[-1].query  # no cursor was saved by the killed run
        first = stored(db)
        assert sorted(first) == upstream_rows(items)
        assert len(first) == len(set(first))

        # the upstream changes: one deployment is updated, two are new; an incremental run converges again
        changed = [dict(item) for item in items]
        now = datetime.now(UTC).isoformat()
        changed[5] |= {"status": "cancelled", "updated_at": now}
        changed += sample_items(2, start=datetime.now(UTC), prefix="new")
        upstream.set_items("/deployments", changed)
        again = subprocess.run(collect_command(config), env=env, cwd=tmp_path, capture_output=True, text=True,
                               timeout=120)  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "since" in upstream.requests_for("/deployments")[-1].query
        final = stored(db)
        assert sorted(final) == upstream_rows(changed)
