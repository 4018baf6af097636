"""``[sources.<id>] kind = "jenkins"``: the validated configuration of one Jenkins source."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import unquote

from pydantic import Field, SecretStr, field_validator, model_validator

from metrichub_core import SourceConfig
from metrichub_core.sources import HttpBaseUrl

__all__ = ["DEFAULT_BRANCHES", "DEFAULT_ENVIRONMENT_PARAMETER", "DEFAULT_PRODUCTION_ENVIRONMENT", "JenkinsConfig"]

DEFAULT_PRODUCTION_ENVIRONMENT = "^(prod|production)$"
DEFAULT_ENVIRONMENT_PARAMETER = "ENVIRONMENT"
DEFAULT_BRANCHES = "^(main|master)$"


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


class JenkinsConfig(SourceConfig):
    """Configuration of a Jenkins source.

    Parameters:
        base_url: the Jenkins root URL (``https://jenkins.example.com`` or ``…/jenkins``).
        username, api_token: HTTP basic auth (a user's API token), sent with every request.
        jobs: full job names, ``/`` between folders (``platform/shop/main``); a folder or a
            multibranch project expands to the jobs in it.
        services: job (as listed in ``jobs``) → service name; default: the job's last name
            segment (for branches of a multibranch project: the project's name).
        environment_parameter: the build parameter naming the environment; builds without it
            deploy to ``production``.
        production_environment: a regex (searched, case-insensitive); matching parameter values
            are reported as ``production``.
        unstable: what an ``UNSTABLE`` build is: ``"failure"`` or ``"success"``.
        deploy_stage: optional regex of a pipeline stage name; a pipeline build is then a
            deployment only if such a stage ran.
        branches: regex of the branch names of a multibranch project that are collected.
        repositories: job → regex of its own repository's remote URL, to pick its revision and
            change sets when a build checks out several repositories (shared libraries).
    """

    kind: str = "jenkins"
    base_url: HttpBaseUrl = Field(description="Jenkins root URL.")
    username: str | None = Field(None, min_length=1, description="User the API token belongs to.")
    api_token: SecretStr | None = Field(None, description="The user's API token (HTTP basic auth).")
    jobs: list[str] = Field(min_length=1, description='Full job names, "/" between folders.')
    services: dict[str, str] = Field(default_factory=dict, description="Job → service name.")
    environment_parameter: str = Field(DEFAULT_ENVIRONMENT_PARAMETER, min_length=1)
    production_environment: str = Field(DEFAULT_PRODUCTION_ENVIRONMENT)
    unstable: Literal["failure", "success"] = "failure"
    deploy_stage: str | None = Field(None, min_length=1, description="Regex of the deploy stage's name.")
    branches: str = Field(DEFAULT_BRANCHES, description="Regex of the multibranch branches collected.")
    repositories: dict[str, str] = Field(default_factory=dict, description="Job → regex of its own remote URL.")

    @field_validator("jobs")
    @classmethod
    def _check_jobs(cls, value: list[str]) -> list[str]:
        unique: list[str] = []
        for job in value:
            name = job.strip().strip("/")
            segments = name.split("/")
            if not name or any(not segment.strip() for segment in segments):
                raise ValueError(f"{job!r} is not a job full name: expected names separated by '/'")
            if segments[0] == "job" and len(segments) > 1:
                raise ValueError(f"{job!r} looks like a URL path: give the full name ('a/b'), not 'job/a/job/b'")
            if name not in unique:
                unique.append(name)
        return unique

    @field_validator("production_environment", "branches", "deploy_stage")
    @classmethod
    def _check_regex(cls, value: str | None) -> str | None:
        return None if value is None else _regex(value)

    @field_validator("services", "repositories")
    @classmethod
    def _normalise_job_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return {job.strip().strip("/"): mapped for job, mapped in value.items()}

    @field_validator("repositories")
    @classmethod
    def _check_repository_regexes(cls, value: dict[str, str]) -> dict[str, str]:
        return {job: _regex(pattern) for job, pattern in value.items()}

    @model_validator(mode="after")
    def _check_consistency(self) -> JenkinsConfig:
        if (self.username is None) != (self.api_token is None):
            missing = "api_token" if self.api_token is None else "username"
            raise ValueError(f"{missing}: username and api_token go together (HTTP basic auth)")
        for key, mapping in (("services", self.services), ("repositories", self.repositories)):
            for job, value in mapping.items():
                if job not in self.jobs:
                    raise ValueError(f"{key}: {job!r} is not one of the jobs")
                if not value.strip():
                    raise ValueError(f"{key}: {job!r} has an empty value")
        return self

    def service_of(self, entry: str, default: str) -> str:
        """The service of a job found under the configured ``entry`` (``services`` or ``default``)."""
        return self.services.get(entry, default)

    def environment_of(self, name: str | None) -> str:
        """``production`` for a missing parameter or a match of ``production_environment``, else the value."""
        if name is None or not name.strip():
            return "production"
        if re.search(self.production_environment, name, re.IGNORECASE):
            return "production"
        return name

    def wants_branch(self, name: str) -> bool:
        """Whether a branch job of a multibranch project is collected (``branches``, on the decoded name)."""
        return re.search(self.branches, unquote(name)) is not None
