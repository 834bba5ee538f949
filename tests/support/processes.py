"""Real API processes (`python -m webapp_api`) and a TCP proxy that can cut them off Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.support.server import LiveServer, bind_free_port

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def api_process(cwd: Path, **env: str) -> AsyncIterator[LiveServer]:
    """One API process on a free port, configured only through its environment."""
    sock = bind_free_port()
    port = sock.getsockname()[1]
    sock.close()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    environment.update({"PYTHONPATH": str(ROOT), "PORT": str(port), "HOST": "127.0.0.1", **env})
    log = (cwd / f"api-{port}.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "webapp_api", cwd=cwd, env=environment, stdout=log, stderr=log
    )
    server = LiveServer("127.0.0.1", port)
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as client, asyncio.timeout(30):
            while True:
                assert process.returncode is None, "the API process exited during start-up"
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/health/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield server
    finally:
        process.terminate()
        await process.wait()
        log.close()


class TcpProxy:
    """Forwards a local port to a target; `cut()` drops every connection and refuses new ones
    until `restore()`: a network partition between our processes and Redis."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        sock = bind_free_port()
        self.port = sock.getsockname()[1]
        sock.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        tasks = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._pipes.update(tasks)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._pipes.clear()

    async def restore(self) -> None:
        await self.start()


@dataclass
class Cluster:
    a: LiveServer
    b: LiveServer
    proxy: TcpProxy
    env: dict[str, str]  # what both processes were configured with


@asynccontextmanager
async def two_api_processes(redis_url: str, cwd: Path, **env: str) -> AsyncIterator[Cluster]:
    """Two API processes sharing a database (DATABASE_URL in `env`) and Redis, reached through
    a proxy that can cut them off it."""
    redis = urlsplit(redis_url)
    proxy = TcpProxy(redis.hostname or "127.0.0.1", redis.port or 6379)
    await proxy.start()
    environment = {
        "ENVIRONMENT": "test",
        "REDIS_URL": f"redis://127.0.0.1:{proxy.port}{redis.path or '/0'}",
        "WS_PRESENCE_GRACE": "0.2",
        "REDIS_PREFIX": f"cluster-{uuid.uuid4().hex[:8]}",
        **env,
    }
    try:
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(api_process(cwd, **environment))
            b = await stack.enter_async_context(api_process(cwd, **environment))
            yield Cluster(a, b, proxy, environment)
    finally:
        await proxy.cut()
