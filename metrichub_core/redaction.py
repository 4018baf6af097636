"""Secrets out of any text that may hold URLs, before it is shown (API, CLI, logs, error messages).

``redact_url("https://u:p@ss@host/x?access_token=abc&page=2")`` is
``"https://***@host/x?access_token=***&page=2"``: the whole user-info part of every URL (up to its
last ``@``, so an ``@`` or ``/`` in a password leaks nothing) and the value of every query or fragment
parameter whose name looks secret (see ``SECRET_NAME_PARTS``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

__all__ = ["MASK", "SECRET_NAME_PARTS", "is_secret_name", "redact_data", "redact_url"]

MASK = "***"

SECRET_NAME_PARTS = (
    "token",
    "key",
    "secret",
    "passw",
    "pwd",
    "signature",
    "credential",
    "auth",
    "session",
    "private",
)
"""A parameter whose lower-cased name contains one of these is masked (``access_token``, ``apiKey``,
``X-Amz-Signature``, ``client_secret``, ``password``...); so are the exact names ``sig``, ``pass`` and ``code``."""

_SECRET_NAMES = frozenset({"sig", "pass", "code", "pw"})

# A URL runs from its scheme to the first whitespace, quote or angle bracket (as in log lines and messages).
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s\"'<>`]*)")
# User info: "user:password" up to the last "@" before the query, so that an unencoded "@" or "/" in the
# password leaks nothing ("host:8443/" is a port, not a password); else everything before the authority's last "@".
_USER_INFO = re.compile(r"^(?:[^/?#@:]*:(?!\d*(?:[/?#]|$))[^?#]*@|[^/?#]*@)")
_PARAMETER = re.compile(r"(?P<lead>[?&;#])(?P<name>[^=&;#?]+)=(?P<value>[^&;#]*)")


def is_secret_name(name: str) -> bool:
    """Whether a parameter called ``name`` (percent-encoding allowed) likely carries a secret."""
    lowered = unquote(name).strip().lower()
    return lowered in _SECRET_NAMES or any(part in lowered for part in SECRET_NAME_PARTS)


def redact_url(text: str) -> str:
    """``text`` with credentials and secret-looking parameter values of every URL in it replaced by ``***``."""
    if "://" not in text:
        return text
    return _URL.sub(_redact_one, text)


def redact_data(value: Any) -> Any:
    """JSON-like ``value`` (dicts, lists, strings...) with ``redact_url`` applied to every string in it."""
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


def _redact_one(match: re.Match[str]) -> str:
    rest = _USER_INFO.sub(f"{MASK}@", match.group("rest"), count=1)
    authority_end = min((index for index in (rest.find(char) for char in "/?#") if index >= 0), default=len(rest))
    tail = _PARAMETER.sub(_mask_parameter, rest[authority_end:])
    return match.group("scheme") + rest[:authority_end] + tail


def _mask_parameter(match: re.Match[str]) -> str:
    if not is_secret_name(match.group("name")):
        return match.group()
    return f"{match.group('lead')}{match.group('name')}={MASK}"
