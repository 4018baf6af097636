"""``[sources.<id>] kind = "git"``: the validated configuration of one git repository source."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from metrichub_core import SourceConfig

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_EXCLUDE_TAGS",
    "DEFAULT_TAGS",
    "GitConfig",
    "is_url",
]

DEFAULT_TAGS = r"^v?\d+(\.\d+)+$"
DEFAULT_EXCLUDE_TAGS = r"(rc|alpha|beta|dev)"
DEFAULT_CACHE_DIR = ".metrichub/git"
DEFAULT_GIT_TIMEOUT_SECONDS = 600.0

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP = re.compile(r"^(?:[^@/\s]+@)?[^/:\s]{2,}:(?!//)")  # git's "user@host:path"; "C:" is a drive, not a host
_HTTP_SCHEMES = ("http", "https")


def is_url(location: str) -> bool:
    """A remote location (``scheme://`` or scp-like ``user@host:path``), not a local path."""
    return bool(_URL.match(location) or (_SCP.match(location) and not os.path.exists(location)))


class GitConfig(SourceConfig):
    """Configuration of a git source: a repository whose release tags are deployments.

    Parameters:
        repository: a local clone or bare repository (path), or a URL cloned into ``cache_dir``
            and fetched before every collection. Credentials written into an HTTP(S) URL
            (``https://user:token@host/...``) are moved to ``username``/``token``.
        base_url: optional prefix for a relative ``repository`` (``base_url = "https://git.example.com"``
            and ``repository = "team/app.git"``); ignored when ``repository`` is absolute or a URL.
        cache_dir: where remote repositories are kept (bare mirrors), relative to the working directory.
        tags: regex (searched case-insensitively) of the tags that are deployments.
        exclude_tags: regex (searched case-insensitively) of matching tags that are not
            (pre-releases); ``""`` excludes nothing.
        service: the service of every event; default the repository's name without ``.git``.
        environment: the environment of every deployment.
        username, token: HTTP(S) credentials for a remote repository, sent as a Basic
            ``Authorization`` header through git's environment (never in a URL or a command line).
        git_timeout_seconds: upper bound of one git command (a clone of a large remote can take minutes).
    """

    kind: str = "git"
    base_url: str = Field("", description="Optional prefix of a relative repository location.")
    repository: str = Field(min_length=1, description="Local path (bare or not) or URL of the repository.")
    cache_dir: str = Field(DEFAULT_CACHE_DIR, min_length=1, description="Where remote repositories are mirrored.")
    tags: str = Field(DEFAULT_TAGS, description="Regex of deployment tags (case-insensitive search).")
    exclude_tags: str = Field(DEFAULT_EXCLUDE_TAGS, description="Regex of excluded tags (pre-releases); empty: none.")
    service: str | None = Field(None, min_length=1, description="Service name; default the repository name.")
    environment: str = Field("production", min_length=1)
    username: str | None = Field(None, description="HTTP(S) user name for a remote repository.")
    token: SecretStr | None = Field(None, description="HTTP(S) password or access token for a remote repository.")
    git_timeout_seconds: float = Field(DEFAULT_GIT_TIMEOUT_SECONDS, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _move_url_credentials(cls, data: Any) -> Any:
        """``https://user:secret@host/x.git`` → ``repository = "https://host/x.git"`` plus ``username``/``token``."""
        if not isinstance(data, dict) or not isinstance(data.get("repository"), str):
            return data
        parts = urlsplit(data["repository"]) if _URL.match(data["repository"]) else None
        if parts is None or parts.scheme.lower() not in _HTTP_SCHEMES or "@" not in parts.netloc:
            return data
        userinfo, _, host = parts.netloc.rpartition("@")
        user, has_password, password = userinfo.partition(":")
        moved = dict(data)
        moved["repository"] = urlunsplit(SplitResult(parts.scheme, host, parts.path, parts.query, parts.fragment))
        if has_password:
            if data.get("token") is not None:
                raise ValueError("repository: the URL carries a password and token is set too; keep one")
            moved["token"] = unquote(password)
            moved.setdefault("username", unquote(user) or None)
        elif user:
            # "https://TOKEN@host/..." (GitHub, Gitea): the user part is the secret
            moved.setdefault("token", unquote(user))
        return moved

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if value and not _URL.match(value):
            raise ValueError(f"base_url must be empty or a URL such as https://git.example.com, got {value!r}")
        return value.rstrip("/")

    @field_validator("tags", "exclude_tags")
    @classmethod
    def _check_regex(cls, value: str, info: Any) -> str:
        try:
            re.compile(value, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"{info.field_name}: invalid regular expression {value!r}: {exc}") from None
        return value

    def location(self) -> str:
        """The repository as git is given it: a URL (without credentials) or an absolute local path."""
        repository = self.repository.strip()
        if is_url(repository) or os.path.isabs(os.path.expanduser(repository)):
            return repository if is_url(repository) else os.path.abspath(os.path.expanduser(repository))
        if self.base_url:
            return f"{self.base_url}/{repository.lstrip('/')}"
        return os.path.abspath(repository)

    def is_remote(self) -> bool:
        return is_url(self.location())

    def service_name(self) -> str:
        """``service``, else the repository's last path segment without ``.git`` (``/srv/app/.git`` → ``app``)."""
        if self.service:
            return self.service
        location = self.location()
        path = urlsplit(location).path if _URL.match(location) else location.split(":", 1)[-1]
        parts = [part for part in PurePosixPath(path.replace("\\", "/")).parts if part not in ("/", "")]
        while parts and parts[-1] == ".git":
            parts.pop()
        name = parts[-1] if parts else "repository"
        return name[: -len(".git")] if name.endswith(".git") and len(name) > 4 else name

    def cache_path(self) -> str:
        """The bare mirror of a remote repository: ``<cache_dir>/<name>-<hash of the URL>.git``."""
        digest = hashlib.sha256(self.location().encode()).hexdigest()[:12]
        return os.path.abspath(os.path.join(os.path.expanduser(self.cache_dir), f"{self.service_name()}-{digest}.git"))

    def is_deployment_tag(self, name: str) -> bool:
        if not re.search(self.tags, name, re.IGNORECASE):
            return False
        return not (self.exclude_tags and re.search(self.exclude_tags, name, re.IGNORECASE))

    def fingerprint(self) -> str:
        """What the saved state depends on: a change here re-derives everything."""
        parts = [self.location(), self.tags, self.exclude_tags, self.service_name(), self.environment]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
