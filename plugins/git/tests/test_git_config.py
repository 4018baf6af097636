"""Configuration: defaults, regex errors naming their key, locations, ``base_url`` mapping, plugin registration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from metrichub_plugin_git import GitConfig, GitSource
from pydantic import ValidationError

from metrichub_core.plugins import PluginHost


def test_defaults(tmp_path: Path) -> None:
    config = GitConfig.model_validate({"kind": "git", "repository": str(tmp_path / "flask")})
    assert (config.tags, config.exclude_tags) == (r"^v?\d+(\.\d+)+$", "(rc|alpha|beta|dev)")
    assert config.environment == "production" and config.base_url == ""
    assert config.service_name() == "flask"
    assert config.cache_dir == ".metrichub/git"
    assert [name for name in ["v1.2", "1.2.3", "V2.0", "v1.2rc1", "2.0.0-Beta", "v1", "release"]
            if config.is_deployment_tag(name)] == ["v1.2", "1.2.3", "V2.0"]  # fmt: skip


@pytest.mark.parametrize("key", ["tags", "exclude_tags"])
def test_bad_regex_names_the_key(key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        GitConfig.model_validate({"kind": "git", "repository": "/srv/app", key: "v(1"})
    [error] = caught.value.errors()
    assert error["loc"] == (key,)
    assert key in error["msg"] and "invalid regular expression" in error["msg"]


def test_required_and_unknown_keys() -> None:
    with pytest.raises(ValidationError) as caught:
        GitConfig.model_validate({"kind": "git"})
    assert caught.value.errors()[0]["loc"] == ("repository",)
    with pytest.raises(ValidationError) as caught:
        GitConfig.model_validate({"kind": "git", "repository": "/x", "branch": "main"})
    assert caught.value.errors()[0]["loc"] == ("branch",)
    with pytest.raises(ValidationError, match="base_url"):
        GitConfig.model_validate({"kind": "git", "repository": "x", "base_url": "not a url"})


@pytest.mark.parametrize(
    ("repository", "base_url", "location", "service"),
    [
        ("https://git.example.com/team/app.git", "", "https://git.example.com/team/app.git", "app"),
        ("git@git.example.com:team/app.git", "", "git@git.example.com:team/app.git", "app"),
        ("team/app.git", "https://git.example.com/", "https://git.example.com/team/app.git", "app"),
        ("/srv/git/flask.git", "https://ignored.example.com", "/srv/git/flask.git", "flask"),
        ("/srv/app/.git", "", "/srv/app/.git", "app"),
    ],
)
def test_locations(repository: str, base_url: str, location: str, service: str) -> None:
    config = GitConfig.model_validate({"kind": "git", "repository": repository, "base_url": base_url})
    assert config.location() == location
    assert config.service_name() == service
    assert config.is_remote() == ("://" in location or "@" in location)


def test_relative_path_is_relative_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = GitConfig.model_validate({"kind": "git", "repository": "checkouts/app"})
    assert config.location() == os.path.join(str(tmp_path), "checkouts", "app")
    assert config.cache_path().startswith(os.path.join(str(tmp_path), ".metrichub", "git"))


def test_url_password_and_token_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="keep one"):
        GitConfig.model_validate({"kind": "git", "repository": "https://u:p@h.example/x.git", "token": "t"})


def test_the_plugin_registers_the_git_kind() -> None:
    host = PluginHost.load()
    assert host.source_kinds().get("git") is GitSource
