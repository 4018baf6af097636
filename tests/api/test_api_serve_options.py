from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from metrichub_core.cli import main
from metrichub_core.cli import serve as serve_module


def test_only_one_worker_takes_the_scheduler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_METRICHUB_SERVE_SCHEDULER_LOCK", str(tmp_path / "scheduler.lock"))
    monkeypatch.setattr(serve_module, "_scheduler_lock", None)
    assert serve_module._take_scheduler_lock() is True
    held = serve_module._scheduler_lock
    assert held is not None
    try:
        assert serve_module._take_scheduler_lock() is False
    finally:
        os.close(held)


def test_serve_help_lists_its_options() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--workers", "--config", "--storage", "--no-access-log"):
        assert option in result.output
