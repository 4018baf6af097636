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


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
@pytest.mark.parametrize("key", ["tokens", "read_tokens"])
def test_a_blank_token_after_expansion_is_an_error_naming_the_key(tmp_path: Path, key: str, value: str) -> None:
    # Today's fail-open: tokens = ["${TOK}"] with TOK empty quietly meant "no token", an open API.
    tables = {"tokens": "", "read_tokens": 'auth = "all"\ntokens = ["rw-token"]\n'}
    path = write(tmp_path, f'[api]\n{tables[key]}{key} = ["ok-token", "${{TOK}}"]\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={"TOK": value})
    assert f"metrichub.toml: api.{key}.1: " in str(raised.value) and "empty" in str(raised.value)


def test_connection_limits_have_defaults_and_bounds(tmp_path: Path) -> None:
    api = load_settings(None, environ={}).api
    assert (api.header_timeout_seconds, api.keep_alive_seconds, api.max_header_bytes, api.max_concurrency) == (
        10.0,
        5,
        16_384,
        512,
    )
    path = write(tmp_path, "[api]\nheader_timeout_seconds = 0\nmax_header_bytes = 10\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})
    assert "api.header_timeout_seconds" in str(raised.value) and "api.max_header_bytes" in str(raised.value)
