from __future__ import annotations

import asyncio
import uuid

import pytest

from core.presence import RedisPresence
from tests.conftest import TEST_REDIS_URL


@pytest.mark.redis
async def test_redis_presence_counts_sockets_on_live_nodes_only() -> None:
    assert TEST_REDIS_URL
    prefix = f"test-presence-{uuid.uuid4().hex[:8]}"
    alive, crashed = RedisPresence(TEST_REDIS_URL, prefix), RedisPresence(TEST_REDIS_URL, prefix)
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
