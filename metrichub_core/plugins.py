"""The plugin host: one pluggy manager, built-ins and entry points, isolated failures.

Environment switches (read by ``PluginHost.load``):

- ``METRICHUB_LOAD_PLUGINS=a,b``: load only these entry points or distributions
  (``""`` loads none); built-ins always load.
- ``METRICHUB_DISABLE_PLUGINS=x,y``: skip these (listed as ``disabled``).
- ``METRICHUB_TRACE_PLUGINS=1``: print every hook call and its results to stderr.
- ``METRICHUB_STRICT_PLUGINS=1``: raise ``PluginError`` instead of isolating a broken plugin.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Any, Literal

import pluggy
from pydantic import BaseModel

from metrichub_core import hookspecs
from metrichub_core.errors import PluginError
from metrichub_core.models import Event
from metrichub_core.sources import Source
from metrichub_core.storage.base import Storage, UnknownStorageScheme

__all__ = ["BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "PluginError", "PluginHost", "PluginInfo", "PluginFailure"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "metrichub"
BUILTIN_PLUGINS = (
    "metrichub_core.builtins.storage",
    "metrichub_core.builtins.demo",
)

StorageFactory = Callable[[str], Storage]
Status = Literal["active", "failed", "disabled"]


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that failed to load, and why (a record for listings, not an exception)."""

    name: str
    error: str


