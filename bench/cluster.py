"""The processes a scenario runs against and with: a fresh PostgreSQL database, a private Redis,
API processes (`python -m webapp_api`), the fake LLM vendor, and the load generators."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import asyncpg

from bench.client import BENCH_BOT_TOKEN, HttpImpl
from bench.procinfo import process_cpu_seconds, process_rss_kib, raise_nofile_limit

logger = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
START_TIMEOUT = 120.0  # importing the app takes seconds on a busy 2-core machine
WORKER_READ_LIMIT = 1 << 28

Json = dict[str, Any]


class SetupError(RuntimeError):
    """The benchmark cannot run here (a service is unreachable, a process did not start)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _asyncpg_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- PostgreSQL ---------------------------------------------------------------------------------


async def check_postgres(admin_url: str) -> str:
    try:
        connection = await asyncpg.connect(_asyncpg_url(admin_url), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise SetupError(
            f"PostgreSQL is not reachable at {admin_url} ({exc}). The benchmark needs a "
            "PostgreSQL server it may create databases on: start one, or point "
            "BENCH_DATABASE_URL at one."
        ) from None
    try:
        version: str = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    return version


@dataclass
class Database:
    admin_url: str
    name: str = field(default_factory=lambda: f"bench_{secrets.token_hex(6)}")

    @property
    def url(self) -> str:
        return _with_database(_asyncpg_url(self.admin_url), self.name)

    async def _admin(self, statement: str) -> None:
        connection = await asyncpg.connect(_asyncpg_url(self.admin_url), timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def create(self, log: Path) -> None:
        await self._admin(f'CREATE DATABASE "{self.name}"')
        env = {**os.environ, "DATABASE_URL": self.url, "PYTHONPATH": str(ROOT)}
        with log.open("ab") as output:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "alembic", "upgrade", "head",
                cwd=ROOT, env=env, stdout=output, stderr=output,
            )  # fmt: skip
            code = await process.wait()
        if code != 0:
            raise SetupError(f"alembic upgrade head failed ({code}):\n{_tail(log)}")

    async def drop(self) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# -- Redis ------------------------------------------------------------------------------------


async def redis_ping(host: str, port: int) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 2)).startswith(b"+PONG")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


