"""Bearer tokens for write routes: none configured means open; comparison in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from pydantic import SecretStr
from starlette.requests import Request

from metrichub_core.api.errors import ApiError

__all__ = ["BearerAuth"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="metrichub"'}


class BearerAuth:
    """``Authorization: Bearer <token>`` against ``[api] tokens``.

    No or a malformed header is ``401 unauthorized``; a well-formed token that is not
    configured is ``403 forbidden``. The token is never echoed or logged.
    """

    def __init__(self, tokens: Sequence[SecretStr]) -> None:
        self._tokens = [token.get_secret_value().encode() for token in tokens if token.get_secret_value()]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def check(self, request: Request) -> None:
        if not self._tokens:
            return
        header = request.headers.get("authorization")
        if header is None:
            raise ApiError("unauthorized", "This route needs an Authorization: Bearer token.", headers=_CHALLENGE)
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise ApiError("unauthorized", "The Authorization header must be 'Bearer <token>'.", headers=_CHALLENGE)
        if not self.accepts(credentials):
            raise ApiError("forbidden", "The bearer token is not valid for this API.")

    def accepts(self, credentials: str) -> bool:
        presented = credentials.encode("utf-8", "surrogateescape")
        matched = False
        for token in self._tokens:  # no early exit: every token is compared
            matched |= hmac.compare_digest(presented, token)
        return matched
