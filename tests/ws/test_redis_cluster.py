"""Two API processes on a real local Redis Cluster (REDIS_CLUSTER_URLS): presence and rate
limits are shared through it, and survive a node's restart; while the cluster is down the API
keeps answering, with rate limits held per process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
import pytest

from bench.redis_cluster import LocalRedisCluster
from tests.support.api import ApiUser, sign_up
from tests.support.server import LiveServer
from tests.support.ws import ws_user
from tests.ws.conftest import PairFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis_cluster]

# One token a minute, two at once: a third send within the test is refused, wherever it goes.
TWO_SENDS = {"SEND_BURST": "2", "SENDS_PER_MINUTE": "1"}


async def _user(server: LiveServer, telegram_id: int, name: str) -> ApiUser:
    return await sign_up(httpx.AsyncClient(base_url=server.base_url, timeout=30), telegram_id, name)


async def _online(user: ApiUser, chat_id: int) -> list[int]:
    body = await user.ok("GET", f"/api/v1/chats/{chat_id}/online")
    online: list[int] = body["user_ids"]
    return online


async def _eventually(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(30):
        while not await check():  # noqa: ASYNC110 (polling another process)
            await asyncio.sleep(0.05)


async def _send_status(user: ApiUser, chat_id: int, text: str) -> int:
    response = await user.post(f"/api/v1/chats/{chat_id}/messages", json={"text": text})
    assert response.status_code in (200, 429), response.text
    if response.status_code == 429:
        assert response.json()["code"] == "send_rate_limited"
    return response.status_code


async def test_a_socket_on_one_process_is_online_on_the_other(
    start_on_redis_cluster: PairFactory,
) -> None:
    async with start_on_redis_cluster() as pair:
        alice = await _user(pair.b, 61, "Alice")
        bob = await _user(pair.a, 62, "Bob")
        chat = await alice.private_chat_with(bob)
        assert await _online(alice, chat["id"]) == []
        async with ws_user(pair.a, 62, "Bob"):
            # Counted before the socket's connection_established.
            assert await _online(alice, chat["id"]) == [bob.id]
        await _eventually(lambda: _is_offline(alice, chat["id"], bob))


async def _is_offline(asking: ApiUser, chat_id: int, user: ApiUser) -> bool:
    return user.id not in await _online(asking, chat_id)


async def test_the_send_limit_is_one_bucket_across_processes_on_the_cluster(
    start_on_redis_cluster: PairFactory,
) -> None:
    async with start_on_redis_cluster(**TWO_SENDS) as pair:
        on_a = await _user(pair.a, 63, "Alice")
        on_b = await _user(pair.b, 63, "Alice")
        bob = await _user(pair.a, 64, "Bob")
        chat = await on_a.private_chat_with(bob)
        assert await _send_status(on_a, chat["id"], "1") == 200
        assert await _send_status(on_b, chat["id"], "2") == 200
        assert await _send_status(on_b, chat["id"], "3") == 429
        assert await _send_status(on_a, chat["id"], "4") == 429


async def test_a_node_restart_keeps_the_api_answering_and_then_shares_again(
    start_on_redis_cluster: PairFactory, redis_cluster: LocalRedisCluster
) -> None:
    async with start_on_redis_cluster(**TWO_SENDS) as pair:
        carol_on_a = await _user(pair.a, 65, "Carol")
        bob = await _user(pair.a, 66, "Bob")
        dave_on_a = await _user(pair.a, 67, "Dave")
        dave_on_b = await _user(pair.b, 67, "Dave")
        with_carol = await bob.private_chat_with(carol_on_a)
        with_dave = await bob.private_chat_with(dave_on_a)
        async with redis_cluster.down(redis_cluster.nodes[0]):
            await redis_cluster.wait_failed()  # every key refused, not only the node's
            # Each process limits on its own: Carol's two sends on A leave B's bucket whole.
            carol_on_b = await _user(pair.b, 65, "Carol")
            for text in ("1", "2"):
                assert await _send_status(carol_on_a, with_carol["id"], text) == 200
            assert await _send_status(carol_on_a, with_carol["id"], "3") == 429
            assert await _send_status(carol_on_b, with_carol["id"], "4") == 200
            # Presence unknown: everyone counts as online rather than nobody.
            assert await _online(carol_on_b, with_carol["id"]) == sorted([bob.id, carol_on_a.id])
        # Back: a new socket is seen from the other process, and Dave's bucket is one again.
        async with ws_user(pair.a, 66, "Bob"):
            await _eventually(lambda: _is_online(dave_on_b, with_dave["id"], bob))
        assert await _send_status(dave_on_a, with_dave["id"], "1") == 200
        assert await _send_status(dave_on_b, with_dave["id"], "2") == 200
        assert await _send_status(dave_on_b, with_dave["id"], "3") == 429


async def _is_online(asking: ApiUser, chat_id: int, user: ApiUser) -> bool:
    return user.id in await _online(asking, chat_id)


async def test_events_cross_processes_on_the_cluster(start_on_redis_cluster: PairFactory) -> None:
    """Needs the broker on the cluster (sharded pub/sub)."""
    async with start_on_redis_cluster() as pair:
        alice = await _user(pair.a, 68, "Alice")
        bob = await _user(pair.a, 69, "Bob")
        chat = await alice.private_chat_with(bob)
        async with ws_user(pair.b, 69, "Bob") as bob_ws:
            sent = await alice.send(chat["id"], "from process A")
            assert (await bob_ws.wait_for("new_message"))["message"]["id"] == sent["id"]


async def test_sockets_catch_up_by_themselves_after_a_node_restart(
    start_on_redis_cluster: PairFactory, redis_cluster: LocalRedisCluster
) -> None:
    """While a node is down the cluster refuses every key, so publishes fail on every shard,
    also on those whose subscriptions stayed up: once the node is back, every socket on the
    process resumes from the database, with no later event and no resume from the client."""
    async with start_on_redis_cluster() as pair:
        alice = await _user(pair.a, 70, "Alice")
        readers = [await _user(pair.a, 71 + n, f"R{n}") for n in range(6)]
        chats = [await alice.private_chat_with(reader) for reader in readers]
        async with AsyncExitStack() as stack:
            sockets = [
                await stack.enter_async_context(
                    ws_user(pair.b, reader.telegram_id, reader.first_name)
                )
                for reader in readers
            ]
            # Each socket gets a position in its chat (as a client's resume would give it).
            for socket, chat in zip(sockets, chats, strict=True):
                before = await alice.send(chat["id"], "before")
                assert (await socket.wait_for("new_message"))["message"]["id"] == before["id"]
            async with redis_cluster.down(redis_cluster.nodes[0]):
                await redis_cluster.wait_failed()
                missed = [(await alice.send(chat["id"], "while down"))["id"] for chat in chats]
            for socket, message_id in zip(sockets, missed, strict=True):
                frame = await socket.wait_for("new_message", timeout=30)
                assert frame["message"]["id"] == message_id
