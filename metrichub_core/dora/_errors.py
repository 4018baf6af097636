"""Errors of the DORA engine; each names the parameter that is wrong."""

from __future__ import annotations

__all__ = ["DoraQueryError"]


from metrichub_core.errors import DoraQueryError
