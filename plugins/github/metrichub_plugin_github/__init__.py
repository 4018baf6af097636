"""MetricHub source plugin for GitHub: deployments, shipped commits, incidents and webhooks.

Installed, it registers the ``github`` source kind through the ``metrichub`` entry point.
"""

from __future__ import annotations

from metrichub_core import Source, hookimpl
from metrichub_plugin_github._client import GitHubError
from metrichub_plugin_github._config import GitHubConfig
from metrichub_plugin_github._source import GitHubSource

__version__ = "0.1.0"

__all__ = ["GitHubConfig", "GitHubError", "GitHubSource", "__version__", "register_sources"]


for _exported in (GitHubConfig, GitHubError, GitHubSource):
    _exported.__module__ = __name__  # reprs and tracebacks show the public name


@hookimpl
def register_sources() -> list[type[Source]]:
    return [GitHubSource]