class Redis:
    """A private redis-server on a free port; or, without the binary, an existing server.

    Private because pub/sub channels ignore the database number: on a shared Redis, processes
    with the same REDIS_PREFIX receive each other's events (the API processes of a benchmark
    also get a random REDIS_PREFIX), and other work on it would skew the numbers."""

    def __init__(self, work_dir: Path, external_url: str | None) -> None:
        self._work_dir = work_dir
        self._external_url = external_url
        self._process: asyncio.subprocess.Process | None = None
        self._port: int | None = None  # kept across restarts: the API processes reconnect to it
        self.url = external_url or ""
        self.private = False

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if self._external_url is None and binary is not None:
            port = self._port = self._port or free_port()
            self._process = await asyncio.create_subprocess_exec(
                binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self._work_dir), "--maxclients", "10000",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 10
            while not await redis_ping("127.0.0.1", port):
                if time.monotonic() > deadline or self._process.returncode is not None:
                    raise SetupError("the private redis-server did not start")
                await asyncio.sleep(0.05)
            self.url = f"redis://127.0.0.1:{port}/0"
            self.private = True
            return
        url = self._external_url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
        host_port = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
        host, _, port_text = host_port.partition(":")
        if not await redis_ping(host or "127.0.0.1", int(port_text or 6379)):
            raise SetupError(
                f"Redis is not reachable at {url}. The benchmark needs redis-server on PATH "
                "(it starts a private one) or a reachable Redis in BENCH_REDIS_URL."
            )
        logger.warning("no redis-server on PATH: using the Redis at %s, shared with others", url)
        self.url = url

    def environment(self) -> dict[str, str]:
        return {"REDIS_URL": self.url}

    async def flush(self) -> None:
        if self.private:
            host_port = self.url.split("://", 1)[1].split("/", 1)[0]
            host, _, port = host_port.partition(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"FLUSHALL\r\n")
            await writer.drain()
            await reader.readline()
            writer.close()

    async def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, every connection cut. `start` brings it back
        on the same port."""
        if self._process is None:
            raise SetupError("only a private redis-server can be killed")
        if self._process.returncode is None:
            self._process.kill()
            await self._process.wait()

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        self._process = None


# -- processes ----------------------------------------------------------------------------------


def _preexec() -> None:
    raise_nofile_limit()


class ServerProcess:
    """A child process serving HTTP on a loopback port, with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.port = free_port()
        self._args = [arg.replace("{port}", str(self.port)) for arg in args]
        self._env = {**env, "PORT": str(self.port)}
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, ready_path: str, *, poll_every: float = 0.1) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as output:
            self.process = await asyncio.create_subprocess_exec(
                *self._args, cwd=ROOT, env=self._env, stdout=output, stderr=output,
                preexec_fn=_preexec,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.returncode is not None:
                    raise SetupError(f"{self.name} exited during start-up:\n{_tail(self.log)}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(self.base_url + ready_path) as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise SetupError(f"{self.name} was not ready in {START_TIMEOUT:.0f} s")
                await asyncio.sleep(poll_every)

    def rss_kib(self) -> int:
        return process_rss_kib(self.pid)

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    async def kill(self) -> None:
        """SIGKILL, as a crash would. `start` brings it back on the same port."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class RedisService(Protocol):
    """The Redis the API processes share: one server (`Redis`) or a cluster
    (bench.redis_cluster.LocalRedisCluster)."""

    def environment(self) -> dict[str, str]:
        """The API processes' settings that point them at it."""
        ...

    async def flush(self) -> None: ...


def api_environment(
    database_url: str,
    redis: RedisService,
    *,
    fake_llm_url: str | None,
    ws_send_queue: int,
    media_dir: Path,
) -> dict[str, str]:
    """How the API processes are configured: production settings, generous limits."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEST_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "ENVIRONMENT": "production",
            "LOG_LEVEL": "WARNING",
            "HOST": "127.0.0.1",
            "WORKERS": "1",
            "DATABASE_URL": database_url,
            **redis.environment(),
            # Its own broker channel and keys too, should the Redis be a shared one.
            "REDIS_PREFIX": f"bench-{secrets.token_hex(4)}",
            "SECRET_KEY": secrets.token_urlsafe(48),
            # Scenarios read /metrics (the capacity scenario) with it.
            "METRICS_TOKEN": secrets.token_urlsafe(24),
            "BOT_TOKEN": BENCH_BOT_TOKEN,
            "BOT_USERNAME": "bench_ai_bot",
            "BOT_MODE": "off",
            "NOTIFY_INTERVAL": "0",
            "TELEGRAM_API_BASE": "http://127.0.0.1:9",  # never reached; nothing may leave
            "WS_SEND_QUEUE": str(ws_send_queue),
            # A few users send, create chats and invite as fast as the server lets them.
            "SENDS_PER_MINUTE": "1000000",
            "SEND_BURST": "1000000",
            "CHAT_CREATES_PER_HOUR": "1000000",
            "CHAT_CREATE_BURST": "1000000",
            "INVITES_PER_HOUR": "1000000",
            "INVITE_BURST": "1000000",
            "AI_USER_REPLIES_PER_MINUTE": "100000",
            "AI_GROUP_ALWAYS_REPLIES_PER_MINUTE": "100000",
            "AI_DAILY_TOKEN_ALLOWANCE": str(10**12),
            "AI_MAX_CONCURRENT_REPLIES": "64",
            "AI_MAX_REPLY_TOKENS": "4096",
            "BILLING_ENABLED": "false",
            "MEDIA_DIR": str(media_dir),
        }
    )
    if fake_llm_url is not None:
        env.update(
            {
                "OPENAI_API_KEY": "bench-key",
                "OPENAI_BASE_URL": fake_llm_url + "/v1",
                "LLM_DEFAULT_MODEL": "gpt-4o-mini",
            }
        )
    for key in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "LLM_MODELS", "LLM_MODELS_FILE"):
        env.pop(key, None)
    return env


# -- load generators ----------------------------------------------------------------------------


class WorkerError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Reply:
    result: Json
    cpu_s: float
    wall_s: float
    rss_kib: int


class Worker:
    """One `python -m bench.load` process, driven over its stdin/stdout."""

    def __init__(self, index: int, log: Path) -> None:
        self.index = index
        self.log = log
        self._process: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[Json]] = {}
        self._ids = 0
        self._reader: asyncio.Task[None] | None = None
        self._log_file: Any = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def start(self, env: Mapping[str, str]) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("ab")
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.load",
            cwd=ROOT, env=dict(env), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=self._log_file,
            limit=WORKER_READ_LIMIT, preexec_fn=_preexec,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        while line := await self._process.stdout.readline():
            message: Json = json.loads(line)
            future = self._pending.pop(int(message["id"]), None)
            if future is not None and not future.done():
                future.set_result(message)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(
                    WorkerError(f"load worker {self.index} exited:\n{_tail(self.log)}")
                )

    async def call(self, cmd: str, *, within: float = 300.0, **args: Any) -> Reply:
        assert self._process is not None
        assert self._process.stdin is not None
        self._ids += 1
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending[self._ids] = future
        line = json.dumps({"id": self._ids, "cmd": cmd, **args}, separators=(",", ":"))
        self._process.stdin.write(line.encode() + b"\n")
        await self._process.stdin.drain()
        try:
            message = await asyncio.wait_for(future, within)
        except TimeoutError:
            raise WorkerError(f"load worker {self.index}: {cmd} took over {within:.0f} s") from None
        if not message.get("ok"):
            raise WorkerError(f"load worker {self.index}: {cmd}: {message.get('error')}")
        return Reply(
            message["result"], message["cpu_s"], message["wall_s"], int(message["rss_kib"])
        )

    async def stop(self) -> None:
        if self._process is None:
            return
        if self._process.returncode is None:
            with contextlib.suppress(Exception):
                await self.call("exit", within=20)
            try:
                await asyncio.wait_for(self._process.wait(), 20)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._log_file is not None:
            self._log_file.close()


@dataclass
class Cluster:
    """What one scenario runs on."""

    database: Database
    apis: list[ServerProcess]
    workers: list[Worker]
    fake_llm: ServerProcess | None
    api_env: dict[str, str]  # how its API processes are configured
    log_dir: Path

    @property
    def http_bases(self) -> list[str]:
        return [api.base_url for api in self.apis]

    def pids(self) -> dict[str, int]:
        pids = {f"api{index}": api.pid for index, api in enumerate(self.apis)}
        pids.update({f"load{worker.index}": worker.pid for worker in self.workers})
        if self.fake_llm is not None:
            pids["fake_llm"] = self.fake_llm.pid
        return pids


@dataclass(frozen=True)
class ClusterSpec:
    apis: int = 2
    workers: int | None = None  # None: the run's default (--workers)
    fake_llm: bool = False


@asynccontextmanager
async def running_cluster(
    spec: ClusterSpec,
    *,
    workers: int,
    admin_url: str,
    redis: RedisService,
    log_dir: Path,
    label: str,
    http_impl: HttpImpl,
    ws_send_queue: int,
    api_settings: Mapping[str, str] | None = None,
) -> AsyncIterator[Cluster]:
    """`api_settings`: environment variables of the API processes, over `api_environment`'s."""
    database = Database(admin_url)
    apis: list[ServerProcess] = []
    loaders: list[Worker] = []
    fake: ServerProcess | None = None
    await redis.flush()
    try:
        await database.create(log_dir / f"{label}-alembic.log")
        if spec.fake_llm:
            fake = ServerProcess(
                "fake LLM",
                [sys.executable, "-m", "bench.fake_llm", "--port", "{port}"],
                {**os.environ, "PYTHONPATH": str(ROOT)},
                log_dir / f"{label}-fake-llm.log",
            )
            await fake.start("/health")
        env = api_environment(
            database.url,
            redis,
            fake_llm_url=fake.base_url if fake is not None else None,
            ws_send_queue=ws_send_queue,
            media_dir=log_dir / "media",
        )
        env.update(api_settings or {})
        apis = [
            ServerProcess(
                f"API process {index}",
                [sys.executable, "-m", "webapp_api"],
                env,
                log_dir / f"{label}-api{index}.log",
            )
            for index in range(spec.apis)
        ]
        count = spec.workers if spec.workers is not None else workers
        loaders = [Worker(index, log_dir / f"{label}-load{index}.log") for index in range(count)]
        worker_env = {**os.environ, "PYTHONPATH": str(ROOT)}
        await asyncio.gather(
            *(api.start("/health/ready") for api in apis),
            *(worker.start(worker_env) for worker in loaders),
        )
        await asyncio.gather(
            *(
                worker.call(
                    "init",
                    http_bases=[api.base_url for api in apis],
                    ws_bases=[api.ws_url for api in apis],
                    http_impl=http_impl,
                    index=worker.index,
                )
                for worker in loaders
            )
        )
        yield Cluster(database, apis, loaders, fake, env, log_dir)
    finally:
        await asyncio.gather(*(worker.stop() for worker in loaders), return_exceptions=True)
        await asyncio.gather(*(api.stop() for api in apis), return_exceptions=True)
        if fake is not None:
            await fake.stop()
        with contextlib.suppress(Exception):
            await database.drop()
