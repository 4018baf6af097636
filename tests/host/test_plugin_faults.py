"""A third-party plugin's fault fails its own source, with one line naming source and plugin; the others collect.

Each plugin below is a distribution of its own, found through the real entry-point path.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from metrichub_core import MetricHub
from metrichub_core.api.app import create_app
from metrichub_core.cli import main
from metrichub_core.config import Settings
from metrichub_core.plugins import PluginHost
from metrichub_core.storage.base import EventQuery

InstallPlugin = Callable[..., Path]

_HEADER = """
from datetime import UTC, datetime

from pydantic import BaseModel

from metrichub_core import Deployment, Source, hookimpl


def deployment(source_id, service):
    return Deployment(id="d1", source=source_id, service=service, status="success",
                      started_at=datetime(2026, 3, 2, 9, tzinfo=UTC), finished_at=datetime(2026, 3, 2, 10, tzinfo=UTC))
"""


def plugin(kind: str, source_class: str, body: str, config_fields: str = "") -> str:
    """A plugin module: a plain pydantic ``Config`` (not ``SourceConfig``) and one ``Source``."""
    return f"""{_HEADER}
class Config(BaseModel):
    base_url: str = "http://127.0.0.1:9"
{textwrap.indent(textwrap.dedent(config_fields), "    ")}

class {source_class}(Source):
    kind = "{kind}"
    Config = Config
{textwrap.indent(textwrap.dedent(body), "    ")}

@hookimpl
def register_sources():
    return [{source_class}]
