"""The configured sources of a hub: each ``[sources.<id>]`` table turned into a usable source, or a reason why not.

The host owns three keys of every table, ``kind``, ``policy`` and ``schedule_minutes``; the
plugin's ``Config`` validates the rest, whatever its base class. A table the plugin rejects,
a kind no plugin provides, a ``Source`` whose ``__init__`` raises: each fails its own source
with a one-line reason naming the source and the plugin, and never the others.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from metrichub_core.errors import SourceFault, UnknownSource
from metrichub_core.redaction import redact_url
from metrichub_core.resilience.cache import HttpCache
from metrichub_core.resilience.client import SourceResilience
from metrichub_core.resilience.policy import Policy
from metrichub_core.sources import Source, SourceContext
from metrichub_core.storage.base import Storage

if TYPE_CHECKING:
    from metrichub_core.collection import SourceResult

__all__ = [
    "ConfiguredSource",
    "HostKeys",
    "SourceFault",
    "SourceHealth",
    "SourceRegistry",
    "UnknownSource",
    "config_of",
]

_REDACTED = "**********"
logger = logging.getLogger("metrichub.sources")


class HostKeys(BaseModel):
    """The keys of a ``[sources.<id>]`` table that the host reads itself."""

    model_config = ConfigDict(extra="ignore")

    kind: str = Field(min_length=1)
    policy: Policy = Field(default_factory=Policy)
    schedule_minutes: float | None = Field(None, gt=0, description="Collect in the background every N minutes.")


_HOST_KEYS = frozenset(HostKeys.model_fields)


@dataclass(frozen=True)
class SourceHealth:
    """A configured source's breaker, counters and last collection, for ``/sources/{id}/health``."""

    id: str
    kind: str
    ok: bool
    running: bool
    breaker: dict[str, Any]
    stats: dict[str, Any]
    budget: dict[str, Any]
    last_run: dict[str, Any] | None
    last_success_at: str | None
    fault: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ConfiguredSource:
    """A ``[sources.<id>]`` table: its plugin's validated ``Config`` and its resilience state, or its ``fault``."""

    id: str
    kind: str
    source_class: type[Source] | None
    config: BaseModel | None
    resilience: SourceResilience
    plugin: str | None = None
    schedule_minutes: float | None = None
    fault: str | None = None
    last_result: SourceResult | None = None
    running: bool = False
    _secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def base_url(self) -> str | None:
        value = getattr(self.config, "base_url", None)
        return value if isinstance(value, str) else None

    @property
    def accepts_webhooks(self) -> bool:
        return self.source_class is not None and self.source_class.accepts_webhooks()

    def create(
        self,
        *,
        http: httpx.AsyncClient | None = None,
        state: dict[str, Any] | None = None,
        cache: HttpCache | None = None,
    ) -> Source:
        """A ready instance whose ``ctx.http`` goes through this source's policies; ``SourceFault`` if unusable."""
        if self.fault is not None or self.source_class is None:
            raise SourceFault(self.fault or f"source {self.id!r}: no plugin provides kind {self.kind!r}")
        if http is None:
            http = self.resilience.client(base_url=self.base_url or "", cache=cache)
        ctx = SourceContext(http=http, logger=logging.getLogger(f"metrichub.source.{self.id}"), state=state or {})
        try:
            return self.source_class(self.id, self.config, ctx)  # type: ignore[arg-type]
        except Exception as exc:
            raise self.plugin_fault(f"{self.source_class.__name__}() raised {describe(exc)}") from exc

    def plugin_fault(self, reason: str) -> SourceFault:
        """Record that the plugin's code is at fault (it will be again): the one line names source and plugin."""
        self.fault = self.redact(f"source {self.id!r} (plugin {self.plugin or '?'!r}): {reason}")
        logger.warning("%s", self.fault)
        return SourceFault(self.fault)

    def describe(self) -> dict[str, Any]:
        """Id, kind, schedule and config with secrets masked, or the fault: safe to print or serve."""
        return {
            "id": self.id,
            "kind": self.kind,
            "plugin": self.plugin,
            "base_url": redact_url(self.base_url) if self.base_url else None,
            "schedule_minutes": self.schedule_minutes,
            "accepts_webhooks": self.accepts_webhooks,
            "fault": self.fault,
            "config": None if self.config is None else self.config.model_dump(mode="json"),
        }

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text


class SourceRegistry:
    """The configured sources of a hub, by id; faulty ones included, with their reason."""

    def __init__(self, sources: Mapping[str, ConfiguredSource] | None = None) -> None:
        self._sources = dict(sources or {})

    @classmethod
    def from_settings(
        cls,
        tables: Mapping[str, Mapping[str, Any]],
        kinds: Mapping[str, type[Source]],
        *,
        plugins: Mapping[str, str] | None = None,
        origin: str = "config",
        failed_plugins: Mapping[str, str] | None = None,
    ) -> SourceRegistry:
        """Validate every ``[sources.<id>]`` table; a table that does not validate becomes that source's fault.

        ``plugins`` names the plugin of each kind; ``failed_plugins`` (name -> error) is
        mentioned when a kind is unknown: the plugin that provides it may be installed but broken.
        """
        registry = cls()
        for source_id, table in tables.items():
            registry.add(_configure(source_id, table, kinds, plugins or {}, origin, failed_plugins or {}))
        return registry

    def add(self, source: ConfiguredSource) -> None:
        self._sources[source.id] = source

    def __getitem__(self, source_id: str) -> ConfiguredSource:
        try:
            return self._sources[source_id]
        except KeyError:
            raise UnknownSource(source_id, list(self._sources)) from None

    def __contains__(self, source_id: object) -> bool:
        return source_id in self._sources

    def __iter__(self) -> Iterator[ConfiguredSource]:
        return iter(self._sources.values())

    def __len__(self) -> int:
        return len(self._sources)

    def ids(self) -> list[str]:
        return list(self._sources)

    def faults(self) -> dict[str, str]:
        """``{source id: reason}`` of every source that cannot be used."""
        return {source.id: source.fault for source in self if source.fault is not None}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every source's collector counters, breaker and budget: ``{id: {"stats", "breaker", "budget"}}``."""
        return {source.id: {"kind": source.kind, **source.resilience.snapshot()} for source in self}

    async def health(self, source_id: str, storage: Storage) -> SourceHealth:
        source = self[source_id]
        stored = await storage.get_state(source_id) or {}
        cursor = stored.get("cursor")
        snapshot = source.resilience.snapshot()
        last = source.last_result
        ok = source.fault is None and snapshot["breaker"]["state"] != "open" and (last is None or last.ok)
        return SourceHealth(
            id=source.id,
            kind=source.kind,
            ok=ok,
            running=source.running,
            breaker=snapshot["breaker"],
            stats=snapshot["stats"],
            budget=snapshot["budget"],
            last_run=None if last is None else last.as_dict(),
            last_success_at=cursor if isinstance(cursor, str) else None,
            fault=source.fault,
        )


