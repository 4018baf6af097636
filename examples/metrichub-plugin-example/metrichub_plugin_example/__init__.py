"""metrichub-plugin-example: a complete sample source plugin for MetricHub.

Installing the distribution is all it takes: its entry point (group ``metrichub``)
names this module, and the host calls the hooks below.
"""

from __future__ import annotations

from metrichub_core import Source, hookimpl
from metrichub_plugin_example._source import ShipitConfig, ShipitSource

__all__ = ["ShipitConfig", "ShipitSource", "register_sources"]


@hookimpl
def register_sources() -> list[type[Source]]:
    return [ShipitSource]
