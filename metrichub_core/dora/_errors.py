"""Errors of the DORA engine; each names the parameter that is wrong."""

from __future__ import annotations

__all__ = ["DoraQueryError"]


class DoraQueryError(ValueError):
    """A DORA query parameter is invalid; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
