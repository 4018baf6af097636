"""What every subcommand shares: ``--config``/``--storage`` and turning errors into exit codes."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from metrichub_core.config import ConfigError
from metrichub_core.hub import MetricHub
from metrichub_core.redaction import redact_url
from metrichub_core.storage.base import StorageError

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "BadConfig", "HubFactory", "hub_options", "run_async"]

EXIT_FAILED = 1
EXIT_USAGE = 2

T = TypeVar("T")


class BadConfig(click.ClickException):
    """A configuration or storage URL problem: exit status 2, like other usage errors."""

    exit_code = EXIT_USAGE


HubFactory = Callable[[], MetricHub]


def hub_options(command: Callable[..., T]) -> Callable[..., T]:
    """Add ``--config`` and ``--storage``; the command receives ``make_hub``."""

    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="METRICHUB_CONFIG",
        help="Path to metrichub.toml [env: METRICHUB_CONFIG; default: ./metrichub.toml if present].",
    )
    @click.option("--storage", help="Storage URL, overriding the config (e.g. sqlite:///metrichub.db, memory://).")
    @functools.wraps(command)
    def wrapper(config_path: Path | None, storage: str | None, **kwargs: Any) -> T:
        if config_path is None and Path("metrichub.toml").is_file():
            config_path = Path("metrichub.toml")

        def make_hub() -> MetricHub:
            try:
                return MetricHub.from_config(config_path, storage=storage)
            except (ConfigError, StorageError) as exc:
                raise BadConfig(redact_url(str(exc))) from None

        return command(make_hub=make_hub, **kwargs)

    return wrapper


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; usage and config errors exit with status 2."""
    try:
        return asyncio.run(coroutine)
    except (ConfigError, StorageError) as exc:
        raise BadConfig(redact_url(str(exc))) from None
