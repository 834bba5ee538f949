"""Event brokers: how a published event reaches every listener in every API process.

The broker is a doorbell, not a store: delivery is at most once, and the database's
`chat_events` are the truth that clients recover gaps from. Listeners are plain callables that
must not block (they hand the bytes to queues); each process has one broker subscription that the
realtime hub fans out locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

Listener = Callable[[bytes], None]

CLOSE_FLUSH_TIMEOUT = 2.0


class Broker(ABC):
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Register a listener; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _deliver_locally(self, data: bytes) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(data)
            except Exception:
                logger.exception("event listener failed")

    async def start(self) -> None:
        """Open connections and begin listening."""

    async def close(self) -> None:
        """Stop listening and release connections."""

    @abstractmethod
    async def publish(self, data: bytes) -> None: ...

    @abstractmethod
    async def ping(self) -> bool: ...


class MemoryBroker(Broker):
    """One process, no services: publish calls the listeners directly."""

    async def publish(self, data: bytes) -> None:
        self._deliver_locally(data)

    async def ping(self) -> bool:
        return True


class RedisBroker(Broker):
    """Events cross processes through one Redis pub/sub channel.

    Local listeners are called at once on publish; the copy that comes back from Redis to the
    publishing process is recognised by its node id and skipped. Publishing to Redis happens in
    the background, in order, so that a slow or absent Redis never holds up a request. If Redis
    is unreachable the process keeps serving its own listeners, drops what it cannot send, and
    resubscribes when Redis returns.
    """

    def __init__(self, url: str, channel: str, *, outbox_size: int = 10_000) -> None:
        super().__init__()
        self._redis: Redis = Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), retries=1)
        )
        # The subscriber waits on a quiet channel for as long as it is quiet: no read timeout;
        # health checks find a dead peer instead.
        self._subscriber: Redis = Redis.from_url(
            url, socket_connect_timeout=2, health_check_interval=15
        )
        self._channel = channel
        self._node = uuid.uuid4().hex.encode()
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(outbox_size)
        self._tasks: list[asyncio.Task[None]] = []
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="redis-broker-listen"),
            asyncio.create_task(self._send_forever(), name="redis-broker-send"),
        ]

    async def close(self) -> None:
        # What was published before closing still goes out (a CLI's one event, for instance),
        # unless Redis cannot take it within the flush timeout.
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_FLUSH_TIMEOUT):
                    await self._outbox.join()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._redis.aclose()
        await self._subscriber.aclose()

    async def publish(self, data: bytes) -> None:
        self._deliver_locally(data)
        try:
            self._outbox.put_nowait(self._node + b"|" + data)
        except asyncio.QueueFull:
            logger.warning("redis outbox full, other processes miss this event")

    async def _send_forever(self) -> None:
        while True:
            message = await self._outbox.get()
            try:
                await self._redis.publish(self._channel, message)
            except (RedisError, OSError) as exc:
                logger.warning("redis publish failed, other processes miss this event: %s", exc)
            finally:
                self._outbox.task_done()

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def _listen_forever(self) -> None:
        delay = 0.1
        while True:
            try:
                async with self._subscriber.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    self.subscribed.set()
                    if delay > 0.1:
                        logger.info("redis subscription restored")
                    delay = 0.1
                    async for message in pubsub.listen():
                        self._on_message(message["data"])
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                logger.warning("redis subscription lost (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _on_message(self, raw: bytes) -> None:
        node, _, data = raw.partition(b"|")
        if node != self._node:
            self._deliver_locally(data)


def create_broker(redis_url: str | None, prefix: str = "aimessenger") -> Broker:
    """`prefix` names this deployment's channel: deployments sharing a Redis stay apart."""
    return RedisBroker(redis_url, f"{prefix}:events") if redis_url else MemoryBroker()
