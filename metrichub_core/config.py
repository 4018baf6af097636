"""``metrichub.toml``: loading, ``${ENV}`` expansion, ``METRICHUB_*`` overrides.

Every error names the file, the key path and what was expected.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from metrichub_core.errors import ConfigError
from metrichub_core.storage.base import DEFAULT_DELIVERY_RETENTION, DeliveryRetention

__all__ = ["DEFAULT_STORAGE", "ApiSettings", "ConfigError", "Settings", "load_settings", "validation_message"]

DEFAULT_STORAGE = "sqlite:///metrichub.db"
ENV_PREFIX = "METRICHUB_"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _not_blank(token: SecretStr) -> SecretStr:
    # `tokens = ["${TOK}"]` with TOK set to "" must not quietly mean "no token": that is an open API.
    if not token.get_secret_value().strip():
        raise ValueError("the token is empty or only whitespace (is the ${VAR} it names empty?)")
    return token


Token = Annotated[SecretStr, AfterValidator(_not_blank)]
"""A bearer token: never blank."""


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auth: Literal["writes", "all"] = Field(
        "writes", description='Routes that need a token: "writes", or "all" (but health, webhooks, the dashboard page).'
    )
    tokens: list[Token] = Field(
        default_factory=list, description='Bearer tokens that may read and write; none (with auth = "writes") = open.'
    )
    read_tokens: list[Token] = Field(
        default_factory=list, description='Bearer tokens that may only read (403 on writes); needs auth = "all".'
    )
    max_body_bytes: int = Field(1_048_576, gt=0, description="Larger request bodies get 413.")
    request_timeout_seconds: float = Field(
        30.0, gt=0, description="Slower requests get 504, and their work (queries, DORA rules) stops."
    )
    max_trend_buckets: int = Field(
        1_000, ge=1, description="A DORA trend with more buckets gets 400 (its work and its answer grow with them)."
    )
    # How `metrichub serve` treats connections (uvicorn): slow or idle clients cannot hold a socket for long.
    header_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="A connection whose request line and headers take longer is closed."
    )
    keep_alive_seconds: int = Field(5, ge=1, le=300, description="An idle keep-alive connection is closed after this.")
    max_header_bytes: int = Field(
        16_384, ge=1_024, le=1_048_576, description="An unfinished request head held past this gets 400 and a close."
    )
    max_concurrency: int = Field(
        512, ge=1, description="Open connections or requests in flight beyond this get 503 (per worker)."
    )
    # Webhook delivery ids are remembered (in the storage, shared by every worker) to answer redeliveries.
    webhook_delivery_seconds: float = Field(
        DEFAULT_DELIVERY_RETENTION.seconds, gt=0, description="How long a webhook delivery id is remembered."
    )
    webhook_delivery_max_ids: int = Field(
        DEFAULT_DELIVERY_RETENTION.max_ids, ge=1, description="Webhook delivery ids remembered at most (the newest)."
    )

    @property
    def delivery_retention(self) -> DeliveryRetention:
        return DeliveryRetention(seconds=self.webhook_delivery_seconds, max_ids=self.webhook_delivery_max_ids)

    @model_validator(mode="after")
    def _fails_closed(self) -> ApiSettings:
        # Never an API the operator believes closed but is open: both mistakes are refused at load.
        if self.auth == "all" and not any(token.get_secret_value() for token in [*self.tokens, *self.read_tokens]):
            raise ValueError('api.auth = "all" needs at least one token in api.tokens or api.read_tokens')
        if self.auth == "writes" and self.read_tokens:
            raise ValueError('api.read_tokens only apply with api.auth = "all" (with "writes" every read is open)')
        return self


class Settings(BaseModel):
    """The whole configuration; source tables are validated later by their plugin's ``Config``."""

    model_config = ConfigDict(extra="forbid")

    storage: str = DEFAULT_STORAGE
    api: ApiSettings = Field(default_factory=ApiSettings)
    sources: dict[str, dict[str, Any]] = Field(default_factory=dict)


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (if given), apply ``METRICHUB_*`` overrides, expand ``${VAR}``, validate."""
    environ = os.environ if environ is None else environ
    origin = str(path) if path is not None else "defaults"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{origin}: file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{origin}: invalid TOML: {exc}") from None
    _apply_overrides(raw, environ)
    expanded = _expand(raw, environ, origin, ())
    try:
        return Settings.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(validation_message(origin, exc)) from None


def validation_message(origin: str, exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> str:
    """One line per problem: ``file: key.path: what was expected``."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in (*prefix, *error["loc"])) or "(root)"
        lines.append(f"{origin}: {where}: {error['msg']}")
    return "\n".join(lines)


def _apply_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """``METRICHUB_API__MAX_BODY_BYTES=10`` sets ``api.max_body_bytes``; values parse as TOML when they can."""
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        table = raw
        for key in keys[:-1]:
            table = table.setdefault(key, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{name}: {'.'.join(keys)} cannot be set: {key} is not a table")
        table[keys[-1]] = _parse_value(value)


# Variables of ours that are not settings.
_NOT_SETTINGS = frozenset({"METRICHUB_CONFIG", "METRICHUB_LOAD_PLUGINS", "METRICHUB_DISABLE_PLUGINS",
                           "METRICHUB_TRACE_PLUGINS", "METRICHUB_STRICT_PLUGINS", "METRICHUB_API_TOKEN"})  # fmt: skip


def _parse_value(value: str) -> Any:
    try:
        return tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        return value


def _expand(value: Any, environ: Mapping[str, str], origin: str, path: tuple[str | int, ...]) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                where = ".".join(str(part) for part in path)
                raise ConfigError(f"{origin}: {where}: environment variable {name} is not set")
            return environ[name]

        return _ENV_REFERENCE.sub(substitute, value)
    if isinstance(value, dict):
        return {key: _expand(item, environ, origin, (*path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, environ, origin, (*path, index)) for index, item in enumerate(value)]
    return value
