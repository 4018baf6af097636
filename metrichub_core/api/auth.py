"""Bearer tokens: which routes need one (``[api] auth``), which tokens may write; compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Literal

from pydantic import SecretStr
from starlette.requests import Request

from metrichub_core.api.errors import ApiError
from metrichub_core.api.operations import API_PREFIX, Operation
from metrichub_core.config import ApiSettings

__all__ = ["OPEN_PATHS", "BearerAuth", "Scope"]

Scope = Literal["read", "write"]

# Never behind a token: liveness is probed by load balancers; a webhook proves itself with its source's
# signature (senders such as GitHub cannot send a bearer token); the dashboard page holds no data and,
# with auth = "all", asks for a token before it fetches anything (a browser cannot send one to load it).
OPEN_PATHS = frozenset(
    {
        f"{API_PREFIX}/health",
        f"{API_PREFIX}/webhooks/{{source_id}}",
        "/",
        "/assets/dashboard.js",
        "/assets/dashboard.css",
    }
)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="metrichub"'}


class BearerAuth:
    """``Authorization: Bearer <token>`` against ``[api] tokens`` (read and write) and ``read_tokens`` (read only).

    Write routes need a token once any token is configured; with ``reads`` (``auth = "all"``) every
    route but ``OPEN_PATHS`` does, and having no token then refuses everything (fail closed). No or a
    malformed header is ``401 unauthorized`` with a challenge; a token that is not configured, or a read
    token on a write route, is ``403 forbidden``. The token is never echoed or logged.
    """

    def __init__(
        self, tokens: Sequence[SecretStr], read_tokens: Sequence[SecretStr] = (), *, reads: bool = False
    ) -> None:
        self._tokens = _encoded(tokens)
        self._read_tokens = _encoded(read_tokens)
        self.reads = reads

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> BearerAuth:
        return cls(settings.tokens, settings.read_tokens, reads=settings.auth == "all")

    @property
    def enabled(self) -> bool:
        """Whether write routes need a token."""
        return self.reads or bool(self._tokens or self._read_tokens)

    def guards(self, operation: Operation) -> bool:
        """Whether ``operation`` needs a token."""
        if operation.path in OPEN_PATHS:
            return False
        return self.enabled if operation.write else self.reads

    def check(self, request: Request, *, write: bool) -> None:
        header = request.headers.get("authorization")
        if header is None:
            raise ApiError("unauthorized", "This route needs an Authorization: Bearer token.", headers=_CHALLENGE)
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise ApiError("unauthorized", "The Authorization header must be 'Bearer <token>'.", headers=_CHALLENGE)
        scope = self.scope_of(credentials)
        if scope is None:
            raise ApiError("forbidden", "The bearer token is not valid for this API.")
        if write and scope != "write":
            raise ApiError("forbidden", "The bearer token may only read; this route writes.")

    def scope_of(self, credentials: str) -> Scope | None:
        """What the token may do; every configured token is compared, so the time says nothing about which."""
        presented = credentials.encode("utf-8", "surrogateescape")
        writes = _matches(presented, self._tokens)
        reads = _matches(presented, self._read_tokens)
        return "write" if writes else "read" if reads else None

    def accepts(self, credentials: str) -> bool:
        return self.scope_of(credentials) is not None


def _encoded(tokens: Sequence[SecretStr]) -> list[bytes]:
    return [token.get_secret_value().encode() for token in tokens if token.get_secret_value()]


def _matches(presented: bytes, tokens: list[bytes]) -> bool:
    matched = False
    for token in tokens:  # no early exit
        matched |= hmac.compare_digest(presented, token)
    return matched
