"""Registers the built-in ``demo`` source."""

from __future__ import annotations

from metrichub_core.demo import DemoSource
from metrichub_core.hookspecs import hookimpl
from metrichub_core.sources import Source


@hookimpl
def register_sources() -> list[type[Source]]:
    return [DemoSource]