"""


PLUGINS = {
    # Written to DESIGN.md's contract, a plain pydantic Config with no host keys: healthy.
    "plain": plugin(
        "plain",
        "PlainSource",
        """
        async def collect(self, since):
            yield deployment(self.id, self.config.team)
        """,
        "team: str",
    ),
    "strict": plugin(
        "strict",
        "StrictSource",
        """
        async def collect(self, since):
            yield deployment(self.id, "x")
        """,
        """
        model_config = {"extra": "forbid"}
        project: str
        """,
    ),
    "initfails": plugin(
        "initfails",
        "InitFailsSource",
        """
        def __init__(self, id, config, ctx):
            raise RuntimeError("libgit2 is not installed")

        async def collect(self, since):
            yield deployment(self.id, "x")
        """,
    ),
    "notagen": plugin(
        "notagen",
        "NotAGeneratorSource",
        """
        async def collect(self, since):
            return [deployment(self.id, "x")]
        """,
    ),
    "listcollect": plugin(
        "listcollect",
        "ListCollectSource",
        """
        def collect(self, since):
            return [deployment(self.id, "x")]
        """,
    ),
    "badyield": plugin(
        "badyield",
        "BadYieldSource",
        """
        async def collect(self, since):
            yield {"id": "d1"}
        """,
    ),
    "wronghook": _HEADER + '\n@hookimpl\ndef register_sources():\n    return "WrongHookSource"\n',
}
TABLES: dict[str, dict[str, Any]] = {
    "healthy": {"kind": "plain", "team": "api", "policy": {"retries": 1}, "schedule_minutes": 60},
    "rejected": {"kind": "strict", "colour": "red"},
    "init": {"kind": "initfails"},
    "coroutine": {"kind": "notagen"},
    "returns-list": {"kind": "listcollect"},
    "yields-dicts": {"kind": "badyield"},
    "hookless": {"kind": "wronghook"},
}
EXPECTED_FAULTS = {
    "rejected": [
        "source 'rejected' (plugin 'strict'): ",
        "sources.rejected.project: Field required",
        "sources.rejected.colour: Extra inputs are not permitted",
    ],
    "init": ["source 'init' (plugin 'initfails'): InitFailsSource() raised RuntimeError: libgit2 is not installed"],
    "coroutine": ["source 'coroutine' (plugin 'notagen'): NotAGeneratorSource.collect() must be an async generator"],
    "returns-list": [
        "source 'returns-list' (plugin 'listcollect'): ListCollectSource.collect() must be an async generator",
        "it returned list",
    ],
    "yields-dicts": ["source 'yields-dicts' (plugin 'badyield'): collect() yielded dict; expected Deployment"],
    "hookless": [
        "source 'hookless': ",
        "unknown source kind 'wronghook'",
        "plugins that failed to load: wronghook: TypeError: register_sources() must return a list of Source classes",
    ],
}
FOUND_BY_COLLECTING = {"returns-list", "yields-dicts"}  # only running collect() shows these
LOAD_ONLY = ",".join(f"metrichub-plugin-{name}" for name in PLUGINS)


@pytest.fixture
def installed(install_plugin: InstallPlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, body in PLUGINS.items():
        install_plugin(f"metrichub-plugin-{name}", {name: f"mh_{name}_plugin"}, {f"mh_{name}_plugin": _HEADER + body})
    monkeypatch.setenv("METRICHUB_LOAD_PLUGINS", LOAD_ONLY)


def assert_fault(source_id: str, reason: str | None) -> None:
    assert reason is not None, f"{source_id} should be at fault"
    assert "\n" not in reason and "Traceback" not in reason
    for part in EXPECTED_FAULTS[source_id]:
        assert part in reason, f"{part!r} not in {reason!r}"


@pytest.mark.usefixtures("installed")
async def test_each_fault_fails_its_source_alone_and_the_healthy_one_collects() -> None:
    hub = MetricHub("memory://", settings=Settings(sources=TABLES), plugins=PluginHost.load())
    async with hub:
        results = {result.id: result for result in await hub.collect()}
        assert results["healthy"].ok and results["healthy"].events == 1
        assert hub.sources["healthy"].schedule_minutes == 60  # the host read its own keys
        assert hub.sources["healthy"].resilience.policy.retries == 1
        for source_id in EXPECTED_FAULTS:
            assert not results[source_id].ok
            assert_fault(source_id, results[source_id].error)
            health = await hub.source_health(source_id)
            assert health.ok is False
        stored = await hub.storage.list_events(EventQuery(kind="deployment"))
    assert [(event.source, event.service) for event in stored.items] == [("healthy", "api")]


@pytest.mark.usefixtures("installed")
def test_cli_collect_and_sources_name_each_fault_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "metrichub.toml"
    lines = [f'storage = "sqlite:///{tmp_path / "m.db"}"']
    for source_id, table in TABLES.items():
        lines.append(f'[sources."{source_id}"]')
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in table.items() if not isinstance(value, dict))
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    collect = CliRunner().invoke(main, ["collect", "--config", str(config), "--format", "json", "-q"])
    assert collect.exit_code == 1, collect.output  # documented: 1 when any source failed
    assert "Traceback" not in collect.stdout + collect.stderr
    results = {row["id"]: row for row in json.loads(collect.stdout)}
    assert results["healthy"]["ok"] is True and results["healthy"]["events"] == 1
    for source_id in EXPECTED_FAULTS:
        assert_fault(source_id, results[source_id]["error"])

    listing = CliRunner().invoke(main, ["sources", "--config", str(config)])
    assert listing.exit_code == 0 and "Traceback" not in listing.output
    for source_id in EXPECTED_FAULTS.keys() - FOUND_BY_COLLECTING:
        line = next(line for line in listing.stdout.splitlines() if line.startswith(source_id + " "))
        assert "FAULT: " in line
        assert_fault(source_id, line.partition("FAULT: ")[2])
    healthy = next(line for line in listing.stdout.splitlines() if line.startswith("healthy "))
    assert "FAULT" not in healthy and "last success: 20" in healthy

    checked = CliRunner().invoke(main, ["sources", "--check", "--config", str(config)])
    assert checked.exit_code == 1 and "Traceback" not in checked.output


@pytest.mark.usefixtures("installed")
async def test_api_lists_each_fault_in_sources_and_health() -> None:
    hub = MetricHub("memory://", settings=Settings(sources=TABLES), plugins=PluginHost.load())
    app = create_app(hub, schedule=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        for source_id in TABLES:
            await client.post(f"/api/v1/sources/{source_id}/collect?wait=true")
        listing = {row["id"]: row for row in (await client.get("/api/v1/sources")).json()["data"]}
        assert listing["healthy"]["ok"] is True and listing["healthy"]["fault"] is None
        for source_id in EXPECTED_FAULTS:
            assert listing[source_id]["ok"] is False
            assert_fault(source_id, listing[source_id]["fault"])
        health = (await client.get("/api/v1/sources/init/health")).json()["data"]
        assert_fault("init", health["fault"])
        collected = (await client.post("/api/v1/sources/coroutine/collect?wait=true")).json()["data"]
        assert collected["status"] == "failed"
        assert_fault("coroutine", collected["error"])
