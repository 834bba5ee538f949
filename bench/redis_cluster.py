"""A real Redis Cluster of three primaries on loopback ports, for the tests and the benchmarks.

Each node is a `redis-server --cluster-enabled yes` with its own config file in a work folder;
`redis-cli --cluster create` joins them and spreads the 16384 slots. A node killed with SIGKILL
and started again on the same port with the same config file is the same node: it keeps its
id and its slots, and rejoins (its data is gone: nothing is persisted).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.cluster import SetupError, free_port

NODES = 3
# Short, so that a node killed and started again is taken back within seconds (a primary that
# was marked failed is cleared only after twice this), long enough that a busy 2-core machine
# does not make the nodes think each other failed.
NODE_TIMEOUT_MS = 2000
READY_WITHIN = 60.0


def missing_binaries() -> list[str]:
    """What of redis-server and redis-cli is not on PATH."""
    return [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]


async def _command(port: int, *args: str) -> str:
    """One command through redis-cli: its output, or "" when the node does not answer."""
    process = await asyncio.create_subprocess_exec(
        "redis-cli", "-h", "127.0.0.1", "-p", str(port), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    output, _ = await process.communicate()
    return output.decode(errors="replace") if process.returncode == 0 else ""


@dataclass
class LocalClusterNode:
    port: int
    bus_port: int  # chosen too: the default, port + 10000, may be taken or beyond 65535
    work_dir: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = (self.work_dir / "redis.log").open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-port", str(self.bus_port),
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--dir", str(self.work_dir),
                "--save", "", "--appendonly", "no", "--maxclients", "10000",
                stdout=log, stderr=log,
            )  # fmt: skip
        finally:
            log.close()
        deadline = time.monotonic() + READY_WITHIN
        while "PONG" not in await _command(self.port, "PING"):
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise SetupError(f"redis-server on port {self.port} did not start: see {log.name}")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                await self.kill()

    async def state_ok(self) -> bool:
        return "cluster_state:ok" in await _command(self.port, "CLUSTER", "INFO")


@dataclass
class LocalRedisCluster:
    """Three primaries with every slot assigned, each reachable at its `url`."""

    nodes: list[LocalClusterNode] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def env_value(self) -> str:
        """REDIS_CLUSTER_URLS for a process that uses this cluster."""
        return ",".join(self.urls)

    def environment(self) -> dict[str, str]:
        return {"REDIS_CLUSTER_URLS": self.env_value}

    async def flush(self) -> None:
        await asyncio.gather(*(_command(node.port, "FLUSHALL") for node in self.nodes))

    async def wait_ok(self, within: float = READY_WITHIN) -> None:
        """Until every node says cluster_state:ok (all slots served, no node failed)."""
        await self._wait_until(True, self.nodes, within)

    async def wait_failed(self, within: float = READY_WITHIN) -> None:
        """Until every running node says cluster_state:fail: a primary that is down has been
        noticed (within about NODE_TIMEOUT_MS), and the cluster refuses every key until it is
        back, not only the keys of its slots."""
        running = [n for n in self.nodes if n.process and n.process.returncode is None]
        await self._wait_until(False, running, within)

    async def _wait_until(self, ok: bool, nodes: list[LocalClusterNode], within: float) -> None:
        deadline = time.monotonic() + within
        while not all(s == ok for s in await asyncio.gather(*(n.state_ok() for n in nodes))):
            if time.monotonic() > deadline:
                state = "ok" if ok else "fail"
                raise SetupError(f"the Redis Cluster's state was not {state} within {within} s")
            await asyncio.sleep(0.1)

    @asynccontextmanager
    async def down(self, node: LocalClusterNode) -> AsyncIterator[None]:
        """`node` killed (SIGKILL) for the duration of the block, then started again on the same
        port with the same config file, so that it serves the same slots; the block's end
        waits until the cluster is ok again."""
        await node.kill()
        try:
            yield
        finally:
            await node.start()
            await self.wait_ok()

    async def restart(self, node: LocalClusterNode) -> None:
        """`node` killed and started again; returns once the cluster is ok."""
        async with self.down(node):
            pass


@asynccontextmanager
async def running_redis_cluster(work_dir: Path) -> AsyncIterator[LocalRedisCluster]:
    """A fresh cluster whose files live under `work_dir`; stopped at the end."""
    if missing := missing_binaries():
        raise SetupError(f"a local Redis Cluster needs {' and '.join(missing)} on PATH")
    cluster = LocalRedisCluster(
        [
            LocalClusterNode(free_port(), free_port(), work_dir / f"node-{index}")
            for index in range(NODES)
        ]
    )
    async with AsyncExitStack() as stack:
        for node in cluster.nodes:
            stack.push_async_callback(node.stop)
            await node.start()
        process = await asyncio.create_subprocess_exec(
            "redis-cli", "--cluster", "create", *(node.address for node in cluster.nodes),
            "--cluster-replicas", "0", "--cluster-yes",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise SetupError(f"redis-cli --cluster create failed:\n{output.decode()}")
        await cluster.wait_ok()
        yield cluster
