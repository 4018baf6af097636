"""The API's routes, one module per resource; ``OPERATIONS`` lists them all in schema order."""

from __future__ import annotations

from metrichub_core.api.operations import Operation
from metrichub_core.api.routes import dora, drilldown, events, health, plugins, root, sources, webhooks

__all__ = ["OPERATIONS"]

OPERATIONS: list[Operation] = [
    *health.operations.items,
    *plugins.operations.items,
    *sources.operations.items,
    *dora.operations.items,
    *drilldown.operations.items,
    *events.operations.items,
    *webhooks.operations.items,
    *root.operations.items,
]
