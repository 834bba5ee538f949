from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings


def test_media_settings_have_defaults(no_env_file: Path) -> None:
    settings = Settings()
    assert settings.media_quota_bytes == 1024**3
    assert settings.media_uploads_per_minute == 30
    assert settings.media_url_ttl == 3600
    assert settings.public_base_url is None


def test_public_base_url_is_read_from_the_environment_without_a_trailing_slash(
    monkeypatch: pytest.MonkeyPatch, no_env_file: Path
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://api.example.com/")
    assert Settings().public_base_url == "https://api.example.com"
    monkeypatch.setenv("PUBLIC_BASE_URL", "")
    assert Settings().public_base_url is None


@pytest.mark.parametrize("value", ["api.example.com", "ftp://api.example.com", "/relative"])
def test_public_base_url_must_be_absolute_http(value: str, no_env_file: Path) -> None:
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL"):
        Settings(public_base_url=value)
