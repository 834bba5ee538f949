"""The commands a user runs, as processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import TEST_REDIS_URL
from tests.media.samples import png_bytes
from tests.support.processes import ROOT, server_process
from tests.support.telegram import TEST_BOT_TOKEN, auth_headers, init_data_for


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "BOT_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
            "ENVIRONMENT": "development",
        }
    )
    env.update(extra)
    return env


MIGRATE = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"]


def _migrate(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


def test_bot_exits_cleanly_when_not_configured(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "not configured" in result.stderr


def test_migrate_then_serve_on_the_embedded_default(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _migrate(MIGRATE, tmp_path, env)
    with server_process([sys.executable, "-m", "webapp_api"], tmp_path, env) as (server, process):
        response = httpx.get(f"{server.base_url}/api/v1/health", timeout=5)
        assert response.json()["status"] == "healthy"
    assert "BOT_TOKEN is not set" in process.output


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_an_aeon_deployment_switches_with_its_env_file_and_the_procfile(tmp_path: Path) -> None:
    """The `.env` an Aeon deployment has (its variable names, its JSON list of origins, its
    extra variables), the Procfile's release step, then its web process on $PORT."""
    (tmp_path / ".env").write_text(
        "\n".join(
            [
                f"DATABASE_URL=sqlite:///{tmp_path / 'aeon.db'}",
                f"TELEGRAM_BOT_TOKEN={TEST_BOT_TOKEN}",
                "TELEGRAM_WEBHOOK_SECRET=aeon_webhook_secret",
                "SECRET_KEY=an-aeon-secret-key-that-is-long-enough-to-sign",
                "ALGORITHM=HS256",
                "ACCESS_TOKEN_EXPIRE_MINUTES=30",
                "UPLOAD_DIR=uploads",
                "MAX_FILE_SIZE=1000",
                'CORS_ORIGINS=["https://aeon-client.example"]',
                "APP_NAME=Aeon Messenger",
                "DEBUG=true",
            ]
        )
    )
    (tmp_path / "alembic.ini").write_text((ROOT / "alembic.ini").read_text())
    (tmp_path / "migrations").symlink_to(ROOT / "migrations")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEST_", "BOT_", "TELEGRAM_", "DATABASE_", "REDIS_"))
    }
    # The platform's variables; no Telegram to poll from a test.
    env.update(
        PYTHONPATH=str(ROOT),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        BOT_MODE="off",
    )
    processes = _procfile()
    shell = shutil.which("sh") or "/bin/sh"
    _migrate([shell, "-c", processes["release"]], tmp_path, env)
    web = [shell, "-c", f"exec {processes['web']}"]
    with server_process(web, tmp_path, env) as (server, process):
        base = server.base_url
        # initData signed with the token from TELEGRAM_BOT_TOKEN signs in.
        headers = auth_headers(4242, "Aeon", username="aeon")
        assert httpx.get(f"{base}/api/v1/me", headers=headers).status_code == 200
        tokens = httpx.post(
            f"{base}/api/v1/auth/telegram", json={"init_data": headers["X-Telegram-Init-Data"]}
        ).json()
        assert tokens["expires_in"] == 30 * 60
        small = httpx.post(
            f"{base}/api/v1/messages/upload-media",
            headers=headers,
            files={"file": ("a.png", png_bytes(), "image/png")},
        )
        assert small.status_code == 200, small.text
        too_big = httpx.post(
            f"{base}/api/v1/messages/upload-media",
            headers=headers,
            files={"file": ("a.bin", b"x" * 1001, "application/octet-stream")},
        )
        assert too_big.status_code == 413
        assert any((tmp_path / "uploads").rglob("*")), "nothing stored under UPLOAD_DIR"
        preflight = httpx.options(
            f"{base}/api/v1/chats/",
            headers={
                "Origin": "https://aeon-client.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-telegram-init-data",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == "https://aeon-client.example"
    output = process.output
    assert f"0.0.0.0:{server.port}" in output
    for variable, alias in (
        ("BOT_TOKEN", "TELEGRAM_BOT_TOKEN"),
        ("WEBHOOK_SECRET", "TELEGRAM_WEBHOOK_SECRET"),
        ("ACCESS_TOKEN_TTL", "ACCESS_TOKEN_EXPIRE_MINUTES"),
        ("MEDIA_DIR", "UPLOAD_DIR"),
        ("MAX_UPLOAD_BYTES", "MAX_FILE_SIZE"),
    ):
        assert f"{variable} read from Aeon's {alias}" in output


def test_an_api_process_with_the_bot_off_imports_neither_aiogram_nor_the_llm_sdks(
    tmp_path: Path,
) -> None:
    """They take seconds to import; a process imports them when it first needs them."""
    script = (
        "import asyncio, sys\n"
        "from core.settings import Settings\n"
        "from webapp_api.app import create_app\n"
        "from webapp_api.context import AppContext\n"
        "async def main():\n"
        "    create_app()\n"
        "    await (await AppContext.open(Settings())).close()\n"
        "asyncio.run(main())\n"
        "print(sorted({name.partition('.')[0] for name in sys.modules}))\n"
    )
    env = _env(
        tmp_path,
        BOT_TOKEN="123456:test-token",
        BOT_MODE="off",
        OPENAI_API_KEY="test-key",
        ANTHROPIC_API_KEY="test-key",
        AI_RUNNER_ENABLED="false",
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = set(result.stdout.strip().strip("[]").replace("'", "").split(", "))
    assert "fastapi" in imported
    assert imported.isdisjoint({"aiogram", "openai", "anthropic"})


@pytest.mark.redis
def test_several_workers_serve_http_and_sockets(tmp_path: Path) -> None:
    """uvicorn hands its options to each worker process (pickled): the socket protocol too."""
    assert TEST_REDIS_URL is not None
    env = _env(
        tmp_path,
        WORKERS="2",
        REDIS_URL=TEST_REDIS_URL,
        BOT_TOKEN=TEST_BOT_TOKEN,
        BOT_MODE="off",
    )
    _migrate(MIGRATE, tmp_path, env)
    with server_process([sys.executable, "-m", "webapp_api"], tmp_path, env) as (server, process):
        url = f"{server.ws_url}/ws?init_data={quote(init_data_for(9601, 'Wes'))}"
        with connect(url, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "connection_established"
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "pong"
    output = process.stop()
    # Each worker logs as the single process does: its own start-up line, formatted.
    assert output.count("INFO    webapp_api.app [-] API ready") == 2, output
    assert "Traceback" not in output, output
