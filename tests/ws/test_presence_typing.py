"""Ephemeral events: presence and typing. Never stored, sent only to people who share a chat."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import ChatEvent, User
from tests.conftest import make_settings
from tests.support.api import ApiUser, sign_up
from tests.support.server import LiveServer, live_server
from tests.support.ws import Frame, ws_user
from webapp_api.app import create_app

GRACE = 0.3
TYPING_TTL = 0.5  # longer than GRACE: a typing expiry marks a grace's end


@dataclass
class Quick:
    """A server with short presence and typing timers, and three users: two share a chat."""

    server: LiveServer
    app: FastAPI
    alice: ApiUser
    bob: ApiUser
    stranger: ApiUser
    chat_id: int


@pytest.fixture
async def quick(database_url: str, tmp_dir: Path) -> AsyncIterator[Quick]:
    settings = make_settings(
        database_url, tmp_dir, ws_presence_grace=GRACE, ws_typing_ttl=TYPING_TTL
    )
    app = create_app(settings)
    async with live_server(app) as server, httpx.AsyncClient(base_url=server.base_url) as http:
        alice = await sign_up(http, 71, "Alice")
        bob = await sign_up(http, 72, "Bob")
        stranger = await sign_up(http, 73, "Stan")
        chat = await alice.private_chat_with(bob)
        yield Quick(server, app, alice, bob, stranger, chat["id"])


def _typing_expired(user: ApiUser, chat_id: int) -> Callable[[Frame], bool]:
    """A marker: typing started now expires TYPING_TTL later, after any presence grace (GRACE)
    or earlier typing that began before it: their absent frames would come first."""
    return lambda frame: (
        frame["type"] == "typing"
        and ((frame["user_id"], frame["chat_id"], frame["is_typing"]) == (user.id, chat_id, False))
    )


async def test_online_on_the_first_socket_offline_after_the_last_plus_grace(
    quick: Quick, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with ws_user(quick.server, 71, "Alice") as alice_ws:
        async with ws_user(quick.server, 72, "Bob") as bob_ws:
            online = await alice_ws.wait_for("user_status")
            assert (online["user_id"], online["is_online"]) == (quick.bob.id, True)
            async with ws_user(quick.server, 72, "Bob"):
                pass
            # One of two sockets came and went: nothing, not even once its grace is over.
            await bob_ws.send(type="typing", chat_id=quick.chat_id, is_typing=True)
            await alice_ws.none_before("user_status", _typing_expired(quick.bob, quick.chat_id))
        offline = await alice_ws.wait_for("user_status")
        assert (offline["user_id"], offline["is_online"]) == (quick.bob.id, False)
        assert offline["last_seen_at"]
    async with sessionmaker() as session:
        bob = await session.scalar(select(User).where(User.id == quick.bob.id))
        assert bob is not None
        assert bob.last_seen_at is not None


async def test_a_quick_reconnect_does_not_flap(quick: Quick) -> None:
    async with ws_user(quick.server, 71, "Alice") as alice_ws:
        async with ws_user(quick.server, 72, "Bob"):
            assert (await alice_ws.wait_for("user_status"))["is_online"] is True
        async with ws_user(quick.server, 72, "Bob") as bob_ws:
            await bob_ws.send(type="typing", chat_id=quick.chat_id, is_typing=True)
            await alice_ws.none_before("user_status", _typing_expired(quick.bob, quick.chat_id))


async def test_people_without_a_shared_chat_see_no_presence(quick: Quick) -> None:
    await quick.stranger.private_chat_with(quick.alice)
    # Someone Stan shares a chat with comes online after Bob: that comes, Bob's does not.
    async with (
        ws_user(quick.server, 73, "Stan") as stranger_ws,
        ws_user(quick.server, 72, "Bob"),
        ws_user(quick.server, 71, "Alice"),
    ):
        await stranger_ws.none_before(
            "user_status",
            lambda frame: frame["type"] == "user_status" and frame["user_id"] == quick.alice.id,
        )


async def test_typing_reaches_the_others_and_expires_by_itself(quick: Quick) -> None:
    async with (
        ws_user(quick.server, 71, "Alice") as alice_ws,
        ws_user(quick.server, 72, "Bob") as bob_ws,
    ):
        await alice_ws.send(type="typing", chat_id=quick.chat_id, is_typing=True)
        typing = await bob_ws.wait_for("typing")
        assert typing == {
            "type": "typing",
            "chat_id": quick.chat_id,
            "user_id": quick.alice.id,
            "is_typing": True,
            "expires_in": TYPING_TTL,
        }
        expired = await bob_ws.wait_for("typing", timeout=TYPING_TTL * 4)
        assert expired["is_typing"] is False
        # Bob's typing reaches Alice after anything her own would have brought her.
        await bob_ws.send(type="typing", chat_id=quick.chat_id, is_typing=True)
        await alice_ws.none_before(
            "typing",
            lambda frame: frame["type"] == "typing" and frame["user_id"] == quick.bob.id,
        )


async def test_typing_is_rate_limited_and_can_be_stopped(quick: Quick) -> None:
    other_chat = (await quick.alice.create_group("other", quick.bob))["id"]
    async with (
        ws_user(quick.server, 71, "Alice") as alice_ws,
        ws_user(quick.server, 72, "Bob") as bob_ws,
    ):
        for _ in range(5):
            await alice_ws.send(type="typing", chat_id=quick.chat_id, is_typing=True)
        await alice_ws.send(type="typing", chat_id=quick.chat_id, is_typing=False)
        first = await bob_ws.wait_for("typing")
        second = await bob_ws.wait_for("typing")
        assert (first["is_typing"], second["is_typing"]) == (True, False)
        # Stopped, it does not expire: typing begun later elsewhere expires after it would have.
        await alice_ws.send(type="typing", chat_id=other_chat, is_typing=True)
        await bob_ws.none_before(
            "typing",
            _typing_expired(quick.alice, other_chat),
            where=lambda frame: frame["chat_id"] == quick.chat_id,
        )


async def test_typing_stops_when_the_typist_disconnects(quick: Quick) -> None:
    async with ws_user(quick.server, 72, "Bob") as bob_ws:
        async with ws_user(quick.server, 71, "Alice") as alice_ws:
            await alice_ws.send(type="typing", chat_id=quick.chat_id, is_typing=True)
            assert (await bob_ws.wait_for("typing"))["is_typing"] is True
        stopped = await bob_ws.wait_for("typing", timeout=TYPING_TTL / 2)
        assert stopped["is_typing"] is False


async def test_ephemeral_events_are_never_stored(
    quick: Quick, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with ws_user(quick.server, 71, "Alice") as alice_ws, ws_user(quick.server, 72, "Bob"):
        await alice_ws.send(type="typing", chat_id=quick.chat_id, is_typing=True)
        await alice_ws.wait_for("user_status")
    async with sessionmaker() as session:
        types = set(await session.scalars(select(ChatEvent.type)))
    assert types == {"member_added"}


async def test_typing_in_a_chat_of_others_is_an_error(quick: Quick) -> None:
    async with ws_user(quick.server, 73, "Stan") as stranger_ws:
        await stranger_ws.send(type="typing", chat_id=quick.chat_id, is_typing=True)
        error = await stranger_ws.wait_for("error")
    assert error["code"] == "chat_not_found"
