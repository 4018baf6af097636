"""``[sources.<id>] kind = "gitlab"``: the validated configuration of one GitLab source."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from metrichub_core import SourceConfig

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_PRODUCTION_ENVIRONMENT", "GitLabConfig", "signing_key"]

DEFAULT_BASE_URL = "https://gitlab.com"
DEFAULT_PRODUCTION_ENVIRONMENT = "^(prod|production)$"

# A GitLab full path: namespace segments (nested groups allowed) and the project, each of
# letters, digits, "_", "-", "." and not starting with "-" or ".".
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_PROJECT = re.compile(rf"^{_SEGMENT}(/{_SEGMENT})+$")
_SIGNING_PREFIX = "whsec_"


class GitLabConfig(SourceConfig):
    """Configuration of a GitLab source (gitlab.com or self-managed).

    Parameters:
        base_url: the instance root (``https://gitlab.example.com``); the REST API is ``{base_url}/api/v4``.
        token: a personal, project or group access token with the ``read_api`` scope.
        auth: how the token is sent: ``private-token`` (``PRIVATE-TOKEN`` header) or
            ``bearer`` (``Authorization: Bearer``, needed for OAuth tokens).
        projects: full project paths, nested groups allowed (``acme/platform/shop``).
        services: project path → service name; a project's default is its last path segment.
        production_environment: a regex (searched, case-insensitive); matching environments, and
            every environment whose GitLab ``tier`` is ``production``, are reported as ``production``.
        incident_label: issues carrying this label are incidents too (incidents always are).
        webhook_secret: the hook's secret token (``X-Gitlab-Token``).
        webhook_signing_token: the hook's signing token (``whsec_…``, GitLab 19+); when set,
            deliveries must carry a valid ``webhook-signature``.
    """

    kind: str = "gitlab"
    base_url: str = Field(DEFAULT_BASE_URL, description="Instance root; the REST API is {base_url}/api/v4.")
    token: SecretStr | None = Field(None, description="Access token with read_api; without one only public projects.")
    auth: Literal["private-token", "bearer"] = Field("private-token", description="Header the token is sent in.")
    projects: list[str] = Field(min_length=1, description='Project full paths, e.g. "acme/platform/shop".')
    services: dict[str, str] = Field(default_factory=dict, description="Project path → service name.")
    production_environment: re.Pattern[str] = Field(
        re.compile(DEFAULT_PRODUCTION_ENVIRONMENT), description="Regex of environment names reported as production."
    )
    incident_label: str | None = Field(None, min_length=1, description="Issues with this label are incidents too.")
    webhook_secret: SecretStr | None = Field(None, description="The webhook's secret token (X-Gitlab-Token).")
    webhook_signing_token: SecretStr | None = Field(None, description="The webhook's signing token (whsec_...).")

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        value = value.rstrip("/")
        if value.endswith("/api/v4"):
            raise ValueError(f"is the instance root, without /api/v4 (got {value!r})")
        return value

    @field_validator("projects")
    @classmethod
    def _check_projects(cls, value: list[str]) -> list[str]:
        unique: list[str] = []
        for project in value:
            project = project.strip().strip("/")
            if not _PROJECT.match(project):
                raise ValueError(f'{project!r} is not a project path: expected "group/project" or "group/sub/project"')
            if project.lower() not in (known.lower() for known in unique):
                unique.append(project)
        return unique

    @field_validator("webhook_signing_token")
    @classmethod
    def _check_signing_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            signing_key(value)  # fails here, at load, rather than on the first delivery
        return value

    @model_validator(mode="after")
    def _check_services(self) -> GitLabConfig:
        for project, service in self.services.items():
            if self.configured_project(project) is None:
                raise ValueError(f"services: {project!r} is not one of the projects")
            if not service.strip():
                raise ValueError(f"services: {project!r} has an empty service name")
        return self

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v4"

    def service_of(self, project: str) -> str:
        """The service a project's events belong to (``services`` or the project's last path segment)."""
        for name, service in self.services.items():
            if name.lower() == project.lower():
                return service
        return project.rsplit("/", 1)[1]

    def configured_project(self, path: str) -> str | None:
        """The configured spelling of ``path`` (GitLab paths are case-insensitive), or ``None``."""
        wanted = path.strip("/").lower()
        return next((project for project in self.projects if project.lower() == wanted), None)

    def environment_of(self, name: str, tier: str | None) -> str:
        """``production`` for the production tier or a name matching ``production_environment``, else the name."""
        if tier == "production" or re.search(self.production_environment.pattern, name, re.IGNORECASE):
            return "production"
        return name


def signing_key(token: SecretStr) -> bytes:
    """The HMAC key of a Standard Webhooks signing token: the base64 after ``whsec_``."""
    text = token.get_secret_value().strip()
    text = text.removeprefix(_SIGNING_PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError('must be "whsec_" followed by base64 (GitLab shows it when the hook is saved)') from None
    if not key:
        raise ValueError('must be "whsec_" followed by base64 (GitLab shows it when the hook is saved)')
    return key
