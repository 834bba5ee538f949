"""A send costs one database round trip on PostgreSQL, counted on the wire.

The server talks to PostgreSQL through `bench.pg_proxy`, which counts the client's Sync and
Query messages: each is a wait for the server. Once a sender's credentials have been seen (the
first request resolves the user), a REST send and a socket send each cost exactly one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.pg_proxy import CountingProxy, counting_proxy
from tests.conftest import make_settings
from tests.support.api import RunningApp, running_app, sign_up
from tests.support.database import TEST_DATABASE_URL
from tests.support.ws import ws_user

pytestmark = pytest.mark.skipif(
    TEST_DATABASE_URL is None, reason="round trips to PostgreSQL (TEST_DATABASE_URL)"
)

SENDS = 20


@pytest.fixture
async def proxy(database_url: str, engine: AsyncEngine) -> AsyncIterator[CountingProxy]:
    """`engine`: the database is migrated."""
    async with counting_proxy(database_url) as proxied:
        yield proxied


@pytest.fixture
async def proxied_app(proxy: CountingProxy, tmp_path: Path) -> AsyncIterator[RunningApp]:
    async with running_app(make_settings(proxy.url, tmp_path, auth_cache_ttl=60)) as running:
        yield running


async def test_a_rest_send_is_one_round_trip(proxy: CountingProxy, proxied_app: RunningApp) -> None:
    alice = await sign_up(proxied_app.client, 801, "Alice", "alice")
    bob = await sign_up(proxied_app.client, 802, "Bob", "bob")
    chat = await alice.private_chat_with(bob)
    await alice.send(chat["id"], "warm-up")  # prepares the statement on a pooled connection

    before = proxy.trips.count
    sent = [await alice.send(chat["id"], f"message {n}") for n in range(SENDS)]
    assert proxy.trips.count - before == SENDS
    assert [message["seq"] for message in sent] == list(
        range(sent[0]["seq"], sent[0]["seq"] + SENDS)
    )


async def test_a_socket_send_is_one_round_trip(
    proxy: CountingProxy, proxied_app: RunningApp
) -> None:
    alice = await sign_up(proxied_app.client, 811, "Alice", "alice")
    bob = await sign_up(proxied_app.client, 812, "Bob", "bob")
    chat = await alice.private_chat_with(bob)
    async with ws_user(proxied_app.server, 811, "Alice") as socket:
        await socket.send(
            type="send_message", chat_id=chat["id"], text="warm-up", client_msg_id="w"
        )
        await socket.wait_for("ack")
        await socket.wait_for("new_message")

        before = proxy.trips.count
        for n in range(SENDS):
            await socket.send(
                type="send_message", chat_id=chat["id"], text=f"m{n}", client_msg_id=f"c{n}"
            )
            await socket.wait_for("ack")
        assert proxy.trips.count - before == SENDS
