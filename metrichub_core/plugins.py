"""The plugin host: one pluggy manager, built-ins and entry points, isolated failures."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from metrichub_core import hookspecs
from metrichub_core.sources import Source
from metrichub_core.storage.base import Storage, UnknownStorageScheme

__all__ = ["BUILTIN_PLUGINS", "PluginHost", "PluginLoadError"]

logger = logging.getLogger(__name__)

BUILTIN_PLUGINS = (
    "metrichub_core.builtins.storage",
    "metrichub_core.builtins.demo",
)


@dataclass(frozen=True)
class PluginLoadError:
    name: str
    error: str


@dataclass
class PluginHost:
    """Owns the ``PluginManager`` and what the plugins registered."""

    manager: pluggy.PluginManager = field(default_factory=lambda: _new_manager())
    load_errors: list[PluginLoadError] = field(default_factory=list)

    @classmethod
    def load(cls, *, entry_point_group: str | None = "metrichub") -> PluginHost:
        """Register the built-ins, then every installed entry point, one at a time."""
        host = cls()
        for module_name in BUILTIN_PLUGINS:
            host.manager.register(importlib.import_module(module_name), name=module_name)
        if entry_point_group:
            for entry_point in entry_points(group=entry_point_group):
                try:
                    plugin: ModuleType = entry_point.load()
                    host.manager.register(plugin, name=entry_point.name)
                except Exception as exc:
                    logger.warning("plugin %s failed to load: %s", entry_point.name, exc)
                    host.load_errors.append(PluginLoadError(entry_point.name, f"{type(exc).__name__}: {exc}"))
        host.manager.check_pending()
        return host

    def source_kinds(self) -> dict[str, type[Source]]:
        kinds: dict[str, type[Source]] = {}
        for registered in self.manager.hook.register_sources():
            for source_class in registered:
                kinds[source_class.kind] = source_class
        return kinds

    def storage_factories(self) -> dict[str, Callable[[str], Storage]]:
        factories: dict[str, Callable[[str], Storage]] = {}
        for registered in self.manager.hook.register_storage():
            factories.update(registered)
        return factories

    def create_storage(self, url: str) -> Storage:
        scheme = url.split(":", 1)[0] if ":" in url else ""
        factories = self.storage_factories()
        if scheme not in factories:
            known = ", ".join(f"{name}://" for name in sorted(factories))
            raise UnknownStorageScheme(f"no storage backend for {url.split('://')[0]!r} URLs (installed: {known})")
        return factories[scheme](url)


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("metrichub")
    manager.add_hookspecs(hookspecs)
    return manager
