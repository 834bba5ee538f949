from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from core.settings import ConfigurationError, Settings, log_alias_uses


def test_defaults_run_embedded_without_any_configuration(no_env_file: Path) -> None:
    settings = Settings()
    assert settings.environment == "development"
    assert settings.database_url == "sqlite+aiosqlite:///./data/app.db"
    assert settings.redis_url is None
    assert settings.init_data_max_age == 86400
    assert settings.max_upload_bytes == 50 * 1024 * 1024
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u:p@db/app", "postgresql+asyncpg://u:p@db/app"),
        ("postgresql+asyncpg://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
    ],
)
def test_database_urls_from_hosting_platforms_are_accepted(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    assert Settings().database_url == expected


def test_lists_are_read_comma_separated(no_env_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TELEGRAM_IDS", "1, 2,3")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    settings = Settings()
    assert settings.admin_telegram_ids == frozenset({1, 2, 3})
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


def test_wildcard_cors_origin_is_refused(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "*")
    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        Settings()


def test_env_file_is_read(no_env_file: Path) -> None:
    (no_env_file / ".env").write_text("PORT=9123\nREDIS_URL=\n")
    settings = Settings()
    assert settings.port == 9123
    assert settings.redis_url is None


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"BOT_TOKEN": "1:x"}, "SECRET_KEY"),
        ({"BOT_TOKEN": "1:x", "SECRET_KEY": "change-me"}, "SECRET_KEY"),
        ({"BOT_TOKEN": "1:x", "SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": "k" * 40}, "BOT_TOKEN or BOT_ID"),
    ],
)
def test_production_refuses_to_start_naming_the_variable(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=variable):
        Settings()


