"""Event brokers: how a published envelope reaches the processes that need it.

The broker is a doorbell, not a store: delivery is at most once, and the database's
`chat_events` are the truth that clients recover gaps from.

Routed fan-out. An envelope travels on routes (core/envelope.py): one per user it is for
(`u:<id>`), one per topic it carries, or the broadcast route for what every process needs (a
service envelope: an AI job, a revoked session). A process subscribes only to the routes its
listeners asked for: the hub to the users with a socket on it, the notifier to its topic. So
what a process receives grows with the sockets it holds, not with the cluster's traffic.

Listeners are plain callables that must not block (they hand the bytes to queues):

- `subscribe(route, listener)` calls the listener with every envelope on that route, once, from
  whichever process it was published by. It returns once the subscription is live: what is
  published after that is delivered; what was published before is in the database (the seam:
  a socket resumes from the database after its user's route is live).
- `add_listener(listener)` calls it with every envelope this process publishes and every
  broadcast envelope (from any process), once each.
- `on_restored(callback)` learns the routes whose subscription was lost (Redis restarted, a
  connection cut) and is live again: whatever was published meanwhile was missed, and the
  callback resumes the affected sockets from the database.

With Redis, every route is a channel `<prefix>:<route>`; on a Redis Cluster a sharded channel
(SSUBSCRIBE / SPUBLISH), so that each channel lives on one shard and a process keeps one
connection per shard it has subscriptions on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, ConnectionPool, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException

from core.envelope import BROADCAST, Envelope, decode_envelope
from core.redis_client import REDIS_ERRORS, RedisTarget

logger = logging.getLogger(__name__)

Listener = Callable[[Envelope], None]
RestoredCallback = Callable[[set[str]], None]
Unsubscribe = Callable[[], Awaitable[None]]

CLOSE_FLUSH_TIMEOUT = 2.0
PUBLISH_BATCH = 256  # envelopes sent to Redis in one pipeline, at most
CLUSTER_RECOVERY_TIMEOUT = 30.0  # a shard back, how long to wait for the cluster to serve all


@dataclass(slots=True)
class BrokerStats:
    """What this process sent and received through Redis (the capacity model's inputs)."""

    published: int = 0  # envelopes this process published
    sent: int = 0  # messages it sent to Redis: one per route of each envelope
    received: int = 0  # messages Redis delivered to it
    unrouted: int = 0  # of those, messages no listener here wanted any more


class Broker(ABC):
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._routes: dict[str, list[Listener]] = {}
        self._restored: list[RestoredCallback] = []
        self.stats = BrokerStats()

    @property
    def route_count(self) -> int:
        """Routes some listener here subscribed to (users' and topics'; not the broadcast)."""
        return len(self._routes)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Every envelope this process publishes and every broadcast one; returns the function
        that removes the listener."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def on_restored(self, callback: RestoredCallback) -> Callable[[], None]:
        self._restored.append(callback)
        return lambda: self._restored.remove(callback)

    async def subscribe(self, route: str, listener: Listener) -> Unsubscribe:
        """Deliver the route's envelopes to `listener` from now on; returns when the route is
        live (or, while Redis is unreachable, at once: `on_restored` follows)."""
        listeners = self._routes.setdefault(route, [])
        listeners.append(listener)
        await self._open(route)

        async def unsubscribe() -> None:
            current = self._routes.get(route)
            if current is None or listener not in current:
                return
            current.remove(listener)
            if not current:
                del self._routes[route]
                await self._close(route)

        return unsubscribe

    async def publish(self, data: bytes) -> None:
        envelope = decode_envelope(data)
        routes = envelope.routes()
        self.stats.published += 1
        for listener in tuple(self._listeners):
            _call(listener, envelope)
        for route in routes:
            if route != BROADCAST:
                for listener in tuple(self._routes.get(route, ())):
                    _call(listener, envelope)
        self._send(routes, data)

    def _arrived(self, route: str, data: bytes) -> None:
        """An envelope another process published, on one of our routes."""
        self.stats.received += 1
        listeners = self._listeners if route == BROADCAST else self._routes.get(route)
        if not listeners:
            self.stats.unrouted += 1
            return
        envelope = decode_envelope(data)
        for listener in tuple(listeners):
            _call(listener, envelope)

    def _restore(self, routes: set[str]) -> None:
        for callback in tuple(self._restored):
            try:
                callback(routes)
            except Exception:
                logger.exception("broker restore callback failed")

    async def start(self) -> None:
        """Open connections and begin listening."""

    async def close(self) -> None:
        """Stop listening and release connections."""

    async def _open(self, route: str) -> None:
        """Make the route live on the wire (nothing to do in one process)."""

    async def _close(self, route: str) -> None:
        """Nobody here wants the route any more."""

    def _send(self, routes: list[str], data: bytes) -> None:
        """Send the envelope to the other processes (nothing to do in one process)."""

    @abstractmethod
    async def ping(self) -> bool: ...


def _call(listener: Listener, envelope: Envelope) -> None:
    try:
        listener(envelope)
    except Exception:
        logger.exception("event listener failed")


class MemoryBroker(Broker):
    """One process, no services: publish calls the listeners directly."""

    async def ping(self) -> bool:
        return True


class _Link:
    """One pub/sub connection (to the Redis, or to one shard of a cluster) and the channels
    wanted on it. A subscription counts as live once Redis confirmed it on the current
    connection; one confirmed again on a new connection after a loss is restored.

    A plain connection, not redis-py's PubSub: that one reconnects and resubscribes behind its
    user's back, and a subscription lost and renewed unseen is a window of missed events that
    nobody resumes from the database."""

    def __init__(
        self,
        connect: Callable[[], Connection],
        name: str,
        *,
        sharded: bool,
        on_message: Callable[[bytes, bytes], None],
        on_restored: Callable[[set[bytes]], None],
    ) -> None:
        self._connect = connect
        self._name = name
        self._subscribe, self._unsubscribe = (
            ("SSUBSCRIBE", "SUNSUBSCRIBE") if sharded else ("SUBSCRIBE", "UNSUBSCRIBE")
        )
        self._messages = (b"smessage", b"message")
        self._confirmations = (b"ssubscribe", b"subscribe")
        self._sharded = sharded
        self._on_message = on_message
        self._on_restored = on_restored
        self._wanted: set[bytes] = set()
        self.live: set[bytes] = set()  # confirmed on the current connection
        self._lost: set[bytes] = set()  # wanted while no connection had them
        self._restored: set[bytes] = set()  # live again, not reported yet
        self._lost_once = False  # a connection was lost or failed: the next one is a restore
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._connection: Connection | None = None  # while connected
        self._tried = asyncio.Event()  # the first connection was made, or failed
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name=f"broker-{self._name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def add(self, channel: bytes) -> None:
        await self._tried.wait()
        self._wanted.add(channel)
        if channel in self.live:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, []).append(waiter)
        if not await self._send(self._subscribe, [channel]):
            # Redis is away: what is published meanwhile is missed, and the subscription's
            # restore, once Redis is back, says so.
            self._lost.add(channel)
            waiter.set_result(None)
        await waiter

    async def remove(self, channel: bytes) -> None:
        self._wanted.discard(channel)
        self.live.discard(channel)
        self._lost.discard(channel)
        await self._send(self._unsubscribe, [channel])

    async def _send(self, command: str, channels: Sequence[bytes]) -> bool:
        """Whether the command went out on the current connection. Never connects: a lost
        connection is renewed by the reader, which then resubscribes everything."""
        connection = self._connection
        if connection is None or not connection.is_connected:
            return False
        try:
            # One SSUBSCRIBE may not span slots: a command per channel.
            for group in ([c] for c in channels) if self._sharded else [channels]:
                await connection.send_command(command, *group, check_health=False)
        except REDIS_ERRORS:
            return False  # the reader sees the connection fail too, and wakes the waiters
        return True

    async def _run_forever(self) -> None:
        delay = 0.1
        while True:
            connection = self._connect()
            try:
                await connection.connect()  # type: ignore[no-untyped-call]
                self._connection = connection
                self._tried.set()
                self._lost |= self._wanted - self.live
                if self._wanted:
                    await self._send(self._subscribe, sorted(self._wanted))
                elif self._lost_once:
                    # Nothing to confirm here, but the owner learns that this node is back.
                    asyncio.get_running_loop().call_soon(self._report_restored)
                if self._lost_once:
                    logger.info("redis subscription restored (%s)", self._name)
                delay = 0.1
                while True:
                    self._handle(
                        await connection.read_response(timeout=math.inf, push_request=True)
                    )
            except REDIS_ERRORS as exc:
                self._disconnected()
                self._tried.set()
                self._lost_once = True
                logger.warning(
                    "redis subscription lost (%s: %s); retrying in %.1fs", self._name, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self._disconnected()
                with contextlib.suppress(*REDIS_ERRORS):
                    await connection.disconnect()

    def _handle(self, response: object) -> None:
        if not isinstance(response, list) or len(response) < 3:
            return
        kind, channel = response[0], response[1]
        if kind in self._messages:
            self._on_message(channel, response[2])
        elif kind in self._confirmations:
            for waiter in self._waiters.pop(channel, ()):
                if not waiter.done():
                    waiter.set_result(None)
            if channel not in self._wanted:
                return  # given up on since
            self.live.add(channel)
            if channel in self._lost:
                self._lost.discard(channel)
                # Reported together: the confirmations of a resubscription come in a burst, and
                # the hub replays each chat once for all the sockets of all restored users.
                if not self._restored:
                    asyncio.get_running_loop().call_soon(self._report_restored)
                self._restored.add(channel)

    def _report_restored(self) -> None:
        restored, self._restored = self._restored, set()
        self._on_restored(restored)

    def _disconnected(self) -> None:
        self._connection = None
        self.live.clear()
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self._waiters.clear()


class RedisBroker(Broker):
    """Routes as channels on one Redis, or as sharded channels on a Redis Cluster.

    Local listeners are called at once on publish; the copy that comes back from Redis to the
    publishing process is recognised by its node id and skipped. Publishing to Redis happens in
    the background, in order and in batches, so that a slow or absent Redis never holds up a
    request. If Redis is unreachable the process keeps serving its own listeners, drops what it
    cannot send, and resubscribes when Redis returns (`on_restored`).
    """

    def __init__(self, target: RedisTarget, prefix: str, *, outbox_size: int = 10_000) -> None:
        super().__init__()
        self._prefix = prefix.encode() + b":"
        self._node = uuid.uuid4().hex.encode()
        self._publisher = target.client(socket_timeout=5)
        self._cluster = self._publisher if isinstance(self._publisher, RedisCluster) else None
        # Subscribers connect as the (first) URL says: credentials, TLS; a shard's at its address.
        self._subscriber_options = {**parse_url(target.urls[0]), **_SUBSCRIBER_OPTIONS}
        self._links: dict[str, _Link] = {}
        self._cluster_restore: asyncio.Task[None] | None = None
        self._outbox: asyncio.Queue[tuple[list[str], bytes]] = asyncio.Queue(outbox_size)
        self._sender: asyncio.Task[None] | None = None

    # -- channels ---------------------------------------------------------------------------

    def _channel(self, route: str) -> bytes:
        return self._prefix + route.encode()

    def _link(self, channel: bytes) -> _Link:
        """The connection that subscribes to the channel: the one Redis's, or that of the
        cluster node whose slot holds it."""
        if self._cluster is None:
            name = "redis"
            if name not in self._links:
                pool = ConnectionPool(**self._subscriber_options)
                self._links[name] = self._new_link(pool.make_connection, name, sharded=False)
            return self._links[name]
        node = self._cluster.get_node_from_key(channel.decode())
        if node is None:
            raise RedisClusterException(f"no cluster node serves {channel!r}")
        return self._node_link(node)

    def _node_link(self, node: ClusterNode) -> _Link:
        if node.name not in self._links:
            pool = ConnectionPool(
                **{**self._subscriber_options, "host": node.host, "port": node.port}
            )
            self._links[node.name] = self._new_link(pool.make_connection, node.name, sharded=True)
        return self._links[node.name]

    def _new_link(self, connect: Callable[[], Connection], name: str, *, sharded: bool) -> _Link:
        link = _Link(
            connect,
            name,
            sharded=sharded,
            on_message=self._on_message,
            on_restored=self._on_restored,
        )
        link.start()
        return link

    def _on_message(self, channel: bytes, raw: bytes) -> None:
        node, _, data = raw.partition(b"|")
        if node != self._node:
            self._arrived(channel[len(self._prefix) :].decode(), data)

    def _on_restored(self, channels: set[bytes]) -> None:
        if self._cluster is None:
            self._restore(self._routes_of(channels))
        elif self._cluster_restore is None or self._cluster_restore.done():
            self._cluster_restore = asyncio.create_task(self._restore_cluster())

    async def _restore_cluster(self) -> None:
        """A shard is back. While it was away the cluster refused every key, so publishes on
        the channels of the shards that stayed up failed too, unseen by their subscriptions:
        once the cluster serves every slot again, every route here is reported restored."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLUSTER_RECOVERY_TIMEOUT):
                while not await self.ping():  # noqa: ASYNC110 (asking Redis, not waiting on us)
                    await asyncio.sleep(0.1)
        self._restore(self._routes_of({c for link in self._links.values() for c in link.live}))

    def _routes_of(self, channels: set[bytes]) -> set[str]:
        return {channel[len(self._prefix) :].decode() for channel in channels}

    async def _open(self, route: str) -> None:
        channel = self._channel(route)
        await self._link(channel).add(channel)

    async def _close(self, route: str) -> None:
        channel = self._channel(route)
        await self._link(channel).remove(channel)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribes to the broadcast route, waiting for the first connection to Redis to be
        made or to fail: a process that starts while Redis is away serves on, and subscribes
        when Redis comes."""
        if self._cluster is not None:
            await self._cluster.initialize()
            # A link to every shard, even those none of our channels live on: a shard that goes
            # away stops the whole cluster, and its return is when our routes are restored.
            for node in self._cluster.get_primaries():
                self._node_link(node)
        channel = self._channel(BROADCAST)
        await self._link(channel).add(channel)
        self._sender = asyncio.create_task(self._send_forever(), name="redis-broker-send")

    async def close(self) -> None:
        # What was published before closing still goes out (a CLI's one event, for instance),
        # unless Redis cannot take it within the flush timeout.
        if self._sender is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_FLUSH_TIMEOUT):
                    await self._outbox.join()
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._cluster_restore is not None:
            self._cluster_restore.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cluster_restore
        for link in self._links.values():
            await link.close()
        await self._publisher.aclose()

    @property
    def subscribed(self) -> bool:
        """Whether this process hears the broadcast route now."""
        return self._channel(BROADCAST) in {
            channel for link in self._links.values() for channel in link.live
        }

    # -- publishing ------------------------------------------------------------------------------

    def _send(self, routes: list[str], data: bytes) -> None:
        try:
            self._outbox.put_nowait((routes, self._node + b"|" + data))
        except asyncio.QueueFull:
            logger.warning("redis outbox full, other processes miss this event")

    async def _send_forever(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < PUBLISH_BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                await self._publish_batch(batch)
                self.stats.sent += sum(len(routes) for routes, _ in batch)
            except REDIS_ERRORS as exc:
                logger.warning(
                    "redis publish failed, other processes miss %d events: %s", len(batch), exc
                )
            finally:
                for _ in batch:
                    self._outbox.task_done()

    async def _publish_batch(self, batch: list[tuple[list[str], bytes]]) -> None:
        """One pipeline: one round trip to the Redis, or one to each shard concerned."""
        async with self._publisher.pipeline(transaction=False) as pipe:
            publish = pipe.publish if self._cluster is None else pipe.spublish
            for routes, message in batch:
                for route in routes:
                    publish(self._channel(route), message)
            await pipe.execute()

    async def ping(self) -> bool:
        try:
            if self._cluster is not None:
                # Any node answers PING; a cluster missing a shard refuses every key.
                info = await self._cluster.cluster_info()
                return str(info.get("cluster_state")) == "ok"
            return bool(await self._publisher.ping())
        except REDIS_ERRORS:
            return False


# A subscriber waits on a quiet channel for as long as it is quiet: no read timeout; TCP
# keepalive finds a dead peer. No retries inside redis-py: a lost connection is the link's to
# renew, so that it knows its subscriptions were lost.
_SUBSCRIBER_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 2,
    "socket_keepalive": True,
    "retry": Retry(NoBackoff(), retries=0),
}


def create_broker(target: RedisTarget | None, prefix: str = "aimessenger") -> Broker:
    """`prefix` names this deployment's channels: deployments sharing a Redis stay apart."""
    return RedisBroker(target, prefix) if target is not None else MemoryBroker()
