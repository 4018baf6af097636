"""``[sources.<id>] kind = "github"``: the validated configuration of one GitHub source."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from metrichub_core import SourceConfig
from metrichub_core.sources import HttpBaseUrl

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_INCIDENT_LABEL", "DEFAULT_PRODUCTION_ENVIRONMENT", "GitHubConfig"]

DEFAULT_BASE_URL = "https://api.github.com"
DEFAULT_PRODUCTION_ENVIRONMENT = "^(prod|production)$"
DEFAULT_INCIDENT_LABEL = "incident"

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubConfig(SourceConfig):
    """Configuration of a GitHub source.

    Parameters:
        token: a personal access token or app token (``repo``/``public_repo`` read, or a
            fine-grained token with Deployments, Contents, Issues and Actions read).
        base_url: the REST API root; ``https://HOST/api/v3`` for GitHub Enterprise Server.
        repositories: ``["owner/name", ...]``.
        production_environment: a regex (case-insensitive, as GitHub environment names
            are); matching environments are reported as ``production``.
        deployments_from: ``"deployments"`` (the Deployments API) or ``"workflow_runs"``
            (completed runs of ``workflow``, a workflow file name such as ``deploy.yml``).
        incident_label: issues with this label are incidents.
        services: repository → service name; a repository's default is its name.
        webhook_secret: the secret configured on the GitHub webhook.
    """

    kind: str = "github"
    base_url: HttpBaseUrl = Field(
        DEFAULT_BASE_URL, description="REST API root (GitHub Enterprise: https://HOST/api/v3)."
    )
    token: SecretStr | None = Field(None, description="Access token; without one GitHub allows 60 requests an hour.")
    repositories: list[str] = Field(min_length=1, description='Repositories to collect, as "owner/name".')
    production_environment: str = Field(
        DEFAULT_PRODUCTION_ENVIRONMENT, description="Regex of the environments reported as production."
    )
    deployments_from: Literal["deployments", "workflow_runs"] = "deployments"
    workflow: str | None = Field(None, description='Workflow file name (e.g. "deploy.yml") or id, for workflow_runs.')
    incident_label: str = Field(DEFAULT_INCIDENT_LABEL, min_length=1)
    services: dict[str, str] = Field(default_factory=dict, description="Repository → service name.")
    webhook_secret: SecretStr | None = Field(None, description="Secret that signs webhook deliveries.")

    @field_validator("repositories")
    @classmethod
    def _check_repositories(cls, value: list[str]) -> list[str]:
        unique: list[str] = []
        for repository in value:
            repository = repository.strip()
            if not _REPOSITORY.match(repository):
                raise ValueError(f'{repository!r} is not a repository: expected "owner/name"')
            if repository.lower() not in (known.lower() for known in unique):
                unique.append(repository)
        return unique

    @field_validator("production_environment")
    @classmethod
    def _check_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> GitHubConfig:
        if self.deployments_from == "workflow_runs" and not self.workflow:
            raise ValueError('deployments_from = "workflow_runs" needs workflow = "<file name>.yml"')
        if self.deployments_from == "deployments" and self.workflow:
            raise ValueError('workflow is only used with deployments_from = "workflow_runs"')
        configured = {repository.lower() for repository in self.repositories}
        for repository, service in self.services.items():
            if repository.lower() not in configured:
                raise ValueError(f"services: {repository!r} is not one of the repositories")
            if not service.strip():
                raise ValueError(f"services: {repository!r} has an empty service name")
        return self

    def service_of(self, repository: str) -> str:
        """The service a repository's events belong to (``services`` or the repository name)."""
        for name, service in self.services.items():
            if name.lower() == repository.lower():
                return service
        return repository.split("/", 1)[1]

    def configured_repository(self, full_name: str) -> str | None:
        """The configured spelling of ``full_name``, or ``None`` when it is not collected."""
        for repository in self.repositories:
            if repository.lower() == full_name.lower():
                return repository
        return None

    def environment_of(self, name: str) -> str:
        """``production`` for names matching ``production_environment``, else the name itself."""
        if re.search(self.production_environment, name, re.IGNORECASE):
            return "production"
        return name
