"""HOST set and observed: `python -m webapp_api` listens on that address only."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ROOT
from tests.support.server import bind_free_port

HOST = "127.0.0.2"  # loopback too, but not the default 127.0.0.1


async def test_the_api_listens_on_host(tmp_path: Path) -> None:
    sock = bind_free_port()
    port = sock.getsockname()[1]
    sock.close()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "BOT_"))}
    environment.update(
        {
            "PYTHONPATH": str(ROOT),
            "ENVIRONMENT": "development",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
            "HOST": HOST,
            "PORT": str(port),
        }
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "webapp_api",
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(120):
            # Uvicorn's readiness line names the address it listens on.
            while "Uvicorn running on" not in "".join(output):
                line = await process.stdout.readline()
                assert line, "the server exited during start-up:\n" + "".join(output)
                output.append(line.decode())
        assert f"Uvicorn running on http://{HOST}:{port}" in output[-1]
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(f"http://{HOST}:{port}/api/v1/health")).status_code == 200
            with pytest.raises(httpx.ConnectError):  # nothing listens on the default host
                await client.get(f"http://127.0.0.1:{port}/api/v1/health")
    finally:
        process.terminate()
        with contextlib.suppress(ProcessLookupError):
            await process.wait()
