from __future__ import annotations

from pathlib import Path

import pytest

from metrichub_core.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "metrichub.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, environ={})
    assert settings.storage == "sqlite:///metrichub.db"
    assert settings.api.max_body_bytes == 1_048_576
    assert settings.sources == {}


def test_env_references_are_expanded_and_tokens_stay_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        storage = "sqlite:///x.db"
        [api]
        tokens = ["${API_TOKEN}"]
        [sources.acme-gh]
        kind = "github"
        token = "${GITHUB_TOKEN}"
        repositories = ["acme/api"]
        """,
    )
    settings = load_settings(path, environ={"API_TOKEN": "s3cret-api", "GITHUB_TOKEN": "ghp_s3cret"})
    assert settings.api.tokens[0].get_secret_value() == "s3cret-api"
    assert "s3cret-api" not in repr(settings) and "s3cret-api" not in str(settings.api)
    assert settings.sources["acme-gh"]["token"] == "ghp_s3cret"


def test_missing_env_reference_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[sources.gh]\nkind = "github"\ntoken = "${NOPE}"\n')
    with pytest.raises(ConfigError, match=r"metrichub.toml: sources.gh.token: environment variable NOPE is not set"):
        load_settings(path, environ={})


def test_overrides_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, 'storage = "sqlite:///a.db"\n[api]\nmax_body_bytes = 10\n')
    settings = load_settings(
        path, environ={"METRICHUB_STORAGE": "memory://", "METRICHUB_API__MAX_BODY_BYTES": "2048", "OTHER": "x"}
    )
    assert settings.storage == "memory://"
    assert settings.api.max_body_bytes == 2048


def test_broken_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'storage = "sqlite:///a.db\n')
    with pytest.raises(ConfigError, match=r"metrichub.toml: invalid TOML: .*line 1"):
        load_settings(path, environ={})


def test_wrong_types_name_the_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, '[api]\nmax_body_bytes = "big"\nunknown = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert "metrichub.toml: api.max_body_bytes: Input should be a valid integer" in message
    assert "metrichub.toml: api.unknown: Extra inputs are not permitted" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml", environ={})
