"""Configuration, registration, ``check()`` and keeping the token and webhook secrets out of every output."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from metrichub_plugin_pagerduty import PagerDutyConfig, PagerDutyError, PagerDutySource
from pagerduty_fake import TOKEN, FakePagerDuty, make_incident, now_s, table
from pydantic import ValidationError

from metrichub_core import MetricHub, SourceContext
from metrichub_core.config import Settings, load_settings
from metrichub_core.plugins import PluginHost
from metrichub_core.testing import Reply

SECRET = "whsec-NeverShowThisSecret"


def valid(**overrides: Any) -> dict[str, Any]:
    return {"kind": "pagerduty", "token": "pd-token", "services": {"PABC123": "checkout"}, **overrides}


def test_defaults() -> None:
    cfg = PagerDutyConfig.model_validate(valid())
    assert cfg.base_url == "https://api.pagerduty.com"
    assert (cfg.environment, cfg.urgencies, cfg.deployment_related, cfg.history_days) == ("production", [], True, 365)
    assert (cfg.webhook_secrets, cfg.caused_by_from_notes) == ([], True)
    eu = PagerDutyConfig.model_validate(valid(base_url="https://api.eu.pagerduty.com/"))
    assert eu.base_url == "https://api.eu.pagerduty.com"
    assert PagerDutyConfig.model_validate(valid(urgencies=["low", "high", "low"])).urgencies == ["high", "low"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"services": {}}, "at least 1 item"),
        ({"services": {"checkout": "checkout"}}, "not a PagerDuty service id"),
        ({"services": {"PABC123": " "}}, "empty service name"),
        ({"urgencies": ["urgent"]}, "'high' or 'low'"),
        ({"base_url": "api.pagerduty.com"}, "http(s) URL"),
        ({"token": ""}, "is empty"),
        ({"webhook_secrets": ["ok", ""]}, "secret #2 is empty"),
        ({"history_days": 0}, "greater than or equal to 1"),
        ({"environment": ""}, "at least 1 character"),
        ({"tokn": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_config_is_rejected_with_a_clear_error(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        PagerDutyConfig.model_validate(valid(**overrides))
    assert message in str(raised.value)


def test_a_missing_token_is_named() -> None:
    with pytest.raises(ValidationError) as raised:
        PagerDutyConfig.model_validate({"kind": "pagerduty", "services": {"PABC123": "x"}})
    assert raised.value.errors()[0]["loc"] == ("token",)


def test_config_from_toml_reports_errors_with_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "metrichub.toml"
    path.write_text(
        '[sources.pd]\nkind = "pagerduty"\ntoken = "${PAGERDUTY_TOKEN}"\n'
        'services = { "checkout" = "checkout" }\nwebhook_secrets = ["${PAGERDUTY_WEBHOOK_SECRET}"]\n',
        encoding="utf-8",
    )
    environ = {"PAGERDUTY_TOKEN": "u+FromTheEnvironment", "PAGERDUTY_WEBHOOK_SECRET": "whsec-FromTheEnvironment"}
    hub = MetricHub("memory://", settings=load_settings(path, environ=environ))
    fault = hub.sources.faults()["pd"]  # the source fails alone, with its reason; the others still work
    assert "sources.pd.services" in fault and "not a PagerDuty service id" in fault
    assert "FromTheEnvironment" not in fault


def test_the_entry_point_registers_the_pagerduty_kind() -> None:
    host = PluginHost.load()
    assert host.source_kinds()["pagerduty"] is PagerDutySource
    plugin = next(item for item in host.describe() if item["name"] == "pagerduty")
    assert plugin["distribution"] == "metrichub-plugin-pagerduty" and plugin["sources"] == ["pagerduty"]
    assert PagerDutySource.accepts_webhooks()


def test_secrets_are_never_shown_by_the_config_or_the_source() -> None:
    cfg = PagerDutyConfig.model_validate(valid(token="u+NeverShowThisToken", webhook_secrets=["whsec-a", "whsec-b"]))
    for text in (repr(cfg), str(cfg), cfg.model_dump_json(), str(cfg.model_dump(mode="json"))):
        assert "NeverShowThisToken" not in text and "whsec-a" not in text and "whsec-b" not in text
    ctx = SourceContext(http=httpx.AsyncClient(), logger=logging.getLogger("test"))
    assert "NeverShowThisToken" not in repr(PagerDutySource("pd", cfg, ctx).__dict__)


async def test_check_reports_unusable_sources(pagerduty: FakePagerDuty) -> None:
    async def check(**overrides: Any) -> None:
        cfg = PagerDutyConfig.model_validate({**table(pagerduty.url), **overrides})
        async with httpx.AsyncClient() as http:
            await PagerDutySource("pd", cfg, SourceContext(http=http, logger=logging.getLogger("t"))).check()

    await check()
    assert pagerduty.calls[-1].one("limit") == "1"
    with pytest.raises(PagerDutyError, match="401 Unauthorized: check the source's token") as raised:
        await check(token="u+wrong-token")
    assert "wrong-token" not in str(raised.value)


async def test_no_secret_in_logs_errors_or_api_answers(pagerduty: FakePagerDuty, caplog: Any) -> None:
    """A collection with a 429, a failing source and a rejected webhook, all logged at DEBUG."""
    from metrichub_core.api.app import create_app

    caplog.set_level(logging.DEBUG)
    pagerduty.add(make_incident(1, service="PCHK001", created=now_s() - timedelta(days=1)))
    pagerduty.faults.append(Reply(429, headers={"ratelimit-reset": "0"}))
    sources = {
        "pd": table(pagerduty.url, webhook_secrets=[SECRET]),
        "broken": table(pagerduty.url, token="u+AnotherSecretToken"),
    }
    hub = MetricHub("memory://", settings=Settings(storage="memory://", sources=sources))
    results = {result.id: result for result in await hub.collect()}
    assert results["pd"].ok and not results["broken"].ok
    app = create_app(hub, schedule=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        answers = [await client.get(path) for path in ("/api/v1/sources", "/api/v1/sources/pd/health", "/metrics")]
        answers.append(await client.post("/api/v1/webhooks/pd", content=b"{}", headers={"X-PagerDuty-Signature": "x"}))
    await hub.close()
    assert [answer.status_code for answer in answers] == [200, 200, 200, 401]
    for text in (caplog.text, repr(results), *(answer.text for answer in answers)):
        for value in (TOKEN, SECRET, "u+AnotherSecretToken"):
            assert value not in text


def test_cli_collect_and_sources_never_print_a_secret(pagerduty: FakePagerDuty, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from metrichub_core.cli import main

    pagerduty.add(make_incident(1, service="PCHK001", created=now_s() - timedelta(days=1)))
    config = tmp_path / "metrichub.toml"
    config.write_text(
        f'storage = "sqlite:///{tmp_path / "hub.db"}"\n[sources.pd]\nkind = "pagerduty"\ntoken = "${{PD_TOKEN}}"\n'
        f'base_url = "{pagerduty.url}"\nservices = {{ "PCHK001" = "checkout" }}\n'
        'webhook_secrets = ["${PD_SECRET}"]\n[sources.pd.policy]\nrate_limit_per_second = 1000\n',
        encoding="utf-8",
    )
    env = {"PD_TOKEN": TOKEN, "PD_SECRET": SECRET}
    runner = CliRunner()
    outputs = [runner.invoke(main, [command, "--config", str(config)], env=env) for command in ("collect", "sources")]
    assert all(output.exit_code == 0 for output in outputs), [output.output for output in outputs]
    assert "pd" in outputs[0].output
    for output in outputs:
        assert TOKEN not in output.output and SECRET not in output.output


def test_exported_members() -> None:
    import metrichub_plugin_pagerduty

    public = sorted(
        name for name in vars(metrichub_plugin_pagerduty) if not name.startswith("_") or name == "__version__"
    )
    modules = {"annotations", "Source", "hookimpl"}  # imported helpers, not part of the namespace
    assert sorted(metrichub_plugin_pagerduty.__all__) == sorted(set(public) - modules)
    assert repr(PagerDutySource).startswith("<class 'metrichub_plugin_pagerduty.PagerDutySource'")
