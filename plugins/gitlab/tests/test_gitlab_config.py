"""Configuration, registration and keeping the token and webhook secrets out of every output."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from gitlab_fake import FakeGitLab
from metrichub_plugin_gitlab import GitLabConfig, GitLabSource
from pydantic import ValidationError

from metrichub_core import MetricHub, SourceContext
from metrichub_core.config import Settings, load_settings
from metrichub_core.plugins import PluginHost


def valid(**overrides: Any) -> dict[str, Any]:
    return {"kind": "gitlab", "token": "glpat-abc", "projects": ["acme/platform/shop", "acme/web"], **overrides}


def test_defaults() -> None:
    cfg = GitLabConfig.model_validate(valid())
    assert (cfg.base_url, cfg.api_url) == ("https://gitlab.com", "https://gitlab.com/api/v4")
    assert (cfg.production_environment.pattern, cfg.incident_label, cfg.auth) == (
        "^(prod|production)$",
        None,
        "private-token",
    )
    assert cfg.service_of("acme/platform/shop") == "shop"
    assert cfg.environment_of("Production", None) == "production"
    assert cfg.environment_of("prod", "other") == "production"
    assert cfg.environment_of("eu-live", "production") == "production"
    assert cfg.environment_of("preprod", "staging") == "preprod"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"production_environment": "^(prod"}, "production_environment\n  Input should be a valid regular expression"),
        ({"projects": ["shop"]}, "is not a project path"),
        ({"projects": ["https://gitlab.com/acme/web"]}, "is not a project path"),
        ({"projects": ["acme//web"]}, "is not a project path"),
        ({"projects": []}, "at least 1 item"),
        ({"services": {"acme/shop": "shop"}}, "services: 'acme/shop' is not one of the projects"),
        ({"services": {"acme/web": " "}}, "empty service name"),
        ({"base_url": "gitlab.com"}, "http(s) URL"),
        ({"base_url": "https://gitlab.example.com/api/v4"}, "without /api/v4"),
        ({"auth": "basic"}, "'private-token' or 'bearer'"),
        ({"webhook_signing_token": "whsec_not base64!"}, 'must be "whsec_" followed by base64'),
        ({"incident_label": ""}, "at least 1 character"),
        ({"tokn": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_config_is_rejected_with_a_clear_error(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        GitLabConfig.model_validate(valid(**overrides))
    assert message in str(raised.value)


def test_projects_are_deduplicated_and_matched_case_blind() -> None:
    cfg = GitLabConfig.model_validate(
        valid(projects=["acme/web", "Acme/Web", "/acme/platform/shop/"], services={"ACME/web": "storefront"})
    )
    assert cfg.projects == ["acme/web", "acme/platform/shop"]
    assert cfg.service_of("acme/web") == "storefront"
    assert cfg.configured_project("ACME/Platform/Shop") == "acme/platform/shop"
    assert GitLabConfig.model_validate(valid(base_url="https://git.example.com/gitlab/")).api_url.endswith(
        "/gitlab/api/v4"
    )


def test_the_entry_point_registers_the_gitlab_kind() -> None:
    host = PluginHost.load()
    assert host.source_kinds()["gitlab"] is GitLabSource
    assert GitLabSource.accepts_webhooks()


def test_config_from_toml_reports_errors_with_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "metrichub.toml"
    path.write_text(
        '[sources.gl]\nkind = "gitlab"\ntoken = "${GL_TOKEN}"\nprojects = ["acme/web"]\n'
        'services = { "acme/shop" = "shop" }\n',
        encoding="utf-8",
    )
    hub = MetricHub("memory://", settings=load_settings(path, environ={"GL_TOKEN": "glpat-FromTheEnvironment"}))
    fault = hub.sources["gl"].fault or ""
    assert fault.startswith("source 'gl' (plugin 'gitlab'): ") and "'acme/shop' is not one of the projects" in fault
    assert "glpat-FromTheEnvironment" not in fault


def test_secrets_are_never_shown() -> None:
    secrets = {"token": "glpat-NeverShowThis00000", "webhook_secret": "hook-secret-value"}
    signing = "whsec_" + "c2lnbmluZy1rZXktdGhhdC1tdXN0LW5vdC1sZWFr"
    cfg = GitLabConfig.model_validate(valid(**secrets, webhook_signing_token=signing))
    ctx = SourceContext(http=httpx.AsyncClient(), logger=logging.getLogger("test"))
    texts = [repr(cfg), str(cfg), cfg.model_dump_json(), str(cfg.model_dump(mode="json"))]
    texts.append(repr(GitLabSource("gl", cfg, ctx).__dict__))
    for text in texts:
        assert all(secret not in text for secret in [*secrets.values(), signing])


async def test_no_token_in_logs_errors_or_api_answers(gitlab: FakeGitLab, history_factory: Any, caplog: Any) -> None:
    """A full collection with a 429 and a failing project, logged at DEBUG, then the API's views of it."""
    from metrichub_core.api.app import create_app
    from metrichub_core.testing import Reply

    caplog.set_level(logging.DEBUG)
    history_factory().generate({"acme/web": 5})
    gitlab.faults = {2: Reply(429, body="Retry later\n")}
    policy = {"rate_limit_per_second": 1000, "backoff_initial_seconds": 0.01, "retries": 1}
    table = {"kind": "gitlab", "base_url": gitlab.base_url, "token": gitlab.token, "policy": policy}
    sources = {"gl": {**table, "projects": ["acme/web"]}, "broken": {**table, "projects": ["acme/missing"]}}
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources=sources))
    results = {result.id: result for result in await hub.collect()}
    assert results["gl"].ok and not results["broken"].ok
    assert "404" in (results["broken"].error or "")
    app = create_app(hub, schedule=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        answers = [await client.get(path) for path in ("/api/v1/sources", "/api/v1/sources/gl/health", "/metrics")]
    assert all(answer.status_code == 200 for answer in answers)
    for text in [caplog.text, repr(results), *(answer.text for answer in answers)]:
        assert gitlab.token not in text
    await hub.close()


def test_cli_collect_sources_and_dora_never_print_the_token(
    gitlab: FakeGitLab, history_factory: Any, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from metrichub_core.cli import main

    history_factory().generate({"acme/platform/shop": 6})
    config = tmp_path / "metrichub.toml"
    config.write_text(
        f'storage = "sqlite:///{tmp_path / "hub.db"}"\n'
        f'[sources.gl]\nkind = "gitlab"\ntoken = "${{GL_TOKEN}}"\nbase_url = "{gitlab.base_url}"\n'
        'projects = ["acme/platform/shop"]\n[sources.gl.policy]\nrate_limit_per_second = 1000\n'
        f'[sources.broken]\nkind = "gitlab"\ntoken = "${{GL_TOKEN}}"\nbase_url = "{gitlab.base_url}"\n'
        'projects = ["acme/missing"]\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    env = {"GL_TOKEN": gitlab.token}
    collected = runner.invoke(main, ["collect", "--config", str(config)], env=env)
    assert collected.exit_code == 1, collected.output  # "broken" failed, "gl" was stored
    assert "gl" in collected.output and "404" in collected.output
    listed = runner.invoke(main, ["sources", "--config", str(config)], env=env)
    report = runner.invoke(
        main, ["dora", "--config", str(config), "--since", "2026-03-01", "--format", "json"], env=env
    )
    assert listed.exit_code == 0 and report.exit_code == 0, listed.output + report.output
    assert '"count": 0' not in report.output.split('"deployment_frequency"')[1][:40]  # something was collected
    for result in (collected, listed, report):
        assert gitlab.token not in result.output


def test_exported_members() -> None:
    import metrichub_plugin_gitlab

    public = sorted(name for name in vars(metrichub_plugin_gitlab) if not name.startswith("_") or name == "__version__")
    modules = {"annotations", "Source", "hookimpl"}  # imported helpers, not part of the namespace
    assert sorted(metrichub_plugin_gitlab.__all__) == sorted(set(public) - modules)
    assert repr(GitLabSource).startswith("<class 'metrichub_plugin_gitlab.GitLabSource'")