def describe(exc: BaseException) -> str:
    """``Type: message`` on one line."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _configure(
    source_id: str,
    table: Any,
    kinds: Mapping[str, type[Source]],
    plugins: Mapping[str, str],
    origin: str,
    failed_plugins: Mapping[str, str],
) -> ConfiguredSource:
    """One table as a ``ConfiguredSource``; every problem lands in its ``fault``."""
    raw: dict[str, Any] = dict(table) if isinstance(table, Mapping) else {}
    kind = raw["kind"] if isinstance(raw.get("kind"), str) else ""
    host = HostKeys.model_construct(kind=kind, policy=Policy(), schedule_minutes=None)
    problems: list[str] = []
    if not isinstance(table, Mapping):
        problems.append(f"{origin}: sources.{source_id}: expected a table")
    else:
        try:
            host = HostKeys.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_lines(origin, source_id, exc, skip="kind"))  # the kind gets its own line below
    source_class = kinds.get(kind)
    config: BaseModel | None = None
    if source_class is None:
        if isinstance(table, Mapping):
            problems.insert(0, _kind_problem(origin, source_id, kind, kinds, failed_plugins))
    else:
        config, config_problems = _plugin_config(source_id, source_class, raw, origin)
        problems.extend(problem for problem in config_problems if problem not in problems)
    configured = ConfiguredSource(
        id=source_id,
        kind=kind,
        source_class=source_class,
        config=config,
        resilience=SourceResilience(source_id, host.policy),
        plugin=plugins.get(kind),
        schedule_minutes=host.schedule_minutes,
        _secrets=tuple(_secret_values(config)) if config is not None else (),
    )
    if problems:
        subject = f"source {source_id!r}" + (f" (plugin {configured.plugin!r})" if configured.plugin else "")
        configured.fault = f"{subject}: " + "; ".join(problems)
        logger.warning("%s", configured.fault)
    return configured


def _kind_problem(
    origin: str, source_id: str, kind: str, kinds: Mapping[str, type[Source]], failed_plugins: Mapping[str, str]
) -> str:
    installed = ", ".join(sorted(kinds)) or "none"
    if failed_plugins:
        installed += "; plugins that failed to load: " + "; ".join(
            f"{name}: {error}" for name, error in sorted(failed_plugins.items())
        )
    if not kind:
        return f"{origin}: sources.{source_id}.kind: required (installed kinds: {installed})"
    return f"{origin}: sources.{source_id}.kind: unknown source kind {kind!r} (installed kinds: {installed})"


def config_of(model: type[BaseModel], table: Mapping[str, Any]) -> BaseModel:
    """``model`` validated from a ``[sources.<id>]`` table: host keys only if the model declares them.

    Raises ``pydantic.ValidationError`` naming each key that does not validate.
    """
    declared = model.model_fields
    return model.model_validate(
        {key: value for key, value in table.items() if key not in _HOST_KEYS or key in declared}
    )


def _plugin_config(
    source_id: str, source_class: type[Source], raw: dict[str, Any], origin: str
) -> tuple[BaseModel | None, list[str]]:
    """The plugin's ``Config`` of the table; host keys are passed only to a ``Config`` that declares them."""
    model = getattr(source_class, "Config", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None, [f"{source_class.__name__}.Config must be a pydantic model, got {model!r}"]
    if inspect.iscoroutinefunction(source_class.collect):  # ``async def`` without ``yield``
        return None, [f"{source_class.__name__}.collect() must be an async generator (async def with yield)"]
    try:
        return config_of(model, raw), []
    except ValidationError as exc:
        return None, _lines(origin, source_id, exc)
    except Exception as exc:  # a validator of the plugin's that raises something else
        return None, [f"{model.__name__} could not read the table: {describe(exc)}"]


def _lines(origin: str, source_id: str, exc: ValidationError, *, skip: str | None = None) -> list[str]:
    """One ``file: sources.<id>.key.path: message`` per problem (values never shown)."""
    return [
        f"{origin}: " + ".".join(str(part) for part in ("sources", source_id, *error["loc"])) + f": {error['msg']}"
        for error in exc.errors()
        if not (skip and error["loc"][:1] == (skip,))
    ]


def _secret_values(model: BaseModel) -> Iterator[str]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if secret:
                yield secret
        elif isinstance(value, BaseModel):
            yield from _secret_values(value)
        elif isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, SecretStr) and item.get_secret_value():
                    yield item.get_secret_value()
