"""A real ``metrichub serve`` process on loopback, with a configuration written for the test."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from metrichub_core.testing.served import METRICHUB, ServedProcess

__all__ = ["METRICHUB", "serve"]


@contextlib.contextmanager
def serve(tmp_path: Path, config: str, env: Mapping[str, str] | None = None, *, demo_days: int = 0) -> Iterator[str]:
    """Write ``config`` (``storage`` is set here), optionally load demo data, serve it; yield the base URL."""
    path = tmp_path / "metrichub.toml"
    path.write_text(f'storage = "sqlite:///{tmp_path / "served.db"}"\n{config}', encoding="utf-8")
    if demo_days:
        command = [*METRICHUB, "demo", "--days", str(demo_days), "--config", str(path)]
        subprocess.run(command, env={**os.environ, **(env or {})}, check=True, capture_output=True, timeout=120)
    with ServedProcess(path, env=env) as served:
        yield served.url
