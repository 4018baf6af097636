"""Storage URLs: what libpq gets, what MetricHub keeps for itself, and what may be shown.

A ``postgresql://`` (or ``postgres://``) URL is a libpq connection URI. MetricHub reads
and removes its own query parameters (``pool_min_size``, ``pool_max_size``,
``pool_timeout``, ``schema``) and hands the rest to libpq unchanged, adding
``application_name=metrichub`` and ``connect_timeout=10`` unless the URL sets them.
``schema=name`` keeps MetricHub's tables in that schema (created on open) by putting
it first on every connection's ``search_path``.
The password never leaves this module except inside the libpq connection string:
``redact`` is what errors, logs and health show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from metrichub_core.storage.base import StorageError

__all__ = ["DEFAULT_POOL_MAX_SIZE", "DEFAULT_POOL_MIN_SIZE", "DEFAULT_POOL_TIMEOUT", "PostgresURL", "parse_url"]

SCHEMES = ("postgresql", "postgres")
DEFAULT_POOL_MIN_SIZE = 1
DEFAULT_POOL_MAX_SIZE = 10
DEFAULT_POOL_TIMEOUT = 10.0
_MASK = "***"
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
_DEFAULT_PARAMETERS = {"application_name": "metrichub", "connect_timeout": "10"}
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class PostgresURL:
    """A parsed storage URL; ``conninfo`` holds the password, ``redacted`` never does."""

    conninfo: str
    redacted: str
    secrets: tuple[str, ...]
    pool_min_size: int = DEFAULT_POOL_MIN_SIZE
    pool_max_size: int = DEFAULT_POOL_MAX_SIZE
    pool_timeout: float = DEFAULT_POOL_TIMEOUT
    schema: str | None = None

    def scrub(self, text: str) -> str:
        """``text`` with every secret of this URL masked (for foreign error messages)."""
        for secret in self.secrets:
            text = text.replace(secret, _MASK)
        return text

    def __repr__(self) -> str:
        return f"PostgresURL({self.redacted!r})"


def parse_url(url: str) -> PostgresURL:
    """Split ``url`` into the libpq URI and MetricHub's pool settings; raise ``StorageError`` if unusable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise StorageError(f"invalid PostgreSQL URL {redact(url)!r}") from None
    if parts.scheme not in SCHEMES:
        raise StorageError(f"invalid PostgreSQL URL {redact(url)!r}: the scheme must be postgresql:// or postgres://")
    parameters = dict(parse_qsl(parts.query, keep_blank_values=True))
    try:
        pool_min_size = int(parameters.pop("pool_min_size", DEFAULT_POOL_MIN_SIZE))
        pool_max_size = int(parameters.pop("pool_max_size", DEFAULT_POOL_MAX_SIZE))
        pool_timeout = float(parameters.pop("pool_timeout", DEFAULT_POOL_TIMEOUT))
    except ValueError:
        raise StorageError(f"invalid PostgreSQL URL {redact(url)!r}: pool_* parameters must be numbers") from None
    if not 0 <= pool_min_size <= pool_max_size or pool_max_size < 1 or pool_timeout <= 0:
        raise StorageError(
            f"invalid PostgreSQL URL {redact(url)!r}: need 0 <= pool_min_size <= pool_max_size, "
            "pool_max_size >= 1 and pool_timeout > 0"
        )
    schema = parameters.pop("schema", None)
    if schema is not None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise StorageError(
                f"invalid PostgreSQL URL {redact(url)!r}: schema must be a lower-case identifier "
                "(letters, digits, underscores; at most 63)"
            )
        parameters["options"] = f"{parameters.get('options', '')} -c search_path={schema}".strip()
    for key, value in _DEFAULT_PARAMETERS.items():
        parameters.setdefault(key, value)
    # libpq only knows postgresql:// and postgres://; normalise to the former.
    conninfo = f"postgresql://{parts.netloc}{parts.path}?{urlencode(parameters, quote_via=quote)}"
    return PostgresURL(
        conninfo=conninfo,
        redacted=redact(url),
        secrets=_secrets(parts.netloc, parameters),
        pool_min_size=pool_min_size,
        pool_max_size=pool_max_size,
        pool_timeout=pool_timeout,
        schema=schema,
    )


def redact(url: str) -> str:
    """``url`` with its password (in the user info or a ``password=`` parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:{_MASK}@{hosts}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key in _SECRET_PARAMETERS for key, _ in pairs):
            query = urlencode([(key, _MASK if key in _SECRET_PARAMETERS else value) for key, value in pairs])
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def _secrets(netloc: str, parameters: dict[str, str]) -> tuple[str, ...]:
    found: list[str] = []
    userinfo, at, _ = netloc.rpartition("@")
    if at and ":" in userinfo:
        raw = userinfo.split(":", 1)[1]
        found += [raw, unquote(raw)]
    found += [value for key, value in parameters.items() if key in _SECRET_PARAMETERS]
    # Longest first, so a secret containing another is masked whole; empty strings mask nothing.
    return tuple(sorted({secret for secret in found if secret}, key=len, reverse=True))
