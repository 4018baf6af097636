"""Knowing whether a response has begun: after that, an error page can no longer be sent."""

from __future__ import annotations

from starlette.types import Message, Send

__all__ = ["StartTrackingSend"]


class StartTrackingSend:
    """Wraps ``send`` and records when ``http.response.start`` goes out."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)
