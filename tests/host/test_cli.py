"""``metrichub collect | plugins | sources``: output and exit codes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from metrichub_core.cli import main
from metrichub_core.testing import FakeUpstream, Reply, refused_url
from metrichub_core.testing.sample import sample_items

InstallPlugin = Callable[..., Path]
FAST = "[sources.{id}.policy]\nretries = 1\nbackoff_initial_seconds = 0.01\nbreaker_fail_max = 10\n"


@pytest.fixture
def sample_installed(install_plugin: InstallPlugin) -> None:
    install_plugin("metrichub-sample", {"sample": "metrichub_core.testing.sample"})


def write_config(path: Path, sources: dict[str, str]) -> Path:
    text = f'storage = "sqlite:///{path.parent / "hub.db"}"\n'
    for source_id, base_url in sources.items():
        text += f'[sources.{source_id}]\nkind = "sample"\nbase_url = "{base_url}"\ntoken = "tok-secret"\n'
        text += FAST.format(id=source_id)
    path.write_text(text)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("sample_installed")
def test_collect_all_ok_exits_0_with_one_summary_line_per_source(tmp_path: Path) -> None:
    with FakeUpstream() as upstream:
        upstream.pages("/deployments", sample_items(12), page_size=5)
        config = write_config(tmp_path / "metrichub.toml", {"alpha": upstream.url, "beta": upstream.url})
        code, out, err = invoke("collect", "--config", str(config))
    assert code == 0, out + err
    lines = out.strip().splitlines()
    assert [line.split()[:3] for line in lines] == [["alpha", "ok", "12"], ["beta", "ok", "12"]]
    assert "alpha: collecting..." in err and "alpha: 12 events stored" in err and "alpha: done" in err


@pytest.mark.usefixtures("sample_installed")
def test_collect_progress_covers_the_derivation_nothing_is_left_after_it(tmp_path: Path) -> None:
    """Each progress line is a batch stored and derived: when collect ends, the DORA tables hold it all."""
    with FakeUpstream() as upstream:
        upstream.pages("/deployments", sample_items(12), page_size=5)
        config = write_config(tmp_path / "metrichub.toml", {"alpha": upstream.url})
        code, out, err = invoke("collect", "--config", str(config))
    assert code == 0, out + err
    assert "alpha: 12 events stored and derived" in err
    conn = sqlite3.connect(tmp_path / "hub.db")
    try:
        assert conn.execute("SELECT count(*) FROM dora_pending").fetchone() == (0,)
        # sample_items(12): indexes 3 and 10 failed (index % 7 == 3), the other 10 succeeded, all on 2026-01-05.
        days = conn.execute(
            "SELECT service, deployments, failures FROM dora_deploy_days WHERE environment = 'production' ORDER BY 1"
        ).fetchall()
        assert days == [("", 10, 2), ("api", 10, 2)]
    finally:
        conn.close()


@pytest.mark.usefixtures("sample_installed")
def test_collect_exits_1_when_any_source_fails_and_keeps_the_others(tmp_path: Path) -> None:
    with FakeUpstream() as upstream:
        upstream.pages("/deployments", sample_items(3), page_size=5)
        config = write_config(tmp_path / "metrichub.toml", {"good": upstream.url, "down": refused_url()})
        code, out, err = invoke("collect", "--config", str(config), "--format", "json", "--quiet")
    assert code == 1
    results = {result["id"]: result for result in json.loads(out)}
    assert results["good"]["ok"] and results["good"]["events"] == 3
    assert not results["down"]["ok"] and "ConnectError after 2 attempt(s)" in results["down"]["error"]
    assert "tok-secret" not in out + err


@pytest.mark.usefixtures("sample_installed")
def test_collect_selected_sources_and_full(tmp_path: Path) -> None:
    with FakeUpstream() as upstream:
        upstream.pages("/deployments", sample_items(3), since_field="updated_at")
        config = write_config(tmp_path / "metrichub.toml", {"alpha": upstream.url, "beta": upstream.url})
        assert invoke("collect", "alpha", "--config", str(config), "-q")[0] == 0
        assert {r.query.get("since") is None for r in upstream.requests} == {True}
        code, out, _ = invoke("collect", "alpha", "--config", str(config), "-q")
        assert code == 0 and out.split()[:3] == ["alpha", "ok", "0"]  # incremental: nothing new
        code, out, _ = invoke("collect", "alpha", "--full", "--config", str(config), "-q")
        assert code == 0 and out.split()[:3] == ["alpha", "ok", "3"] and "(full)" in out
    assert len(out.strip().splitlines()) == 1


@pytest.mark.usefixtures("sample_installed")
def test_collect_usage_errors_exit_2_and_a_bad_source_table_fails_alone(tmp_path: Path) -> None:
    config = write_config(tmp_path / "metrichub.toml", {"alpha": "http://127.0.0.1:9"})
    code, _, err = invoke("collect", "nope", "--config", str(config))
    assert code == 2 and "no source 'nope' is configured (configured: alpha)" in err

    bad = tmp_path / "bad.toml"
    bad.write_text('[sources.x]\nkind = "sample"\nbase_url = "http://x"\npage_size = 0\ntoken = "tok-secret"\n')
    code, out, err = invoke("collect", "--config", str(bad))
    assert code == 1, out + err  # a source failed; the configuration as a whole is usable
    assert (
        "source 'x' (plugin 'sample'): config: sources.x.page_size: Input should be greater than or equal to 1" in out
    )
    assert "tok-secret" not in out + err and "Traceback" not in out + err

    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[sources.x]\nkind = "gitlab-typo"\n')
    code, out, err = invoke("collect", "--config", str(unknown))
    assert code == 1 and "unknown source kind 'gitlab-typo' (installed kinds: " in out

    empty = tmp_path / "empty.toml"
    empty.write_text(f'storage = "sqlite:///{tmp_path / "e.db"}"\n')
    code, _, err = invoke("collect", "--config", str(empty))
    assert code == 2 and "no sources configured" in err


def test_plugins_lists_versions_registrations_and_load_errors(install_plugin: InstallPlugin, tmp_path: Path) -> None:
    install_plugin("metrichub-plugin-broken", {"broken": "mh_cli_broken"}, {"mh_cli_broken": "import no_such_dep\n"})
    install_plugin("metrichub-sample", {"sample": "metrichub_core.testing.sample"}, version="3.2.1")
    code, out, _ = invoke("plugins", "--storage", "memory://")
    assert code == 0
    assert "sample (metrichub-sample 3.2.1)" in out and "sources: sample" in out
    assert "broken (metrichub-plugin-broken 1.0)" in out
    assert "error: ModuleNotFoundError: No module named 'no_such_dep'" in out
    assert "metrichub_core.builtins" not in out  # built-ins only with --all
    code, out, _ = invoke("plugins", "--all", "--format", "json", "--storage", "memory://")
    names = {plugin["name"] for plugin in json.loads(out)}
    assert {"metrichub_core.builtins.storage", "sample", "broken"} <= names


@pytest.mark.usefixtures("sample_installed")
def test_sources_lists_masked_config_and_checks(tmp_path: Path) -> None:
    with FakeUpstream() as upstream:
        upstream.pages("/deployments", sample_items(2))
        upstream.script("/broken", Reply(404))
        config = write_config(tmp_path / "metrichub.toml", {"alpha": upstream.url})
        code, out, _ = invoke("sources", "--config", str(config), "--format", "json")
        assert code == 0
        (row,) = json.loads(out)
        assert row["config"]["token"] == "**********" and row["last_success_at"] is None
        assert invoke("sources", "--check", "--config", str(config))[0] == 0
        config.write_text(config.read_text().replace('kind = "sample"', 'kind = "sample"\npath = "/broken"'))
        code, out, _ = invoke("sources", "--check", "--config", str(config))
    assert code == 1 and "check: HTTPStatusError" in out
    assert "tok-secret" not in out
