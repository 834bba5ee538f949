"""The commands a user runs, as processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.server import bind_free_port

ROOT = Path(__file__).resolve().parents[1]


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
    sock = bind_free_port()
    port = sock.getsockname()[1]
    sock.close()
    env = _env(tmp_path, PORT=str(port))
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "webapp_api"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the server exited during start-up"
                assert time.monotonic() < deadline, "the server did not start in 30 s"
                time.sleep(0.1)
        assert response.json()["status"] == "healthy"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "BOT_TOKEN is not set" in output
