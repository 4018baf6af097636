from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from metrichub_core.cli import main
from metrichub_core.demo import demo_events
from metrichub_core.storage.base import EventQuery
from metrichub_core.storage.sqlite import SQLiteStorage


def count_deployments(url: str) -> int:
    async def count() -> int:
        storage = SQLiteStorage(url)
        await storage.open()
        try:
            return len((await storage.list_events(EventQuery(kind="deployment", limit=1_000_000))).items)
        finally:
            await storage.close()

    return asyncio.run(count())


def test_demo_loads_once_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/demo.db"
    runner = CliRunner()
    first = runner.invoke(main, ["demo", "--storage", url, "--days", "30"])
    assert first.exit_code == 0, first.output
    assert "loaded" in first.output
    loaded = count_deployments(url)
    expected = sum(1 for event in demo_events(days=30) if event.kind == "deployment")
    assert loaded == expected > 0

    again = runner.invoke(main, ["demo", "--storage", url, "--days", "30"])
    assert again.exit_code == 0
    assert count_deployments(url) == loaded  # same ids: updated, not duplicated

    skipped = runner.invoke(main, ["demo", "--storage", url, "--if-empty"])
    assert "already holds deployments" in skipped.output


def test_unknown_storage_scheme_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["demo", "--storage", "mongodb://x/y"])
    assert result.exit_code == 2
    assert "no storage backend for 'mongodb' URLs" in result.output


def test_broken_config_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "metrichub.toml"
    config.write_text("storage = [unclosed\n")
    result = CliRunner().invoke(main, ["demo", "--config", str(config)])
    assert result.exit_code == 2
    assert "invalid TOML" in result.output


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for name in main.list_commands(None):  # type: ignore[arg-type]
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert "--config" in result.output and "--storage" in result.output, name
