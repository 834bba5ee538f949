from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import ConfigurationError, Settings


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