def test_production_starts_with_a_real_secret_and_a_bot_id(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("BOT_ID", "7342037359")
    assert Settings().bot_id == 7342037359


def test_development_secret_key_is_generated_once_and_kept(no_env_file: Path) -> None:
    first = Settings().secret_key_value()
    assert len(first) >= 32
    assert Settings().secret_key_value() == first
    assert (no_env_file / "data" / ".secret_key").stat().st_mode & 0o077 == 0


def test_abuse_limits_have_defaults_and_must_be_positive(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings()
    assert (settings.sends_per_minute, settings.send_burst) == (60, 30)
    assert (settings.chat_creates_per_hour, settings.chat_create_burst) == (30, 10)
    assert (settings.invites_per_hour, settings.invite_burst) == (100, 200)
    monkeypatch.setenv("SEND_BURST", "5")
    assert Settings().send_burst == 5
    monkeypatch.setenv("SEND_BURST", "0")
    with pytest.raises(ValidationError, match="send_burst"):
        Settings()


# -- Aeon's variable names ----------------------------------------------------------------------

AEON_VALUES = [
    ("TELEGRAM_BOT_TOKEN", "1:aeon", "bot_token", "1:aeon"),
    ("TELEGRAM_WEBHOOK_SECRET", "aeon-hook", "webhook_secret", "aeon-hook"),
    ("ACCESS_TOKEN_EXPIRE_MINUTES", "30", "access_token_ttl", 1800),
    ("UPLOAD_DIR", "uploads", "media_dir", Path("uploads")),
    ("MAX_FILE_SIZE", "52428800", "max_upload_bytes", 52428800),
]


def _value(settings: Settings, field: str) -> object:
    value = getattr(settings, field)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@pytest.mark.parametrize(("alias", "raw", "field", "expected"), AEON_VALUES)
def test_aeon_variable_names_are_read_when_ours_are_not_set(
    no_env_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    alias: str,
    raw: str,
    field: str,
    expected: object,
) -> None:
    monkeypatch.setenv(alias, raw)
    assert _value(Settings(), field) == expected
    with caplog.at_level(logging.INFO, logger="core.settings"):
        log_alias_uses()
    assert f"{field.upper()} read from Aeon's {alias}" in caplog.text


@pytest.mark.parametrize(("alias", "raw", "field", "expected"), AEON_VALUES)
def test_aeon_variable_names_are_read_from_an_env_file(
    no_env_file: Path, alias: str, raw: str, field: str, expected: object
) -> None:
    (no_env_file / ".env").write_text(f"{alias}={raw}\n")
    assert _value(Settings(), field) == expected


def test_our_variable_names_win_over_aeons_and_the_log_says_so(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:aeon")
    monkeypatch.setenv("BOT_TOKEN", "2:ours")
    monkeypatch.setenv("ACCESS_TOKEN_EXPIRE_MINUTES", "30")
    (no_env_file / ".env").write_text("ACCESS_TOKEN_TTL=60\nUPLOAD_DIR=aeon\nMEDIA_DIR=ours\n")
    settings = Settings()
    assert settings.bot_token is not None
    assert settings.bot_token.get_secret_value() == "2:ours"
    assert (settings.access_token_ttl, settings.media_dir) == (60, Path("ours"))
    with caplog.at_level(logging.INFO, logger="core.settings"):
        log_alias_uses()
    for ours, aeons in (
        ("BOT_TOKEN", "TELEGRAM_BOT_TOKEN"),
        ("ACCESS_TOKEN_TTL", "ACCESS_TOKEN_EXPIRE_MINUTES"),
        ("MEDIA_DIR", "UPLOAD_DIR"),
    ):
        assert f"{ours} is set, so Aeon's {aeons} is ignored" in caplog.text
    assert "read from Aeon's" not in caplog.text


def test_aeon_minutes_that_are_not_a_number_are_refused_naming_the_variable(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCESS_TOKEN_EXPIRE_MINUTES", "half an hour")
    with pytest.raises(ConfigurationError, match="ACCESS_TOKEN_EXPIRE_MINUTES"):
        Settings()


def test_cors_origins_may_be_a_json_list_as_aeon_writes_them(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("CORS_ORIGINS", '["*"]')
    with pytest.raises(ValidationError, match="CORS_ORIGINS may not contain"):
        Settings()


def test_redis_is_one_server_a_cluster_or_none(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().redis_target is None
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/2")
    single = Settings().redis_target
    assert single is not None
    assert (single.urls, single.cluster) == (("redis://cache:6379/2",), False)
    monkeypatch.setenv("REDIS_URL", "")
    monkeypatch.setenv("REDIS_CLUSTER_URLS", "redis://a:7001, redis://b:7002/0,redis://c")
    cluster = Settings().redis_target
    assert cluster is not None
    assert cluster.cluster is True
    assert cluster.urls == ("redis://a:7001", "redis://b:7002/0", "redis://c")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("http://a:7001", "not a redis:// or rediss:// URL"),
        ("redis://:7001", "not a redis:// or rediss:// URL"),
        ("redis://a:70001", "invalid port"),
        ("redis://a:7001/3", "names a database"),
        ("redis://a:7001,rediss://b:7002", "same scheme and credentials"),
        ("redis://u:p@a:7001,redis://u:q@b:7002", "same scheme and credentials"),
        ("redis://a:7001,redis://a:7001", "more than once"),
    ],
)
def test_bad_redis_cluster_urls_are_refused_naming_the_problem(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("REDIS_CLUSTER_URLS", value)
    with pytest.raises(ValidationError, match=f"REDIS_CLUSTER_URLS.*{problem}"):
        Settings()


def test_one_redis_or_a_cluster_not_both(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("REDIS_CLUSTER_URLS", "redis://a:7001")
    with pytest.raises(ConfigurationError, match="REDIS_URL and REDIS_CLUSTER_URLS"):
        Settings()


def test_the_assistant_bot_token_key_is_a_fernet_key_or_unset(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_BOT_TOKEN_KEY", "")  # as env.example leaves it
    assert Settings().assistant_bot_token_key is None
    monkeypatch.setenv("ASSISTANT_BOT_TOKEN_KEY", "not-a-key")
    with pytest.raises(ValidationError, match="not a Fernet key"):
        Settings()
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("ASSISTANT_BOT_TOKEN_KEY", key)
    assert Settings().assistant_bot_token_key == SecretStr(key)
