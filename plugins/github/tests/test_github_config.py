"""Configuration, registration, ``check()`` and keeping the token secret."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from metrichub_plugin_github import GitHubConfig, GitHubError, GitHubSource
from pydantic import ValidationError

from metrichub_core import MetricHub, SourceContext
from metrichub_core.config import Settings, load_settings
from metrichub_core.plugins import PluginHost

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "github"


def valid(**overrides: Any) -> dict[str, Any]:
    return {"kind": "github", "token": "ghp_abc", "repositories": ["acme/api"], **overrides}


def test_defaults() -> None:
    cfg = GitHubConfig.model_validate(valid())
    assert cfg.base_url == "https://api.github.com"
    assert cfg.production_environment == "^(prod|production)$"
    assert (cfg.deployments_from, cfg.workflow, cfg.incident_label) == ("deployments", None, "incident")
    assert cfg.service_of("acme/api") == "api"
    assert cfg.environment_of("Production") == "production"
    assert cfg.environment_of("prod") == "production"
    assert cfg.environment_of("preprod") == "preprod"
    assert cfg.environment_of("staging") == "staging"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"production_environment": "^(prod"}, "invalid regular expression"),
        ({"repositories": ["acme"]}, 'expected "owner/name"'),
        ({"repositories": ["https://github.com/acme/api"]}, 'expected "owner/name"'),
        ({"repositories": []}, "at least 1 item"),
        ({"deployments_from": "workflow_runs"}, "needs workflow"),
        ({"workflow": "deploy.yml"}, "only used with"),
        ({"deployments_from": "releases"}, "'deployments' or 'workflow_runs'"),
        ({"services": {"acme/web": "web"}}, "not one of the repositories"),
        ({"base_url": "api.github.com"}, "http(s) URL"),
        ({"incident_label": ""}, "at least 1 character"),
        ({"tokn": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_config_is_rejected_with_a_clear_error(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        GitHubConfig.model_validate(valid(**overrides))
    assert message in str(raised.value)


def test_repositories_are_deduplicated_and_services_match_case_blind() -> None:
    cfg = GitHubConfig.model_validate(
        valid(repositories=["acme/api", "Acme/API", "acme/web"], services={"ACME/web": "storefront"})
    )
    assert cfg.repositories == ["acme/api", "acme/web"]
    assert cfg.service_of("acme/web") == "storefront"
    assert GitHubConfig.model_validate(valid(base_url="https://ghe.example.com/api/v3/")).base_url.endswith("/v3")


def test_the_entry_point_registers_the_github_kind() -> None:
    host = PluginHost.load()
    assert host.source_kinds()["github"] is GitHubSource
    assert GitHubSource.accepts_webhooks()


def test_config_from_toml_reports_errors_with_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "metrichub.toml"
    path.write_text(
        '[sources.gh]\nkind = "github"\ntoken = "${GH_TOKEN}"\nrepositories = ["acme/api"]\n'
        'production_environment = "(["\n',
        encoding="utf-8",
    )
    hub = MetricHub("memory://", settings=load_settings(path, environ={"GH_TOKEN": "ghp_FromTheEnvironment"}))
    fault = hub.sources["gh"].fault or ""
    assert fault.startswith("source 'gh' (plugin 'github'): ") and "sources.gh.production_environment" in fault
    assert "ghp_FromTheEnvironment" not in fault


def test_the_token_is_never_shown() -> None:
    token = "ghp_NeverShowThisToken000000000000000000"
    cfg = GitHubConfig.model_validate(valid(token=token, webhook_secret="hook-secret-value"))
    for text in (repr(cfg), str(cfg), cfg.model_dump_json(), str(cfg.model_dump(mode="json"))):
        assert token not in text and "hook-secret-value" not in text
    ctx = SourceContext(http=httpx.AsyncClient(), logger=logging.getLogger("test"))
    assert token not in repr(GitHubSource("gh", cfg, ctx).__dict__)


async def test_no_token_in_logs_errors_or_api_answers(github: Any, history_factory: Any, caplog: Any) -> None:
    """A full collection with a rate-limit 403 and a failing repository, logged at DEBUG."""
    from metrichub_core.api.app import create_app

    caplog.set_level(logging.DEBUG)
    history_factory().generate({"acme/api": 5})
    github.rate_limit_on = {2}
    policy = {"rate_limit_per_second": 1000, "backoff_initial_seconds": 0.01, "retries": 1}
    table = {"kind": "github", "base_url": github.base_url, "token": github.token, "policy": policy}
    sources = {
        "gh": {**table, "repositories": ["acme/api"]},
        "broken": {**table, "repositories": ["acme/missing"]},
    }
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources=sources))
    results = {result.id: result for result in await hub.collect()}
    assert results["gh"].ok and not results["broken"].ok
    assert "404" in (results["broken"].error or "")
    app = create_app(hub, schedule=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        answers = [await client.get(path) for path in ("/api/v1/sources", "/api/v1/sources/gh/health", "/metrics")]
    texts = [caplog.text, repr(results), *(answer.text for answer in answers)]
    assert all(answer.status_code == 200 for answer in answers)
    for text in texts:
        assert github.token not in text
    await hub.close()


async def test_check_reports_unusable_sources(github: Any, history_factory: Any) -> None:
    history_factory().generate({"acme/api": 2})

    async def check(**overrides: Any) -> None:
        values = {"base_url": github.base_url, "token": github.token, "repositories": ["acme/api"], **overrides}
        cfg = GitHubConfig.model_validate(values)
        async with httpx.AsyncClient() as http:
            await GitHubSource("gh", cfg, SourceContext(http=http, logger=logging.getLogger("t"))).check()

    await check()
    await check(deployments_from="workflow_runs", workflow="deploy.yml")
    with pytest.raises(GitHubError, match="404 not found"):
        await check(repositories=["acme/missing"])
    with pytest.raises(GitHubError, match="404"):
        await check(deployments_from="workflow_runs", workflow="nope.yml")
    with pytest.raises(GitHubError, match="401"):
        await check(token="ghp_wrong")


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared fixtures are not next to this checkout")
def test_fixtures_are_byte_copies_of_the_shared_ones() -> None:
    copies = list(FIXTURES.rglob("*.json"))
    assert len(copies) == 16
    for copy in copies:
        relative = copy.relative_to(FIXTURES)
        original = SHARED / relative if relative.parts[0] == "webhooks" else SHARED / "rest" / relative
        assert copy.read_bytes() == original.read_bytes(), relative


def test_cli_collect_sources_and_dora_never_print_the_token(github: Any, history_factory: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from metrichub_core.cli import main

    history_factory().generate({"acme/api": 6})
    config = tmp_path / "metrichub.toml"
    config.write_text(
        f'storage = "sqlite:///{tmp_path / "hub.db"}"\n'
        "[sources.gh]\n"
        'kind = "github"\n'
        'token = "${GH_TOKEN}"\n'
        f'base_url = "{github.base_url}"\n'
        'repositories = ["acme/api"]\n'
        "[sources.gh.policy]\nrate_limit_per_second = 1000\n"
        "[sources.broken]\n"
        'kind = "github"\n'
        'token = "${GH_TOKEN}"\n'
        f'base_url = "{github.base_url}"\n'
        'repositories = ["acme/missing"]\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    env = {"GH_TOKEN": github.token}
    collected = runner.invoke(main, ["collect", "--config", str(config)], env=env)
    assert collected.exit_code == 1, collected.output  # "broken" failed, "gh" was stored
    assert "gh" in collected.output and "404" in collected.output
    listed = runner.invoke(main, ["sources", "--config", str(config)], env=env)
    report = runner.invoke(
        main, ["dora", "--config", str(config), "--since", "2026-03-01", "--format", "json"], env=env
    )
    assert listed.exit_code == 0 and report.exit_code == 0, listed.output + report.output
    for result in (collected, listed, report):
        assert github.token not in result.output


def test_exported_members() -> None:
    import metrichub_plugin_github

    public = sorted(name for name in vars(metrichub_plugin_github) if not name.startswith("_") or name == "__version__")
    modules = {"annotations", "Source", "hookimpl"}  # imported helpers, not part of the namespace
    assert sorted(metrichub_plugin_github.__all__) == sorted(set(public) - modules)
    assert repr(GitHubSource).startswith("<class 'metrichub_plugin_github.GitHubSource'")
