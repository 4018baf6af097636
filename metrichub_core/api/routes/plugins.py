"""``/plugins``: what is installed, what each plugin registers, and what failed to load."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from metrichub_core.api.context import context
from metrichub_core.api.envelope import ok
from metrichub_core.api.operations import Operations

__all__ = ["PluginOut", "Plugins", "operations"]

operations = Operations("plugins")


class PluginOut(BaseModel):
    name: str
    distribution: str | None
    version: str | None
    builtin: bool
    status: Literal["active", "failed", "disabled"]
    hooks: list[str]
    sources: list[str]
    storage: list[str]
    error: str | None


class Plugins(BaseModel):
    plugins: list[PluginOut]
    failed: list[str]


@operations.route("GET", "/plugins", summary="Installed plugins", response=Plugins)
async def list_plugins(request: Request) -> Response:
    """Every plugin (built-ins first): distribution, version, status, hooks, source kinds, storage schemes, error.

    A plugin that failed to load is listed with `status: failed` and its error; the others keep working.
    """
    plugins = [PluginOut.model_validate(info) for info in context(request).hub.plugins.describe()]
    return ok(
        request, Plugins(plugins=plugins, failed=[plugin.name for plugin in plugins if plugin.status == "failed"])
    )
