"""The sample plugin under examples/, installed with pip, is discovered and collects."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from metrichub_core.testing import FakeUpstream

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "metrichub-plugin-example"
DEPLOYS = [
    {"id": n, "app": "web", "state": "succeeded", "started_at": f"2026-03-0{n}T10:00:00+00:00",
     "finished_at": f"2026-03-0{n}T10:05:00+00:00", "updated_at": f"2026-03-0{n}T10:05:00+00:00"}
    for n in range(1, 8)
]  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install`` the example into a private target directory (the shared environment is untouched)."""
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / EXAMPLE.name  # setuptools builds in the tree: keep the repo clean
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", ".*cache", "__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (target / "metrichub_plugin_example-0.1.0.dist-info" / "entry_points.txt").is_file()
    return target


def metrichub(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "METRICHUB_DISABLE_PLUGINS": ""}
    code = "from metrichub_core.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_pip_installed_example_is_discovered(installed: Path, tmp_path: Path) -> None:
    result = metrichub(installed, "plugins", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plugins = {plugin["name"]: plugin for plugin in json.loads(result.stdout)}
    example = plugins["example"]
    assert example["distribution"] == "metrichub-plugin-example"
    assert example["version"] == "0.1.0"
    assert (example["status"], example["sources"], example["error"]) == ("active", ["shipit"], None)


def test_pip_installed_example_collects(installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeUpstream() as upstream:
        upstream.pages("/api/v1/deploys", DEPLOYS, page_size=3)
        upstream.pages("/api/v1/incidents", [])
        (tmp_path / "metrichub.toml").write_text(
            f'storage = "sqlite:///{tmp_path / "hub.db"}"\n'
            f'[sources.shipit]\nkind = "shipit"\nbase_url = "{upstream.url}/api/v1/"\ntoken = "${{SHIPIT_TOKEN}}"\n'
        )
        monkeypatch.setenv("SHIPIT_TOKEN", "tok-from-env")
        result = metrichub(installed, "collect", "--format", "json", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (summary,) = json.loads(result.stdout)
    assert (summary["id"], summary["ok"], summary["events"]) == ("shipit", True, 7)
    assert upstream.requests_for("/api/v1/deploys")[0].headers["authorization"] == "Bearer tok-from-env"
    assert "tok-from-env" not in result.stdout + result.stderr
