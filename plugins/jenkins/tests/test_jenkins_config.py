"""Configuration, registration, ``check()``, no webhooks, and keeping the API token secret everywhere."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from jenkins_fake import TOKEN, USER, FakeJenkins, History, table
from metrichub_plugin_jenkins import JenkinsConfig, JenkinsError, JenkinsSource
from pydantic import ValidationError

from metrichub_core import MetricHub, SourceContext
from metrichub_core.config import Settings, load_settings
from metrichub_core.plugins import PluginHost
from metrichub_core.sources import WebhookNotSupported


def valid(**overrides: Any) -> dict[str, Any]:
    values = {"kind": "jenkins", "base_url": "https://jenkins.example.com/", "username": "u", "api_token": "t"}
    return {**values, "jobs": ["deploy-api", "platform/shop/main"], **overrides}


def test_defaults() -> None:
    cfg = JenkinsConfig.model_validate(valid())
    assert cfg.base_url == "https://jenkins.example.com"
    assert (cfg.environment_parameter, cfg.production_environment) == ("ENVIRONMENT", "^(prod|production)$")
    assert (cfg.unstable, cfg.deploy_stage, cfg.branches) == ("failure", None, "^(main|master)$")
    assert cfg.service_of("platform/shop/main", "main") == "main"
    assert [cfg.environment_of(name) for name in (None, "", "prod", "Production", "staging", "preprod")] == [
        "production", "production", "production", "production", "staging", "preprod",
    ]  # fmt: skip
    assert cfg.wants_branch("main") and cfg.wants_branch("master") and not cfg.wants_branch("feature%2Fmain")
    anonymous = JenkinsConfig.model_validate(valid(username=None, api_token=None))
    assert anonymous.api_token is None


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"base_url": "jenkins.example.com"}, "base_url", "http(s) URL"),
        ({"jobs": []}, "jobs", "at least 1 item"),
        ({"jobs": ["a//b"]}, "jobs", "not a job full name"),
        ({"jobs": ["job/a/job/b"]}, "jobs", "looks like a URL path"),
        ({"services": {"nope": "x"}}, "", "services: 'nope' is not one of the jobs"),
        ({"repositories": {"deploy-api": "(acme"}}, "repositories", "invalid regular expression"),
        ({"production_environment": "^(prod"}, "production_environment", "invalid regular expression"),
        ({"branches": "[main"}, "branches", "invalid regular expression"),
        ({"deploy_stage": "(deploy"}, "deploy_stage", "invalid regular expression"),
        ({"unstable": "maybe"}, "unstable", "'failure' or 'success'"),
        ({"api_token": None}, "", "api_token: username and api_token go together"),
        ({"username": None}, "", "username: username and api_token go together"),
        ({"password": "x"}, "password", "Extra inputs are not permitted"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(overrides: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        JenkinsConfig.model_validate(valid(**overrides))
    assert message in str(raised.value)
    if key:
        assert any(error["loc"][:1] == (key,) for error in raised.value.errors())


def test_config_from_toml_reports_errors_with_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "metrichub.toml"
    path.write_text(
        '[sources.ci]\nkind = "jenkins"\nbase_url = "https://jenkins.example.com"\nusername = "u"\n'
        'api_token = "${JENKINS_API_TOKEN}"\njobs = ["deploy-api"]\ndeploy_stage = "(["\n',
        encoding="utf-8",
    )
    hub = MetricHub("memory://", settings=load_settings(path, environ={"JENKINS_API_TOKEN": "FromTheEnvironment1"}))
    fault = hub.sources.faults()["ci"]  # this source fails alone, with a one-line reason
    assert "sources.ci.deploy_stage" in fault and "invalid regular expression" in fault
    assert "FromTheEnvironment1" not in fault


def test_the_entry_point_registers_the_jenkins_kind_without_webhooks() -> None:
    host = PluginHost.load()
    assert host.source_kinds()["jenkins"] is JenkinsSource
    assert not JenkinsSource.accepts_webhooks()
    source = JenkinsSource("ci", JenkinsConfig.model_validate(valid()), SourceContext(httpx.AsyncClient(), _LOG))
    with pytest.raises(WebhookNotSupported):
        source.parse_webhook({}, b"{}")


_LOG = logging.getLogger("test.jenkins")


def test_the_token_is_never_shown() -> None:
    cfg = JenkinsConfig.model_validate(valid(api_token=TOKEN))
    for text in (repr(cfg), str(cfg), cfg.model_dump_json(), str(cfg.model_dump(mode="json"))):
        assert TOKEN not in text
    source = JenkinsSource("ci", cfg, SourceContext(httpx.AsyncClient(), _LOG))
    assert TOKEN not in repr(source.__dict__) and TOKEN not in repr(source._client())


async def test_check_reports_unusable_sources(jenkins: FakeJenkins) -> None:
    jenkins.job("deploy-api")

    async def check(**overrides: Any) -> None:
        cfg = JenkinsConfig.model_validate(table(jenkins, **{"jobs": ["deploy-api"], **overrides}))
        async with httpx.AsyncClient() as http:
            await JenkinsSource("ci", cfg, SourceContext(http, _LOG)).check()

    await check()
    with pytest.raises(JenkinsError, match="404 not found"):
        await check(jobs=["missing"])
    with pytest.raises(JenkinsError, match="403"):
        await check(api_token="wrong")
    with pytest.raises(JenkinsError, match="403"):
        await check(username=None, api_token=None)


async def test_no_token_in_logs_errors_or_api_answers(jenkins: FakeJenkins, caplog: Any) -> None:
    from metrichub_core.api.app import create_app

    caplog.set_level(logging.DEBUG)
    jenkins.job("deploy-api")
    History(jenkins).build("deploy-api", "SUCCESS", commits=1)
    sources = {"ci": table(jenkins, jobs=["deploy-api"]), "broken": table(jenkins, jobs=["missing"])}
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources=sources))
    results = {result.id: result for result in await hub.collect()}
    assert results["ci"].ok and not results["broken"].ok
    assert "404" in (results["broken"].error or "")
    app = create_app(hub, schedule=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        answers = [await client.get(path) for path in ("/api/v1/sources", "/api/v1/sources/ci/health", "/metrics")]
    assert all(answer.status_code == 200 for answer in answers)
    for text in (caplog.text, repr(results), *(answer.text for answer in answers)):
        assert TOKEN not in text
    await hub.close()


def test_cli_collect_sources_and_dora_never_print_the_token(jenkins: FakeJenkins, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from metrichub_core.cli import main

    jenkins.job("deploy-api")
    History(jenkins).build("deploy-api", "SUCCESS", commits=1)
    config = tmp_path / "metrichub.toml"
    source = (
        f'kind = "jenkins"\nbase_url = "{jenkins.base_url}"\nusername = "{USER}"\n'
        'api_token = "${JENKINS_API_TOKEN}"\n'
    )
    config.write_text(
        f'storage = "sqlite:///{tmp_path / "hub.db"}"\n'
        f'[sources.ci]\n{source}jobs = ["deploy-api"]\n[sources.ci.policy]\nrate_limit_per_second = 1000\n'
        f'[sources.broken]\n{source}jobs = ["missing"]\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    env = {"JENKINS_API_TOKEN": TOKEN}
    collected = runner.invoke(main, ["collect", "--config", str(config)], env=env)
    assert collected.exit_code == 1, collected.output  # "broken" failed, "ci" was stored
    assert "ci" in collected.output and "404" in collected.output
    listed = runner.invoke(main, ["sources", "--config", str(config)], env=env)
    report = runner.invoke(
        main, ["dora", "--config", str(config), "--since", "2026-03-01", "--format", "json"], env=env
    )
    assert listed.exit_code == 0 and report.exit_code == 0, listed.output + report.output
    for result in (collected, listed, report):
        assert TOKEN not in result.output


def test_exported_members() -> None:
    import metrichub_plugin_jenkins

    public = sorted(
        name for name in vars(metrichub_plugin_jenkins) if not name.startswith("_") or name == "__version__"
    )
    modules = {"annotations", "Source", "hookimpl"}  # imported helpers, not part of the namespace
    assert sorted(metrichub_plugin_jenkins.__all__) == sorted(set(public) - modules)
    assert repr(JenkinsSource).startswith("<class 'metrichub_plugin_jenkins.JenkinsSource'")
