"""The plugin host: entry points loaded one at a time, failures isolated, duplicates rejected."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from metrichub_core import hookimpl
from metrichub_core.plugins import PluginError, PluginHost
from metrichub_core.sources import Source
from metrichub_core.testing.sample import SampleSource

GOOD = """
from metrichub_core import hookimpl
from metrichub_core.testing.sample import SampleSource

class GoodSource(SampleSource):
    kind = "good"

@hookimpl
def register_sources():
    return [GoodSource]
"""
InstallPlugin = Callable[..., Path]
BROKEN = "raise RuntimeError('broken at import: missing libfoo')\n"


def plugin_named(host: PluginHost, name: str) -> dict[str, object]:
    return next(plugin for plugin in host.describe() if plugin["name"] == name)


def test_builtins_register_like_any_plugin() -> None:
    host = PluginHost.load(entry_point_group=None)
    assert {"memory", "sqlite"} <= set(host.storage_factories())
    assert "demo" in host.source_kinds()
    storage = plugin_named(host, "metrichub_core.builtins.storage")
    assert storage["builtin"] is True and storage["status"] == "active"
    assert storage["hooks"] == ["register_storage"]
    assert storage["distribution"] == "metrichub-core"


def test_a_plugin_whose_import_raises_is_listed_with_its_error_and_others_work(install_plugin: InstallPlugin) -> None:
    install_plugin("metrichub-plugin-broken", {"broken": "mh_broken_plugin"}, {"mh_broken_plugin": BROKEN})
    install_plugin("metrichub-plugin-good", {"good": "mh_good_plugin"}, {"mh_good_plugin": GOOD}, version="2.3.1")
    host = PluginHost.load()
    broken = plugin_named(host, "broken")
    assert broken["status"] == "failed"
    assert broken["error"] == "RuntimeError: broken at import: missing libfoo"
    assert broken["distribution"] == "metrichub-plugin-broken"
    good = plugin_named(host, "good")
    assert good["status"] == "active"
    assert good["version"] == "2.3.1"
    assert good["sources"] == ["good"]
    assert "good" in host.source_kinds()
    assert [error.name for error in host.load_errors] == ["broken"]


def test_two_plugins_registering_one_kind_is_an_error_naming_both(install_plugin: InstallPlugin) -> None:
    install_plugin("metrichub-plugin-a", {"a-plugin": "mh_a_plugin"}, {"mh_a_plugin": GOOD})
    install_plugin("metrichub-plugin-b", {"b-plugin": "mh_b_plugin"}, {"mh_b_plugin": GOOD})
    host = PluginHost.load()
    assert plugin_named(host, "a-plugin")["status"] == "active"
    second = plugin_named(host, "b-plugin")
    assert second["status"] == "failed"
    assert "source kind 'good' is already registered by plugin 'a-plugin'" in str(second["error"])
    assert host.manager.get_plugin("b-plugin") is None  # nothing half-registered


def test_two_plugins_claiming_one_storage_scheme_is_an_error_naming_both() -> None:
    class Clash:
        @hookimpl
        def register_storage(self) -> dict[str, object]:
            return {"sqlite": lambda url: None}

    host = PluginHost.load(entry_point_group=None)
    info = host.register(Clash(), "clash")
    assert info.status == "failed"
    assert info.error == (
        "PluginError: storage scheme 'sqlite' is already registered by plugin 'metrichub_core.builtins.storage'"
    )


def test_a_raising_registration_hook_only_takes_its_plugin_down() -> None:
    class Raises:
        @hookimpl
        def register_sources(self) -> list[type[Source]]:
            raise ValueError("no config")

    host = PluginHost.load(entry_point_group=None)
    info = host.register(Raises(), "raises")
    assert (info.status, info.error) == ("failed", "ValueError: no config")
    assert "demo" in host.source_kinds()


def test_wrong_registration_types_are_rejected() -> None:
    class NotASource:
        @hookimpl
        def register_sources(self) -> list[object]:
            return [dict]

    host = PluginHost.load(entry_point_group=None)
    info = host.register(NotASource(), "wrong")
    assert info.status == "failed"
    assert "is not a Source subclass" in str(info.error)


def test_misspelled_hook_is_caught_by_check_pending() -> None:
    class Typo:
        @hookimpl
        def register_source(self) -> list[type[Source]]:
            return []

    host = PluginHost.load(entry_point_group=None)
    info = host.register(Typo(), "typo")
    assert info.status == "failed"
    assert "register_source" in str(info.error)
    host.manager.check_pending()  # the host stays valid


def test_load_plugins_allow_list(install_plugin: InstallPlugin) -> None:
    install_plugin("metrichub-plugin-good", {"good": "mh_good_plugin"}, {"mh_good_plugin": GOOD})
    install_plugin("metrichub-plugin-broken", {"broken": "mh_broken_plugin"}, {"mh_broken_plugin": BROKEN})
    only_good = PluginHost.load(environ={"METRICHUB_LOAD_PLUGINS": "metrichub-plugin-good"})
    names = {plugin["name"] for plugin in only_good.describe(include_builtins=False)}
    assert names == {"good"}
    none = PluginHost.load(environ={"METRICHUB_LOAD_PLUGINS": ""})
    assert none.describe(include_builtins=False) == []
    assert "sqlite" in none.storage_factories()  # built-ins always load


def test_disable_plugins(install_plugin: InstallPlugin) -> None:
    install_plugin("metrichub-plugin-good", {"good": "mh_good_plugin"}, {"mh_good_plugin": GOOD})
    host = PluginHost.load(environ={"METRICHUB_DISABLE_PLUGINS": "good"})
    assert plugin_named(host, "good")["status"] == "disabled"
    assert "good" not in host.source_kinds()


def test_strict_mode_raises(install_plugin: InstallPlugin) -> None:
    install_plugin("metrichub-plugin-broken", {"broken": "mh_broken_plugin"}, {"mh_broken_plugin": BROKEN})
    with pytest.raises(PluginError, match="plugin 'broken': RuntimeError: broken at import"):
        PluginHost.load(environ={"METRICHUB_STRICT_PLUGINS": "1"})


async def test_trace_prints_hook_calls(capsys: pytest.CaptureFixture[str]) -> None:
    from metrichub_core.testing import sample

    host = PluginHost.load(entry_point_group=None, environ={"METRICHUB_TRACE_PLUGINS": "1"})
    host.register(sample, "sample")
    host.manager.hook.register_sources()
    err = capsys.readouterr().err
    assert "sample.register_sources() -> [<class 'metrichub_core.testing.sample.SampleSource'>]" in err
    assert "hook register_sources() -> plugins:" in err


def test_hook_register_sources(sample_host: PluginHost) -> None:
    assert sample_host.source_kinds()["sample"] is SampleSource
    assert plugin_named(sample_host, "sample")["sources"] == ["sample"]


def test_hook_register_storage() -> None:
    from metrichub_core.storage.memory import MemoryStorage

    class Extra:
        @hookimpl
        def register_storage(self) -> dict[str, object]:
            return {"extra": MemoryStorage}

    host = PluginHost.load(entry_point_group=None)
    assert host.register(Extra(), "extra").storage == ["extra"]
    assert isinstance(host.create_storage("extra://"), MemoryStorage)


async def test_hook_on_events_ingested(sample_host: PluginHost) -> None:
    from datetime import UTC, datetime

    from metrichub_core import Deployment

    seen: list[tuple[str | None, int]] = []

    class SyncObserver:
        @hookimpl
        def on_events_ingested(self, source_id: str | None, events: list[object]) -> None:
            seen.append((source_id, len(events)))

    class AsyncObserver:
        @hookimpl
        async def on_events_ingested(self, events: list[object]) -> None:  # any subset of the arguments
            seen.append(("async", len(events)))

    class Failing:
        @hookimpl
        def on_events_ingested(self) -> None:
            raise RuntimeError("observer bug")

    for name, plugin in (("sync", SyncObserver()), ("async", AsyncObserver()), ("failing", Failing())):
        assert sample_host.register(plugin, name).status == "active"
    event = Deployment(id="1", source="s", service="a", status="success", started_at=datetime.now(UTC))
    await sample_host.events_ingested("s", [event, event])
    assert sorted(seen, key=str) == [("async", 2), ("s", 2)]


def test_unknown_storage_scheme_lists_installed() -> None:
    from metrichub_core.storage import UnknownStorageScheme

    with pytest.raises(UnknownStorageScheme, match=r"installed: memory://, sqlite://"):
        PluginHost.load(entry_point_group=None).create_storage("mongodb://x")


def test_unknown_kind_error_mentions_plugins_that_failed_to_load(install_plugin: InstallPlugin) -> None:
    from metrichub_core import MetricHub
    from metrichub_core.config import Settings

    install_plugin("metrichub-plugin-broken", {"broken": "mh_broken_plugin"}, {"mh_broken_plugin": BROKEN})
    hub = MetricHub("memory://", settings=Settings(sources={"x": {"kind": "shipit-ish"}}), plugins=PluginHost.load())
    assert "plugins that failed to load: broken: RuntimeError: broken at import" in (hub.sources["x"].fault or "")
