"""Every error MetricHub raises on purpose, under one root::

    MetricHubError
    ├── ConfigError              the configuration cannot be used (file, key path, what was expected)
    ├── PluginError              a plugin failed to load or register (strict mode)
    ├── SourceError
    │   ├── UnknownSource        no source with that id is configured          (also a LookupError)
    │   ├── SourceFault          a source's table or plugin code is at fault
    │   ├── UpstreamError        the upstream refused in a way retrying cannot fix (``status_code``)
    │   ├── WebhookRejected      a delivery's signature or payload is refused; nothing stored
    │   └── WebhookNotSupported  the source takes no webhooks
    ├── HTTPLayerError           the policy-wrapped client gave up          (also an httpx.RequestError)
    │   └── RetriesExhausted, RateLimitWaitTooLong, CircuitOpen, PaginationLoop
    ├── ResolveError             an incident cannot be resolved as asked
    │   ├── UnknownIncident      no stored incident has that id (and source)   (also a LookupError)
    │   └── ResolveConflict      resolved at another time, or several sources report the id
    ├── StorageError             a backend could not complete an operation; nothing of it was written
    │   ├── UnknownStorageScheme no installed backend handles the URL's scheme
    │   └── MigrationError       the database's schema cannot be used by this version
    ├── DoraQueryError           a DORA query parameter is invalid          (also a ValueError)
    │   └── UnknownProfile       the named benchmark profile does not exist
    └── DeadlineExceeded         the work of a request ran past its deadline (``metrichub_core.deadline``)

The HTTP layer's classes live in ``metrichub_core.resilience.errors`` (they need httpx);
``metrichub_core`` exports them all.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "DeadlineExceeded",
    "DoraQueryError",
    "MetricHubError",
    "MigrationError",
    "PluginError",
    "ResolveConflict",
    "ResolveError",
    "SourceError",
    "SourceFault",
    "StorageError",
    "UnknownIncident",
    "UnknownProfile",
    "UnknownSource",
    "UnknownStorageScheme",
    "UpstreamError",
    "WebhookNotSupported",
    "WebhookRejected",
]


class MetricHubError(Exception):
    """The root of every error MetricHub raises on purpose."""


class ConfigError(MetricHubError):
    """The configuration cannot be used; the message says where and why."""


class PluginError(MetricHubError):
    """A plugin failed to load or to register (raised only in strict mode)."""


class SourceError(MetricHubError):
    """Something about one configured source."""


class UnknownSource(SourceError, LookupError):
    """No source with that id is configured."""

    def __init__(self, source_id: str, known: Sequence[str]) -> None:
        listing = ", ".join(sorted(known)) or "none"
        super().__init__(f"no source {source_id!r} is configured (configured: {listing})")
        self.source_id = source_id

    def __str__(self) -> str:
        return str(self.args[0])


class SourceFault(SourceError):
    """A configured source cannot be used: its table, its plugin or its ``Source`` class is at fault."""


class UpstreamError(SourceError):
    """The upstream answered with an error the source cannot work around; ``status_code`` when it was HTTP.

    Plugins subclass it (``GitHubError``, ``GitLabError``...) so callers can catch one upstream or all.
    """

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class WebhookRejected(SourceError):
    """A webhook whose signature or payload the source refuses; nothing is stored."""


class WebhookNotSupported(SourceError):
    """The source does not accept webhooks."""


class ResolveError(MetricHubError):
    """An incident cannot be resolved as asked."""


class UnknownIncident(ResolveError, LookupError):
    """No stored incident has that id (from that source)."""


class ResolveConflict(ResolveError):
    """The incident is resolved at another time already, or several sources report its id; ``details`` says which."""

    def __init__(self, message: str, details: dict[str, object]) -> None:
        super().__init__(message)
        self.details = details


class StorageError(MetricHubError):
    """A backend could not complete an operation; nothing of it was written."""


class UnknownStorageScheme(StorageError):
    """No installed backend handles the storage URL's scheme."""


class MigrationError(StorageError):
    """The database's schema cannot be used by this version (written by a newer MetricHub, or a migration failed)."""


class DoraQueryError(MetricHubError, ValueError):
    """A DORA query parameter is invalid; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


class UnknownProfile(DoraQueryError):
    """The named benchmark profile does not exist."""


class DeadlineExceeded(MetricHubError):
    """The work of a request ran past its deadline and was stopped (see ``metrichub_core.deadline``)."""
