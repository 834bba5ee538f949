"""HOST set and observed: `python -m webapp_api` listens on that address only."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ROOT, server_process

HOST = "127.0.0.2"  # loopback too, but not the default 127.0.0.1


def test_the_api_listens_on_host(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "BOT_"))}
    environment.update(
        {
            "PYTHONPATH": str(ROOT),
            "ENVIRONMENT": "development",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
            "HOST": HOST,
        }
    )
    command = [sys.executable, "-m", "webapp_api"]
    with server_process(command, tmp_path, environment) as (server, _):
        # Uvicorn's readiness line names the address it listens on.
        assert server.host == HOST
        assert httpx.get(f"{server.base_url}/api/v1/health", timeout=5).status_code == 200
        with pytest.raises(httpx.ConnectError):  # nothing listens on the default host
            httpx.get(f"http://127.0.0.1:{server.port}/api/v1/health", timeout=5)
