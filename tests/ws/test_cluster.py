"""Two API processes sharing PostgreSQL and Redis: events cross between them, and a Redis
outage degrades to per-process delivery plus resume, never to a broken API."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx
import pytest

from tests.support.api import ApiUser, sign_up
from tests.support.processes import Cluster
from tests.support.server import LiveServer
from tests.support.ws import WsClient, new_message, ws_user
from tests.ws.conftest import ClusterFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def _users(server: LiveServer, *names: tuple[int, str]) -> list[ApiUser]:
    client = httpx.AsyncClient(base_url=server.base_url, timeout=10)
    return [await sign_up(client, telegram_id, name) for telegram_id, name in names]


async def test_sender_and_recipient_on_different_processes(cluster: Cluster) -> None:
    alice, bob = await _users(cluster.a, (81, "Alice"), (82, "Bob"))
    chat = await alice.private_chat_with(bob)
    async with ws_user(cluster.a, 81, "Alice") as alice_ws, ws_user(cluster.b, 82, "Bob") as bob_ws:
        sent = await alice.send(chat["id"], "from process A")
        assert (await bob_ws.wait_for("new_message"))["message"]["id"] == sent["id"]
        await bob_ws.send(
            type="send_message", chat_id=chat["id"], text="from B", client_msg_id="b1"
        )
        ack = await bob_ws.wait_for("ack")
        delivered = await alice_ws.wait_for(
            "new_message", lambda f: f["message"]["text"] == "from B"
        )
        assert delivered["message"]["id"] == ack["message_id"]
        await bob_ws.send(type="typing", chat_id=chat["id"], is_typing=True)
        assert (await alice_ws.wait_for("typing"))["user_id"] == bob.id


async def test_a_group_spread_over_both_processes_gets_every_message_once(
    cluster: Cluster,
) -> None:
    users = await _users(cluster.a, *((90 + i, f"U{i}") for i in range(6)))
    group = await users[0].create_group("spread", *users[1:])
    async with AsyncExitStack() as stack:
        sockets: list[WsClient] = [
            await stack.enter_async_context(
                ws_user(cluster.a if i % 2 else cluster.b, 90 + i, f"U{i}")
            )
            for i in range(6)
        ]
        for n in range(5):
            await users[n % 6].send(group["id"], f"m{n}")
        # A later message follows any second copy of an earlier one.
        last = await users[5].send(group["id"], "last")
        for ws in sockets:
            frames = await ws.collect(5, "new_message")
            assert [f["message"]["text"] for f in frames] == [f"m{n}" for n in range(5)]
            await ws.none_before("new_message", new_message(last["id"]))


async def test_redis_outage_keeps_each_process_serving_and_resume_recovers(
    cluster: Cluster,
) -> None:
    alice, bob, carol = await _users(cluster.a, (84, "Alice"), (85, "Bob"), (86, "Carol"))
    with_bob = await alice.private_chat_with(bob)
    with_carol = await alice.private_chat_with(carol)
    async with (
        ws_user(cluster.a, 84, "Alice"),
        ws_user(cluster.a, 86, "Carol") as carol_ws,
        ws_user(cluster.b, 85, "Bob") as bob_ws,
    ):
        before = await alice.send(with_bob["id"], "before the outage")
        assert (await bob_ws.wait_for("new_message"))["message"]["id"] == before["id"]
        await cluster.proxy.cut()
        # Same process: still delivered. The API keeps answering.
        local = await alice.send(with_carol["id"], "during the outage")
        assert (await carol_ws.wait_for("new_message"))["message"]["id"] == local["id"]
        missed = await alice.send(with_bob["id"], "missed by B")
        ready = await alice.client.get("/health/ready")
        assert ready.status_code == 503
        await cluster.proxy.restore()
        # B catches up from the database with resume, exactly once: not live before it, not
        # twice in it.
        await bob_ws.send(type="resume", chats={str(with_bob["id"]): before["seq"]})
        replayed = await bob_ws.wait_for("new_message")
        assert replayed["message"]["id"] == missed["id"]
        await bob_ws.none_before("new_message", lambda frame: frame["type"] == "resumed")
        # And the doorbell works again once the processes have resubscribed: a probe that
        # arrives live (not by a replay) proves it.
        probes: set[int] = set()
        async with asyncio.timeout(20):
            while True:
                probes.add((await alice.send(with_bob["id"], "probe"))["id"])
                try:
                    frame = await bob_ws.wait_for("new_message", timeout=0.5)
                except TimeoutError:
                    continue
                assert frame["message"]["id"] in probes
                break


async def test_a_socket_whose_route_was_lost_catches_up_by_itself_when_redis_returns(
    cluster: Cluster,
) -> None:
    """The seam of a resubscription: what was published while the process's subscription was
    gone reaches the socket from the database once it is back, with no later event to reveal
    the gap and no resume from the client."""
    alice, bob = await _users(cluster.a, (184, "Alice"), (185, "Bob"))
    chat = await alice.private_chat_with(bob)
    async with ws_user(cluster.b, 185, "Bob") as bob_ws:
        before = await alice.send(chat["id"], "before the outage")
        assert (await bob_ws.wait_for("new_message"))["message"]["id"] == before["id"]
        await cluster.proxy.cut()
        missed = [(await alice.send(chat["id"], f"missed {n}"))["id"] for n in range(3)]
        await cluster.proxy.restore()
        frames = await bob_ws.collect(3, "new_message", timeout=20)
        assert [frame["message"]["id"] for frame in frames] == missed
        # Once each: nothing more before the next message.
        after = await alice.send(chat["id"], "after")
        await bob_ws.none_before("new_message", new_message(after["id"]), timeout=20)


async def test_the_send_limit_is_one_bucket_across_processes(start_cluster: ClusterFactory) -> None:
    async with start_cluster(SEND_BURST="3", SENDS_PER_MINUTE="1") as cluster:
        alice, bob = await _users(cluster.a, (87, "Alice"), (88, "Bob"))
        chat = await alice.private_chat_with(bob)
        await alice.send(chat["id"], "on A")
        on_b = await sign_up(
            httpx.AsyncClient(base_url=cluster.b.base_url, timeout=10), 87, "Alice"
        )
        await on_b.send(chat["id"], "on B")
        async with ws_user(cluster.b, 87, "Alice") as ws:
            await ws.send(type="send_message", chat_id=chat["id"], text="3", client_msg_id="c3")
            await ws.wait_for("ack")
            await ws.send(type="send_message", chat_id=chat["id"], text="4", client_msg_id="c4")
            error = await ws.wait_for("error")
            assert (error["code"], error["client_msg_id"]) == ("send_rate_limited", "c4")
        refused = await alice.post(f"/api/v1/chats/{chat['id']}/messages", json={"text": "5"})
        assert (refused.status_code, refused.json()["code"]) == (429, "send_rate_limited")
