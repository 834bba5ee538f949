from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import Settings, development_bot_token
from core.telegram_auth import validate_init_data

ROOT = Path(__file__).resolve().parents[2]
BOT_TOKEN = "7000000002:AAF-devtools-test-token-0123456789abc"
BOT_TOKEN_SHAPE = re.compile(r"[0-9]{10}:[A-Za-z0-9_-]{35}")


def sign_init_data_cli(cwd: Path, *args: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "core.devtools", "sign-init-data", *args],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    return lines[0]


def test_signs_with_the_configured_bot_token(tmp_path: Path) -> None:
    raw = sign_init_data_cli(
        tmp_path,
        "--user-id",
        "1001",
        "--first-name",
        "Alice",
        "--username",
        "alice",
        "--last-name",
        "Liddell",
        "--language-code",
        "ru",
        "--start-param",
        "room 7",
        BOT_TOKEN=BOT_TOKEN,
        ENVIRONMENT="test",
    )
    data = validate_init_data(raw, bot_token=BOT_TOKEN, max_age=60)
    assert data.user is not None
    assert data.user.id == 1001
    assert data.user.first_name == "Alice"
    assert data.user.username == "alice"
    assert data.user.last_name == "Liddell"
    assert data.user.language_code == "ru"
    assert data.start_param == "room 7"
    assert data.query_id
    assert not (tmp_path / "data").exists()


def test_without_a_bot_token_signs_with_the_kept_development_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = sign_init_data_cli(
        tmp_path, "--user-id", "1002", "--first-name", "Bob", ENVIRONMENT="development"
    )
    second = sign_init_data_cli(
        tmp_path, "--user-id", "1003", "--first-name", "Carol", ENVIRONMENT="development"
    )
    token_file = tmp_path / "data" / ".dev_bot_token"
    assert token_file.is_file()

    monkeypatch.chdir(tmp_path)
    token = development_bot_token()
    assert token == token_file.read_text().strip()
    first_data = validate_init_data(first, bot_token=token, max_age=60)
    second_data = validate_init_data(second, bot_token=token, max_age=60)
    assert first_data.user is not None
    assert (first_data.user.id, first_data.user.first_name) == (1002, "Bob")
    assert first_data.user.language_code == "en"
    assert first_data.start_param is None
    assert second_data.user is not None
    assert second_data.user.id == 1003
    assert first_data.query_id != second_data.query_id


def test_a_subcommand_is_required(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "core.devtools"],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""


def test_development_bot_token_is_bot_token_shaped_and_kept(no_env_file: Path) -> None:
    token = development_bot_token()
    assert BOT_TOKEN_SHAPE.fullmatch(token)
    assert development_bot_token() == token
    path = no_env_file / "data" / ".dev_bot_token"
    assert path.read_text() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_bot_token_value_prefers_the_configured_token(no_env_file: Path) -> None:
    assert Settings(bot_token=BOT_TOKEN).bot_token_value() == BOT_TOKEN
    assert not (no_env_file / "data").exists()


@pytest.mark.parametrize("env_bot_token", [None, ""])
def test_bot_token_value_in_development_falls_back_to_the_development_token(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch, env_bot_token: str | None
) -> None:
    if env_bot_token is not None:
        monkeypatch.setenv("BOT_TOKEN", env_bot_token)
    assert Settings().bot_token_value() == development_bot_token()


def test_bot_token_value_is_none_for_third_party_or_outside_development(
    no_env_file: Path,
) -> None:
    assert Settings(bot_id=7342037359).bot_token_value() is None
    assert Settings(environment="test").bot_token_value() is None
    assert not (no_env_file / "data").exists()