@dataclass
class PluginInfo:
    """One plugin as ``metrichub plugins`` and ``GET /api/v1/plugins`` show it."""

    name: str
    distribution: str | None
    version: str | None
    builtin: bool
    status: Status
    hooks: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    storage: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PluginHost:
    """Owns the ``PluginManager`` and what each plugin registered.

    Source kinds and storage schemes are collected plugin by plugin as they
    register, so a duplicate names both plugins and a raising hook only takes its
    own plugin down.
    """

    def __init__(self, *, strict: bool = False, trace: bool = False) -> None:
        self.manager = _new_manager()
        self.strict = strict
        self.trace = trace
        self._plugins: dict[str, PluginInfo] = {}
        self._kinds: dict[str, tuple[type[Source], str]] = {}
        self._schemes: dict[str, tuple[StorageFactory, str]] = {}
        if trace:  # registration and observer hooks are called per plugin below, and traced there
            self.manager.add_hookcall_monitoring(_trace_before, _trace_after)

    @classmethod
    def load(
        cls,
        *,
        entry_point_group: str | None = ENTRY_POINT_GROUP,
        environ: Mapping[str, str] | None = None,
        builtins: Sequence[str] = BUILTIN_PLUGINS,
    ) -> PluginHost:
        """Register the built-ins, then every installed entry point, one at a time."""
        environ = os.environ if environ is None else environ
        host = cls(strict=_flag(environ, "METRICHUB_STRICT_PLUGINS"), trace=_flag(environ, "METRICHUB_TRACE_PLUGINS"))
        core_version = _core_version()
        for module_name in builtins:
            loader = functools.partial(importlib.import_module, module_name)
            host._load(module_name, loader, "metrichub-core", core_version, builtin=True)
        if entry_point_group:
            allow = _names(environ.get("METRICHUB_LOAD_PLUGINS"))
            deny = _names(environ.get("METRICHUB_DISABLE_PLUGINS")) or set()
            for entry_point in sorted(entry_points(group=entry_point_group), key=lambda ep: ep.name):
                dist = entry_point.dist
                dist_name = dist.metadata["Name"] if dist is not None else None
                dist_version = dist.version if dist is not None else None
                names = {entry_point.name, dist_name}
                if allow is not None and not names & allow:
                    continue
                if names & deny:
                    host._plugins[entry_point.name] = PluginInfo(
                        entry_point.name, dist_name, dist_version, False, "disabled"
                    )
                    continue
                host._load(entry_point.name, entry_point.load, dist_name, dist_version, builtin=False)
        return host

    def register(
        self,
        plugin: object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
        builtin: bool = False,
    ) -> PluginInfo:
        """Register ``plugin`` (a module or object with hookimpls) and what it provides.

        A plugin whose hooks raise, return the wrong thing, or claim a kind or scheme
        another plugin already has is unregistered and recorded as ``failed``.
        """
        info = PluginInfo(name, distribution, version, builtin, "active")
        self._plugins[name] = info
        try:
            self.manager.register(plugin, name=name)
        except Exception as exc:
            return self._fail(info, exc, registered=False)
        try:
            self.manager.check_pending()
            kinds = _validate_sources(name, self._call(plugin, "register_sources", []))
            schemes = _validate_storage(name, self._call(plugin, "register_storage", {}))
            for kind in kinds:
                if kind in self._kinds:
                    raise PluginError(f"source kind {kind!r} is already registered by plugin {self._kinds[kind][1]!r}")
            for scheme in schemes:
                if scheme in self._schemes:
                    raise PluginError(
                        f"storage scheme {scheme!r} is already registered by plugin {self._schemes[scheme][1]!r}"
                    )
        except Exception as exc:
            return self._fail(info, exc, registered=True)
        for kind, source_class in kinds.items():
            self._kinds[kind] = (source_class, name)
        for scheme, factory in schemes.items():
            self._schemes[scheme] = (factory, name)
        info.sources, info.storage = sorted(kinds), sorted(schemes)
        info.hooks = sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or [])
        return info

    @property
    def load_errors(self) -> list[PluginFailure]:
        return [PluginFailure(i.name, i.error or "") for i in self._plugins.values() if i.status == "failed"]

    def describe(self, *, include_builtins: bool = True) -> list[dict[str, Any]]:
        """Every plugin: name, distribution, version, status, hooks, source kinds, storage schemes, error."""
        infos = sorted(self._plugins.values(), key=lambda info: (not info.builtin, info.name))
        return [info.as_dict() for info in infos if include_builtins or not info.builtin]

    def source_kinds(self) -> dict[str, type[Source]]:
        return {kind: source_class for kind, (source_class, _) in sorted(self._kinds.items())}

    def source_plugins(self) -> dict[str, str]:
        """The name of the plugin that registered each source kind."""
        return {kind: plugin for kind, (_, plugin) in sorted(self._kinds.items())}

    def storage_factories(self) -> dict[str, StorageFactory]:
        return {scheme: factory for scheme, (factory, _) in sorted(self._schemes.items())}

    def create_storage(self, url: str) -> Storage:
        scheme = url.split(":", 1)[0] if ":" in url else ""
        factories = self.storage_factories()
        if scheme not in factories:
            known = ", ".join(f"{name}://" for name in sorted(factories))
            raise UnknownStorageScheme(f"no storage backend for {url.split('://')[0]!r} URLs (installed: {known})")
        return factories[scheme](url)

    async def events_ingested(self, source_id: str | None, events: list[Event]) -> None:
        """Call every ``on_events_ingested`` observer; errors are logged, never raised."""
        arguments = {"source_id": source_id, "events": events}
        for impl in reversed(self.manager.hook.on_events_ingested.get_hookimpls()):
            try:
                result = impl.function(**{name: arguments[name] for name in impl.argnames})
                if inspect.isawaitable(result):
                    result = await result
                if self.trace:
                    _trace(
                        f"{impl.plugin_name}.on_events_ingested({source_id!r}, <{len(events)} events>) -> {result!r}"
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("plugin %s: on_events_ingested failed", impl.plugin_name)

    def _load(
        self, name: str, loader: Callable[[], object], distribution: str | None, version: str | None, *, builtin: bool
    ) -> None:
        try:
            plugin = loader()
        except Exception as exc:
            self._fail(PluginInfo(name, distribution, version, builtin, "active"), exc, registered=False)
            return
        self.register(plugin, name, distribution=distribution, version=version, builtin=builtin)

    def _call(self, plugin: object, hook_name: str, empty: Any) -> Any:
        """Call one plugin's implementation of a no-argument registration hook."""
        caller = getattr(self.manager.hook, hook_name)
        results = [impl.function() for impl in caller.get_hookimpls() if impl.plugin is plugin]
        result = results[0] if results else empty
        if self.trace and results:
            _trace(f"{self.manager.get_name(plugin)}.{hook_name}() -> {result!r}")
        return result

    def _fail(self, info: PluginInfo, exc: Exception, *, registered: bool) -> PluginInfo:
        if registered and self.manager.is_registered(self.manager.get_plugin(info.name)):
            self.manager.unregister(name=info.name)
        info.status = "failed"
        info.error = f"{type(exc).__name__}: {exc}"
        self._plugins[info.name] = info
        logger.warning("plugin %s failed to load: %s", info.name, info.error)
        if self.strict:
            raise PluginError(f"plugin {info.name!r}: {info.error}") from exc
        return info


def _validate_sources(plugin: str, registered: Any) -> dict[str, type[Source]]:
    if not isinstance(registered, list | tuple):
        raise TypeError(f"register_sources() must return a list of Source classes, got {type(registered).__name__}")
    kinds: dict[str, type[Source]] = {}
    for source_class in registered:
        if not (isinstance(source_class, type) and issubclass(source_class, Source)):
            raise TypeError(f"register_sources() returned {source_class!r}, which is not a Source subclass")
        kind = getattr(source_class, "kind", None)
        config = getattr(source_class, "Config", None)
        if not isinstance(kind, str) or not kind:
            raise TypeError(f"{source_class.__name__}.kind must be a non-empty string")
        if not (isinstance(config, type) and issubclass(config, BaseModel)):
            raise TypeError(f"{source_class.__name__}.Config must be a pydantic model (a SourceConfig subclass)")
        if kind in kinds:
            raise PluginError(f"plugin {plugin!r} registers source kind {kind!r} twice")
        kinds[kind] = source_class
    return kinds


def _validate_storage(plugin: str, registered: Any) -> dict[str, StorageFactory]:
    if not isinstance(registered, Mapping):
        raise TypeError(f"register_storage() must return a dict of scheme -> factory, got {type(registered).__name__}")
    for scheme, factory in registered.items():
        if not isinstance(scheme, str) or not scheme or not callable(factory):
            raise TypeError(f"register_storage() entry {scheme!r} must map a scheme to a callable")
    return dict(registered)


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("metrichub")
    manager.add_hookspecs(hookspecs)
    return manager


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _names(value: str | None) -> set[str | None] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _core_version() -> str | None:
    try:
        return version("metrichub-core")
    except PackageNotFoundError:
        return None


def _trace(message: str) -> None:
    print(f"[metrichub plugins] {message}", file=sys.stderr)


def _trace_before(hook_name: str, hook_impls: Iterable[Any], kwargs: Mapping[str, Any]) -> None:
    plugins = ", ".join(impl.plugin_name for impl in hook_impls)
    _trace(f"hook {hook_name}({', '.join(kwargs)}) -> plugins: {plugins}")


def _trace_after(outcome: Any, hook_name: str, hook_impls: Iterable[Any], kwargs: Mapping[str, Any]) -> None:
    exception = outcome.exception
    _trace(
        f"hook {hook_name} "
        + (f"raised {exception!r}" if exception is not None else f"returned {outcome.get_result()!r}")
    )
