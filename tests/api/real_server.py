"""A real ``metrichub serve`` process on loopback for tests that need real sockets and real clients."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

METRICHUB = [sys.executable, "-c", "from metrichub_core.cli import main; main()"]


@contextlib.contextmanager
def serve(tmp_path: Path, config: str, env: Mapping[str, str] | None = None, *, demo_days: int = 0) -> Iterator[str]:
    """Write ``config`` (``storage`` is set here), optionally load demo data, serve it; yield the base URL."""
    path = tmp_path / "metrichub.toml"
    path.write_text(f'storage = "sqlite:///{tmp_path / "served.db"}"\n{config}', encoding="utf-8")
    environ = {**os.environ, **(env or {}), "METRICHUB_CONFIG": str(path), "PYTHONUNBUFFERED": "1"}
    if demo_days:
        subprocess.run(
            [*METRICHUB, "demo", "--days", str(demo_days)], env=environ, check=True, capture_output=True, timeout=120
        )
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*METRICHUB, "serve", "--host", "127.0.0.1", "--port", "0", "--no-access-log"],
            env=environ,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield wait_for_url(process, log)
    finally:
        stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (a graceful uvicorn shutdown), then SIGKILL if it has not exited within 30 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def wait_for_url(process: subprocess.Popen[str], log: Path) -> str:
    """The base URL from uvicorn's ``Uvicorn running on ...`` line in ``log``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log.read_text())
        if match:
            return match.group(1)
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.1)
    raise AssertionError(f"serve did not start:\n{log.read_text()}")
