"""uvicorn's HTTP/1.1 protocol with a deadline on each request's line and headers.

uvicorn bounds an idle keep-alive connection (``timeout_keep_alive``) but not a client that
sends its request line and headers a byte at a time: every byte resets the idle timer, and
a new connection has no timer at all, so a few hundred such clients hold every socket
(slowloris). Here a deadline starts when the connection opens and again after each
response; it is cancelled when a request's headers are complete (the body is the app's
business: ``[api] request_timeout_seconds``), and closes the connection when it passes.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HeaderDeadlineProtocol", "protocol_with_header_timeout"]


class HeaderDeadlineProtocol(H11Protocol):
    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's line and headers arrived: its cycle started
            self._disarm()

    def on_response_complete(self) -> None:
        self._arm()  # for the next request on this connection (a pipelined one disarms it at once)
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol_with_header_timeout(seconds: float) -> Any:
    """What uvicorn's ``http=`` option takes (a protocol factory); picklable for ``--workers``."""
    return functools.partial(HeaderDeadlineProtocol, header_timeout=seconds)
