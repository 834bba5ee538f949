from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from core.presence import RedisPresence
from core.redis_client import RedisTarget


async def test_redis_presence_counts_sockets_on_live_nodes_only(redis_target: RedisTarget) -> None:
    prefix = f"test-presence-{uuid.uuid4().hex[:8]}"
    alive, crashed = RedisPresence(redis_target, prefix), RedisPresence(redis_target, prefix)
    await alive.start()  # beats; `crashed` never does, like a process that died
    try:
        await alive.connected(1)
        await alive.connected(2)
        await alive.connected(2)
        await crashed.connected(3)
        async with asyncio.timeout(5):
            while await alive.online([1]) != {1}:  # noqa: ASYNC110 (the first beat)
                await asyncio.sleep(0.01)
        assert await alive.online([1, 2, 3, 4]) == {1, 2}
        await alive.disconnected(1)
        await alive.disconnected(2)  # one of two sockets
        assert await crashed.online([1, 2, 3, 4]) == {2}
        assert await alive.online([]) == set()
    finally:
        await alive.close()
        await crashed.close()


@pytest.fixture
async def presence(redis_target: RedisTarget) -> AsyncIterator[RedisPresence]:
    """One process's presence, under a prefix of its own."""
    presence = RedisPresence(redis_target, f"test-presence-{uuid.uuid4().hex[:8]}")
    await presence.start()
    try:
        yield presence
    finally:
        await presence.close()


async def test_online_answers_for_users_on_every_shard_and_claims_are_once_only(
    presence: RedisPresence,
) -> None:
    connected = set(range(1, 200, 3))  # keys on every shard of a cluster
    for user_id in connected:
        await presence.connected(user_id)
    async with asyncio.timeout(5):
        while not await presence.online([1]):  # noqa: ASYNC110 (the first beat)
            await asyncio.sleep(0.01)
    assert await presence.online(list(range(1, 200))) == connected
    assert await presence.claim("notify:1:2", 60) is True
    assert await presence.claim("notify:1:2", 60) is False
    assert await presence.claim("notify:1:3", 60) is True


async def test_a_socket_that_opens_as_the_last_one_closes_keeps_its_user_online(
    presence: RedisPresence,
) -> None:
    await presence.connected(1)
    async with asyncio.timeout(5):
        while not await presence.online([1]):  # noqa: ASYNC110 (the first beat)
            await asyncio.sleep(0.01)
    # Both requests are on their way before either answer: the close's count reaches 0
    # between them, and the open comes right after it.
    await asyncio.gather(presence.disconnected(1), presence.connected(1))
    assert await presence.online([1]) == {1}
