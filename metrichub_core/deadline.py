"""A request's deadline, carried in a context variable so that deep work can stop when it passes.

The API sets it for every request (``[api] request_timeout_seconds``); the storage's
queries and the DORA rules read it: a SQLite read is aborted by its progress handler,
a PostgreSQL statement by ``statement_timeout``, and Python computations call ``check``
between their stages. Work started outside any ``deadline`` block has none.

Threads do not inherit context variables: run work in another thread with
``contextvars.copy_context().run`` (``asyncio.to_thread`` does) so it sees the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from metrichub_core.errors import DeadlineExceeded

__all__ = ["DeadlineExceeded", "Stop", "check", "deadline", "expires_at", "remaining"]

_EXPIRES: ContextVar[float | None] = ContextVar("metrichub_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Run the block with a deadline ``seconds`` from now (an enclosing, earlier deadline still applies)."""
    moment = time.monotonic() + seconds
    outer = _EXPIRES.get()
    token = _EXPIRES.set(moment if outer is None else min(outer, moment))
    try:
        yield
    finally:
        _EXPIRES.reset(token)


def expires_at() -> float | None:
    """The current deadline (``time.monotonic()`` scale), ``None`` without one."""
    return _EXPIRES.get()


def remaining() -> float | None:
    """Seconds left before the current deadline (at least 0), ``None`` without one."""
    moment = _EXPIRES.get()
    return None if moment is None else max(0.0, moment - time.monotonic())


def check() -> None:
    """Raise ``DeadlineExceeded`` when the current deadline has passed."""
    moment = _EXPIRES.get()
    if moment is not None and time.monotonic() >= moment:
        raise DeadlineExceeded("the request's deadline passed; its work was stopped")


class Stop:
    """When one piece of work (e.g. one storage call) must stop: at the deadline current when it
    was made, or as soon as ``stop()`` is called (its caller went away). Safe to read from any thread."""

    def __init__(self) -> None:
        self.expires = _EXPIRES.get()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True

    def due(self) -> bool:
        """Whether the work must stop now (usable as a SQLite progress handler: true aborts the statement)."""
        return self.stopped or (self.expires is not None and time.monotonic() >= self.expires)
