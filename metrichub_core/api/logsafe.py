"""Text from a request made safe to log: control characters escaped, so one request writes one log line."""

from __future__ import annotations

import re

__all__ = ["loggable"]

# C0 and C1 controls (CR, LF, NUL, ESC, NEL...), Unicode line and paragraph separators, bidi overrides
# and isolates (they reorder what a terminal shows), and lone surrogates (a handler may fail to encode them).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_MAX_CHARS = 2048


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def loggable(text: object, max_chars: int = _MAX_CHARS) -> str:
    """``text`` with every control character as ``\\xNN``/``\\uNNNN``, cut to ``max_chars``."""
    value = str(text)
    if len(value) > max_chars:
        value = value[:max_chars] + "...(cut)"
    return _UNSAFE.sub(_escape, value)
