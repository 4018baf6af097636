"""MetricHub source plugin for GitLab: deployments, shipped commits, incidents and webhooks.

Installed, it registers the ``gitlab`` source kind through the ``metrichub`` entry point.
"""

from __future__ import annotations

from metrichub_core import Source, hookimpl
from metrichub_plugin_gitlab._client import GitLabError
from metrichub_plugin_gitlab._config import GitLabConfig
from metrichub_plugin_gitlab._source import GitLabSource

__version__ = "0.1.0"

__all__ = ["GitLabConfig", "GitLabError", "GitLabSource", "__version__", "register_sources"]


for _exported in (GitLabConfig, GitLabError, GitLabSource):
    _exported.__module__ = __name__  # reprs and tracebacks show the public name


@hookimpl
def register_sources() -> list[type[Source]]:
    return [GitLabSource]
