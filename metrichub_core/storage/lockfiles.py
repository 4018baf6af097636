"""Per-source collection locks for processes on one host: one ``flock``-ed file per source.

The kernel releases a ``flock`` when its process dies, so a killed collection never leaves
a source locked. The file holds a line naming the holder, for the message of the process
that finds the lock taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["LockFiles"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class LockFiles:
    """``lock(name)`` and ``holder(name)`` over the files of one directory (created on first use)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @contextlib.asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[bool]:
        """Hold ``name``'s lock for the block if it is free; yield whether this process holds it (never waits)."""
        descriptor = await asyncio.to_thread(self._try_lock, self._path(name))
        if descriptor is None:
            yield False
            return
        try:
            yield True
        finally:
            await asyncio.to_thread(_release, descriptor)

    async def holder(self, name: str) -> str | None:
        """The holder's line, or ``None`` when nobody holds ``name``'s lock."""
        return await asyncio.to_thread(self._holder, self._path(name))

    def _path(self, name: str) -> Path:
        # Readable for the operator, unique whatever characters the name has.
        digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
        return self.directory / f"{_UNSAFE.sub('_', name)[:60]}-{digest}.lock"

    def _try_lock(self, path: Path) -> int | None:
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        since = datetime.now(UTC).isoformat(timespec="seconds")
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()} on {socket.gethostname()} since {since}\n".encode(), 0)
        return descriptor

    def _holder(self, path: Path) -> str | None:
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return os.pread(descriptor, 512, 0).decode(errors="replace").strip() or "another process"
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            return None
        finally:
            os.close(descriptor)


def _release(descriptor: int) -> None:
    try:
        os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # closing the last descriptor releases the flock
