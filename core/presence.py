"""Who has a socket open anywhere in the cluster, and once-only claims (notification throttles).

With Redis, every process records its users' socket counts in a hash per user, keyed by the
process's node id; a node that stops refreshing its heartbeat (a crashed process) no longer
counts. Without Redis there is one process and plain dictionaries do. On a Redis Cluster the
same keys spread over the shards (`core.redis_client.tagged`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from abc import ABC, abstractmethod
from collections import Counter

from core.redis_client import REDIS_ERRORS, RedisClient, RedisTarget, tagged

NODE_TTL_SECONDS = 60
NODE_REFRESH_SECONDS = 20


class PresenceStore(ABC):
    @abstractmethod
    async def connected(self, user_id: int) -> None: ...

    @abstractmethod
    async def disconnected(self, user_id: int) -> None: ...

    @abstractmethod
    async def online(self, user_ids: list[int]) -> set[int]:
        """Those of `user_ids` with a socket open on any process."""

    @abstractmethod
    async def claim(self, key: str, ttl: float) -> bool:
        """True for the first caller within `ttl` seconds, cluster-wide."""

    async def start(self) -> None:
        """Begin background upkeep."""

    async def close(self) -> None:
        """Stop background upkeep."""


class MemoryPresence(PresenceStore):
    def __init__(self) -> None:
        self._sockets: Counter[int] = Counter()
        self._claims: dict[str, float] = {}

    async def connected(self, user_id: int) -> None:
        self._sockets[user_id] += 1

    async def disconnected(self, user_id: int) -> None:
        self._sockets[user_id] -= 1
        if self._sockets[user_id] <= 0:
            del self._sockets[user_id]

    async def online(self, user_ids: list[int]) -> set[int]:
        return {user_id for user_id in user_ids if self._sockets.get(user_id)}

    async def claim(self, key: str, ttl: float) -> bool:
        now = time.monotonic()
        if self._claims.get(key, 0.0) > now:
            return False
        self._claims[key] = now + ttl
        if len(self._claims) > 10_000:
            self._claims = {k: v for k, v in self._claims.items() if v > now}
        return True


# KEYS[1]: a user's hash; ARGV[1]: this process's node id. One step, so that a socket opened
# by the same process between the decrement and the delete is not deleted with the field.
_DISCONNECTED = """
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
"""


class RedisPresence(PresenceStore):
    def __init__(self, target: RedisTarget, prefix: str) -> None:
        self._redis: RedisClient = target.client(socket_timeout=5)
        self._disconnected = self._redis.register_script(_DISCONNECTED)
        self._prefix = prefix
        self._node = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None

    def _user_key(self, user_id: int) -> str:
        return tagged(self._prefix, "presence", str(user_id))

    def _node_key(self, node: str) -> str:
        return tagged(self._prefix, "node", node)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._beat_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()

    async def _beat_forever(self) -> None:
        while True:
            with contextlib.suppress(*REDIS_ERRORS):
                await self._redis.set(self._node_key(self._node), 1, ex=NODE_TTL_SECONDS)
            await asyncio.sleep(NODE_REFRESH_SECONDS)

    async def connected(self, user_id: int) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await self._redis.hincrby(self._user_key(user_id), self._node, 1)

    async def disconnected(self, user_id: int) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await self._disconnected(keys=[self._user_key(user_id)], args=[self._node])

    async def online(self, user_ids: list[int]) -> set[int]:
        """Two round trips however many users (a large group's members): their counts, then
        which of the nodes holding their sockets are alive. On a cluster each is one round trip
        to each shard, all at once."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    pipe.hgetall(self._user_key(user_id))
                counts: list[dict[bytes | str, bytes | str]] = await pipe.execute()
            nodes_of = {
                user_id: {_text(node) for node, count in by_node.items() if int(count) > 0}
                for user_id, by_node in zip(user_ids, counts, strict=True)
            }
            nodes = sorted({node for held in nodes_of.values() for node in held})
            async with self._redis.pipeline(transaction=False) as pipe:
                for node in nodes:
                    pipe.exists(self._node_key(node))
                alive = {node for node, up in zip(nodes, await pipe.execute(), strict=True) if up}
            return {user_id for user_id, held in nodes_of.items() if held & alive}
        except REDIS_ERRORS:
            return set(user_ids)  # unknown: assume online rather than notify wrongly

    async def claim(self, key: str, ttl: float) -> bool:
        try:
            return bool(
                await self._redis.set(
                    tagged(self._prefix, "claim", key), 1, nx=True, px=max(1, int(ttl * 1000))
                )
            )
        except REDIS_ERRORS:
            return False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def create_presence(redis: RedisTarget | None, prefix: str = "aimessenger") -> PresenceStore:
    return RedisPresence(redis, prefix) if redis is not None else MemoryPresence()
