"""``metrichub serve``: the API on uvicorn, with scheduled collection and graceful shutdown."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import click
import uvicorn
from starlette.applications import Starlette

from metrichub_core.api import create_app
from metrichub_core.cli._common import BadConfig, HubFactory, hub_options
from metrichub_core.cli._connections import protocol_with_header_timeout
from metrichub_core.config import ApiSettings
from metrichub_core.hub import MetricHub
from metrichub_core.redaction import redact_url

__all__ = ["command", "connection_limits", "worker_app"]

GRACEFUL_SHUTDOWN_SECONDS = 30
_LOCK_VARIABLE = "_METRICHUB_SERVE_SCHEDULER_LOCK"  # not METRICHUB_*: that prefix is for settings
_scheduler_lock: int | None = None


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port (0: any free).")
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes (SQL storage only)."
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Server and access log verbosity.",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="One log line per request.")
@hub_options
def command(make_hub: HubFactory, host: str, port: int, workers: int, log_level: str, access_log: bool) -> None:
    """Serve the HTTP API, the dashboard at / and /metrics; collect sources on their schedule_minutes."""
    hub = make_hub()
    for source_id, fault in hub.sources.faults().items():
        click.echo(f"warning: {source_id} will not collect: {redact_url(fault)}", err=True)
    if not hub.settings.api.tokens and hub.settings.api.auth == "writes":
        click.echo("warning: no [api] tokens: anyone who reaches the port can write (and read)", err=True)
    schedules = hub.schedules()
    _configure_logging(log_level, access_log)
    logger = logging.getLogger("metrichub.serve")
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,  # the API writes its own access line, without query strings
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "lifespan": "on",
        "server_header": False,
        **connection_limits(hub.settings.api),
    }
    if schedules:
        logger.info("sources on a schedule: %s", ", ".join(sorted(schedules)))
    if workers == 1:
        uvicorn.Server(uvicorn.Config(create_app(hub), **options)).run()
        return
    if not hub.shared_storage:
        raise BadConfig("memory:// storage cannot be shared by several workers; use sqlite:// or postgresql://")
    _export_for_workers()
    uvicorn.run("metrichub_core.cli.serve:worker_app", factory=True, workers=workers, **options)


def connection_limits(api: ApiSettings) -> dict[str, Any]:
    """uvicorn's options for ``[api]``'s connection limits: slow, idle or too many clients are bounded."""
    return {
        "http": protocol_with_header_timeout(api.header_timeout_seconds),
        "timeout_keep_alive": api.keep_alive_seconds,
        "h11_max_incomplete_event_size": api.max_header_bytes,
        "limit_concurrency": api.max_concurrency,
    }


def worker_app() -> Starlette:
    """The app of one ``--workers`` process; only the first to take the lock runs scheduled collections."""
    _configure_logging(
        os.environ.get("_METRICHUB_SERVE_LOG_LEVEL", "info"), os.environ.get("_METRICHUB_SERVE_ACCESS_LOG") != "0"
    )
    hub = MetricHub.from_config(os.environ.get("METRICHUB_CONFIG") or None)
    return create_app(hub, schedule=_take_scheduler_lock())


def _export_for_workers() -> None:
    """Workers rebuild the hub from the environment: config path, storage override, scheduler lock."""
    context = click.get_current_context()
    config_path: Path | None = context.params.get("config_path")
    if config_path is None and Path("metrichub.toml").is_file():
        config_path = Path("metrichub.toml")
    storage: str | None = context.params.get("storage")
    if config_path is not None:
        os.environ["METRICHUB_CONFIG"] = str(config_path.resolve())
    if storage:
        os.environ["METRICHUB_STORAGE"] = storage
    os.environ["_METRICHUB_SERVE_LOG_LEVEL"] = str(context.params.get("log_level", "info"))
    os.environ["_METRICHUB_SERVE_ACCESS_LOG"] = "1" if context.params.get("access_log", True) else "0"
    identity = f"{os.getpid()}:{config_path}:{storage}".encode()
    lock_name = f"metrichub-scheduler-{hashlib.sha256(identity).hexdigest()[:16]}.lock"
    os.environ[_LOCK_VARIABLE] = str(Path(tempfile.gettempdir()) / lock_name)


def _take_scheduler_lock() -> bool:
    global _scheduler_lock
    path = os.environ.get(_LOCK_VARIABLE)
    if path is None:
        return True
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return False
    _scheduler_lock = descriptor  # held for the life of the process
    return True


def _configure_logging(level: str, access_log: bool = True) -> None:
    logger = logging.getLogger("metrichub")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logging.getLogger("metrichub.api.access").setLevel(logging.NOTSET if access_log else logging.WARNING)
