from __future__ import annotations

import asyncio
import uuid

import pytest

from core.broker import MemoryBroker, RedisBroker
from core.envelope import Envelope, encode_envelope, topic_route, user_route
from core.redis_client import RedisTarget
from tests.conftest import TEST_REDIS_URL
from tests.support.processes import TcpProxy

WAIT = 5


def _for(*user_ids: int, text: str = "x", topics: tuple[str, ...] = ()) -> bytes:
    return encode_envelope(user_ids, text.encode(), topics=topics)


def _service(text: str) -> bytes:
    return encode_envelope([], text.encode(), service="test")


def _texts(envelopes: list[Envelope]) -> list[str]:
    return [envelope.frame.decode() for envelope in envelopes]


async def test_a_route_hears_only_what_is_for_it_and_process_listeners_hear_everything() -> None:
    broker = MemoryBroker()
    everything: list[Envelope] = []
    alice: list[Envelope] = []
    topic: list[Envelope] = []
    broker.add_listener(everything.append)
    stop_alice = await broker.subscribe(user_route(1), alice.append)
    await broker.subscribe(topic_route("news"), topic.append)
    await broker.publish(_for(1, 2, text="both"))
    await broker.publish(_for(2, text="bob's"))
    await broker.publish(_for(2, text="news", topics=("news",)))
    await broker.publish(_service("service"))
    await stop_alice()
    await broker.publish(_for(1, text="after"))
    assert _texts(everything) == ["both", "bob's", "news", "service", "after"]
    assert _texts(alice) == ["both"]
    assert _texts(topic) == ["news"]


async def test_a_failing_listener_does_not_stop_the_others() -> None:
    broker = MemoryBroker()
    received: list[Envelope] = []

    def broken(_envelope: Envelope) -> None:
        raise RuntimeError("boom")

    broker.add_listener(broken)
    broker.add_listener(received.append)
    await broker.publish(_for(1))
    assert _texts(received) == ["x"]


def _redis_broker(url: str, prefix: str) -> RedisBroker:
    return RedisBroker(RedisTarget((url,)), prefix)


@pytest.mark.redis
async def test_a_process_receives_only_its_routes_once_each_and_not_its_own_echo() -> None:
    assert TEST_REDIS_URL
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    sender, receiver = _redis_broker(TEST_REDIS_URL, prefix), _redis_broker(TEST_REDIS_URL, prefix)
    at_sender: asyncio.Queue[Envelope] = asyncio.Queue()
    at_receiver: asyncio.Queue[Envelope] = asyncio.Queue()
    services: asyncio.Queue[Envelope] = asyncio.Queue()
    await sender.start()
    await receiver.start()
    try:
        assert sender.subscribed
        assert receiver.subscribed
        await sender.subscribe(user_route(1), at_sender.put_nowait)
        await receiver.subscribe(user_route(2), at_receiver.put_nowait)
        receiver.add_listener(services.put_nowait)
        await sender.publish(_for(3, text="nobody's here"))
        await sender.publish(_for(1, 2, text="hello"))
        assert (await asyncio.wait_for(at_receiver.get(), WAIT)).frame == b"hello"
        await sender.publish(_service("to all"))
        assert (await asyncio.wait_for(services.get(), WAIT)).frame == b"to all"
        # The sender's own copy comes back from Redis before the receiver's marker does; it
        # must not be delivered a second time.
        await receiver.publish(_for(1, text="marker"))
        assert (await asyncio.wait_for(at_sender.get(), WAIT)).frame == b"hello"
        assert (await asyncio.wait_for(at_sender.get(), WAIT)).frame == b"marker"
        # One message per route (3, then 1 and 2, then the broadcast one); the receiver got
        # the one for its user and the broadcast one, nothing for users it does not hold.
        assert sender.stats.published == 3
        assert sender.stats.sent == 4
        assert receiver.stats.received == 2
        assert receiver.stats.unrouted == 0
        assert at_receiver.empty()
        # Its process listeners heard its own publish, and nothing else for users.
        assert services.get_nowait().frame == b"marker"
        assert services.empty()
    finally:
        await sender.close()
        await receiver.close()


@pytest.mark.redis
async def test_a_route_lost_with_its_connection_is_restored_and_says_so() -> None:
    assert TEST_REDIS_URL
    host, _, port = TEST_REDIS_URL.split("//")[1].split("/")[0].partition(":")
    proxy = TcpProxy(host, int(port or 6379))
    await proxy.start()
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    sender = _redis_broker(TEST_REDIS_URL, prefix)
    receiver = _redis_broker(f"redis://127.0.0.1:{proxy.port}/0", prefix)
    received: asyncio.Queue[Envelope] = asyncio.Queue()
    restored: asyncio.Queue[set[str]] = asyncio.Queue()
    receiver.on_restored(restored.put_nowait)
    await sender.start()
    await receiver.start()
    try:
        await receiver.subscribe(user_route(1), received.put_nowait)
        await proxy.cut()
        await sender.publish(_for(1, text="missed"))
        # Subscribing while Redis is away returns at once; that route is restored too.
        await receiver.subscribe(user_route(2), received.put_nowait)
        await proxy.restore()
        routes: set[str] = set()
        while not {user_route(1), user_route(2)} <= routes:
            routes |= await asyncio.wait_for(restored.get(), WAIT)
        await sender.publish(_for(2, text="live again"))
        assert (await asyncio.wait_for(received.get(), WAIT)).frame == b"live again"
    finally:
        await sender.close()
        await receiver.close()
        await proxy.cut()


async def test_unreachable_redis_still_serves_local_listeners() -> None:
    broker = _redis_broker("redis://127.0.0.1:1/0", "test-unreachable")
    received: list[Envelope] = []
    broker.add_listener(received.append)
    await broker.start()
    try:
        await broker.subscribe(user_route(1), received.append)
        await broker.publish(_for(1, text="local"))
        assert _texts(received) == ["local", "local"]
        assert await broker.ping() is False
    finally:
        await broker.close()
