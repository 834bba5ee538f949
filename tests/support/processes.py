"""Real API processes (`python -m webapp_api`), in pairs sharing Redis or a Redis Cluster, and a
TCP proxy that can cut them off Redis."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.pg_proxy import pump
from tests.support.server import LiveServer

ROOT = Path(__file__).resolve().parents[2]


RUNNING_ON = re.compile(r"Uvicorn running on \w+://([^\s:]+):(\d+)")
STARTED = "Application startup complete"
START_WITHIN = 120.0  # imports alone take ~15 s on a loaded machine


class ServerProcess:
    """A uvicorn server process told to take any free port (PORT=0), whose output is read as it
    comes. It is ready when it says so: its port in "Uvicorn running on", then "Application
    startup complete" (of its first worker, when it has several). A worker listens only just
    after it says so, and the port of several is bound (not listening) before any starts: the
    port is then tried until it takes connections."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.host = "127.0.0.1"  # where to reach it (it may listen on all addresses)
        self.port: int | None = None
        self._started = False
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**env, "PORT": "0", "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if (running := RUNNING_ON.search(line)) is not None:
                listens_on = running[1]
                if not ipaddress.ip_address(listens_on).is_unspecified:
                    self.host = listens_on
                self.port = int(running[2])
            self._started = self._started or STARTED in line
            if self.port is not None and self._started:
                self._ready.set()
        self._ready.set()  # the output ended: the process is gone

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, within: float = START_WITHIN) -> LiveServer:
        if not self._ready.wait(within) or self.process.poll() is not None or self.port is None:
            raise AssertionError(
                f"the server was not ready within {within} s (exit code "
                f"{self.process.poll()}); what it printed:\n{self.output}"
            )
        deadline = time.monotonic() + within
        while not self._listening():
            assert time.monotonic() < deadline, f"nothing listens; output:\n{self.output}"
            time.sleep(0.05)
        return LiveServer(self.host, self.port)

    def _listening(self) -> bool:
        try:
            socket.create_connection((self.host, self.port), timeout=5).close()
        except ConnectionRefusedError:
            assert self.process.poll() is None, f"the server exited; output:\n{self.output}"
            return False
        return True

    def stop(self) -> str:
        """Stops the process; all it printed."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        return self.output


@contextmanager
def server_process(
    command: list[str], cwd: Path, env: dict[str, str]
) -> Iterator[tuple[LiveServer, ServerProcess]]:
    """The server `command` starts, once ready; stopped at the end (its output kept)."""
    process = ServerProcess(command, cwd, env)
    try:
        yield process.wait_ready(), process
    finally:
        process.stop()


@asynccontextmanager
async def api_process(cwd: Path, **env: str) -> AsyncIterator[LiveServer]:
    """One API process (`python -m webapp_api`), configured only through its environment."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    environment.update({"PYTHONPATH": str(ROOT), "HOST": "127.0.0.1", **env})
    process = ServerProcess([sys.executable, "-m", "webapp_api"], cwd, environment)
    try:
        yield await asyncio.to_thread(process.wait_ready)
    finally:
        (cwd / f"api-{process.port}.log").write_text(await asyncio.to_thread(process.stop))


class TcpProxy:
    """Forwards a local port to a target; `cut()` drops every connection and refuses new ones
    until `restore()`: a network partition between our processes and Redis."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0  # any free port at the first start; the same one again at a restore

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        tasks = [
            asyncio.create_task(pump(reader, up_writer)),
            asyncio.create_task(pump(up_reader, writer)),
        ]
        self._pipes.update(tasks)

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
class ApiPair:
    a: LiveServer
    b: LiveServer
    env: dict[str, str]  # what both processes were configured with


@dataclass
class Cluster(ApiPair):
    proxy: TcpProxy


@asynccontextmanager
async def _two(
    cwd: Path, environment: dict[str, str]
) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    async with AsyncExitStack() as stack:
        yield (
            await stack.enter_async_context(api_process(cwd, **environment)),
            await stack.enter_async_context(api_process(cwd, **environment)),
        )


def _shared_environment(**env: str) -> dict[str, str]:
    return {
        "ENVIRONMENT": "test",
        "WS_PRESENCE_GRACE": "0.2",
        "REDIS_PREFIX": f"cluster-{uuid.uuid4().hex[:8]}",
        **env,
    }


@asynccontextmanager
async def two_api_processes(redis_url: str, cwd: Path, **env: str) -> AsyncIterator[Cluster]:
    """Two API processes sharing a database (DATABASE_URL in `env`) and Redis, reached through
    a proxy that can cut them off it."""
    redis = urlsplit(redis_url)
    proxy = TcpProxy(redis.hostname or "127.0.0.1", redis.port or 6379)
    await proxy.start()
    environment = _shared_environment(
        REDIS_URL=f"redis://127.0.0.1:{proxy.port}{redis.path or '/0'}", **env
    )
    try:
        async with _two(cwd, environment) as (a, b):
            yield Cluster(a, b, environment, proxy)
    finally:
        await proxy.cut()


@asynccontextmanager
async def two_api_processes_on_redis_cluster(
    cluster_urls: str, cwd: Path, **env: str
) -> AsyncIterator[ApiPair]:
    """Two API processes sharing a database (DATABASE_URL in `env`) and the Redis Cluster of
    `cluster_urls` (REDIS_CLUSTER_URLS), reached directly: a cluster's clients learn its
    nodes' own addresses from the nodes, so a proxy could not stand between."""
    environment = _shared_environment(REDIS_URL="", REDIS_CLUSTER_URLS=cluster_urls, **env)
    async with _two(cwd, environment) as (a, b):
        yield ApiPair(a, b, environment)
