from __future__ import annotations

import asyncio

import pytest

from core.broker import MemoryBroker, RedisBroker
from tests.conftest import TEST_REDIS_URL


async def test_memory_broker_delivers_to_every_listener_until_removed() -> None:
    broker = MemoryBroker()
    first: list[bytes] = []
    second: list[bytes] = []
    broker.add_listener(first.append)
    remove = broker.add_listener(second.append)
    await broker.publish(b"one")
    remove()
    await broker.publish(b"two")
    assert first == [b"one", b"two"]
    assert second == [b"one"]


async def test_a_failing_listener_does_not_stop_the_others() -> None:
    broker = MemoryBroker()
    received: list[bytes] = []

    def broken(_data: bytes) -> None:
        raise RuntimeError("boom")

    broker.add_listener(broken)
    broker.add_listener(received.append)
    await broker.publish(b"x")
    assert received == [b"x"]


@pytest.mark.redis
async def test_redis_broker_crosses_processes_once_each() -> None:
    assert TEST_REDIS_URL
    channel = f"test:{id(object())}"
    sender, receiver = RedisBroker(TEST_REDIS_URL, channel), RedisBroker(TEST_REDIS_URL, channel)
    at_sender: asyncio.Queue[bytes] = asyncio.Queue()
    at_receiver: asyncio.Queue[bytes] = asyncio.Queue()
    sender.add_listener(at_sender.put_nowait)
    receiver.add_listener(at_receiver.put_nowait)
    await sender.start()
    await receiver.start()
    try:
        await asyncio.wait_for(sender.subscribed.wait(), 5)
        await asyncio.wait_for(receiver.subscribed.wait(), 5)
        await sender.publish(b"hello")
        assert await asyncio.wait_for(at_receiver.get(), 5) == b"hello"
        # The sender's own copy comes back from Redis before the receiver's marker does;
        # it must not be delivered a second time.
        await receiver.publish(b"marker")
        assert await asyncio.wait_for(at_sender.get(), 5) == b"hello"
        assert await asyncio.wait_for(at_sender.get(), 5) == b"marker"
    finally:
        await sender.close()
        await receiver.close()


async def test_unreachable_redis_still_serves_local_listeners() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0", "test:unreachable")
    received: list[bytes] = []
    broker.add_listener(received.append)
    await broker.start()
    try:
        await broker.publish(b"local")
        assert received == [b"local"]
        assert await broker.ping() is False
    finally:
        await broker.close()
