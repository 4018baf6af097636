"""MetricHub source plugin for git: deployments from release tags, lead times from the commit graph.

Installed, it registers the ``git`` source kind through the ``metrichub`` entry point.
"""

from __future__ import annotations

from metrichub_core import Source, hookimpl
from metrichub_plugin_git._config import GitConfig
from metrichub_plugin_git._runner import GitError
from metrichub_plugin_git._source import CollectionSummary, GitSource

__version__ = "0.1.0"

__all__ = ["CollectionSummary", "GitConfig", "GitError", "GitSource", "__version__", "register_sources"]


for _exported in (CollectionSummary, GitConfig, GitError, GitSource):
    _exported.__module__ = __name__  # reprs and tracebacks show the public name


@hookimpl
def register_sources() -> list[type[Source]]:
    return [GitSource]
