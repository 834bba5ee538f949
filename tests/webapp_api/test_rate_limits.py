"""Per-user abuse limits, Telegram-like: a burst goes through, then 429 with Retry-After (or an
`error` frame with `retry_after` on the socket) and nothing changes; other users are not held
up; the limit's settings are what the server enforces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tests.support.api import ApiUser, sign_up
from tests.support.server import LiveServer, live_server
from tests.support.ws import ws_user
from webapp_api.app import create_app


@dataclass(frozen=True, slots=True)
class Limited:
    server: LiveServer
    client: httpx.AsyncClient

    async def sign_up(self, telegram_id: int, name: str) -> ApiUser:
        return await sign_up(self.client, telegram_id, name, name.lower())


LimitedFactory = Callable[..., AbstractAsyncContextManager[Limited]]


@pytest.fixture
def limited(database_url: str, engine: AsyncEngine, tmp_path: Path) -> LimitedFactory:
    """A server of its own with these limits (a refill of one a minute or an hour: nothing
    comes back while a test runs unless it says so)."""

    @asynccontextmanager
    async def start(**limits: int) -> AsyncIterator[Limited]:
        settings = make_settings(database_url, tmp_path, **limits)
        async with (
            live_server(create_app(settings)) as server,
            httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
        ):
            yield Limited(server, client)

    return start


def assert_limited(response: httpx.Response, code: str) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["retry_after"], int)
    assert body["retry_after"] >= 1
    assert response.headers["retry-after"] == str(body["retry_after"])


async def texts(user: ApiUser, chat_id: int) -> list[str]:
    history = await user.ok("GET", f"/api/v1/chats/{chat_id}/messages")
    return [message["text"] for message in history["messages"]]


async def test_sends_past_the_burst_get_429_and_are_not_stored(limited: LimitedFactory) -> None:
    async with limited(send_burst=3, sends_per_minute=1) as served:
        alice = await served.sign_up(401, "Alice")
        bob = await served.sign_up(402, "Bob")
        chat = await alice.private_chat_with(bob)
        for n in range(3):
            await alice.send(chat["id"], f"m{n}")
        refused = await alice.post(f"/api/v1/chats/{chat['id']}/messages", json={"text": "m3"})
        assert_limited(refused, "send_rate_limited")
        assert refused.json()["retry_after"] > 30  # one message a minute comes back
        # Every way of sending draws on the same bucket.
        aeon = await alice.post("/api/v1/messages", json={"chat_id": chat["id"], "text": "m4"})
        assert_limited(aeon, "send_rate_limited")
        first = (await texts(alice, chat["id"]))[0]
        assert first == "m0"
        history = await alice.ok("GET", f"/api/v1/chats/{chat['id']}/messages")
        forward = await alice.post(
            "/api/v1/messages/forward",
            params={"message_id": history["messages"][0]["id"], "chat_id": chat["id"]},
        )
        assert_limited(forward, "send_rate_limited")
        assert await texts(alice, chat["id"]) == ["m0", "m1", "m2"]
        # Bob has a bucket of his own.
        await bob.send(chat["id"], "still fine")


async def test_the_bucket_refills_at_the_configured_rate(limited: LimitedFactory) -> None:
    async with limited(send_burst=2, sends_per_minute=120) as served:  # one every 0.5 s
        alice = await served.sign_up(403, "Alice")
        bob = await served.sign_up(404, "Bob")
        chat = await alice.private_chat_with(bob)
        await alice.send(chat["id"], "a")
        await alice.send(chat["id"], "b")
        refused = await alice.post(f"/api/v1/chats/{chat['id']}/messages", json={"text": "c"})
        assert_limited(refused, "send_rate_limited")
        assert refused.json()["retry_after"] == 1
        await asyncio.sleep(refused.json()["retry_after"])  # what the client is told to do
        await alice.send(chat["id"], "c")
        assert await texts(alice, chat["id"]) == ["a", "b", "c"]


async def test_socket_sends_share_the_limit_and_get_an_error_frame(
    limited: LimitedFactory,
) -> None:
    async with limited(send_burst=3, sends_per_minute=1) as served:
        alice = await served.sign_up(405, "Alice")
        bob = await served.sign_up(406, "Bob")
        chat = await alice.private_chat_with(bob)
        await alice.send(chat["id"], "by REST")
        async with ws_user(served.server, 405, "Alice", username="alice") as ws:
            for n in range(2):
                await ws.send(
                    type="send_message", chat_id=chat["id"], text=f"ws{n}", client_msg_id=f"c{n}"
                )
                assert (await ws.wait_for("ack"))["client_msg_id"] == f"c{n}"
            await ws.send(type="send_message", chat_id=chat["id"], text="ws2", client_msg_id="c2")
            error = await ws.wait_for("error")
            assert (error["code"], error["client_msg_id"]) == ("send_rate_limited", "c2")
            assert isinstance(error["retry_after"], int)
            assert error["retry_after"] > 30
            await ws.send(type="ping")  # the socket stays open
            await ws.wait_for("pong")
        assert await texts(alice, chat["id"]) == ["by REST", "ws0", "ws1"]


async def test_chat_creation_is_limited_and_reopening_a_private_chat_is_free(
    limited: LimitedFactory,
) -> None:
    async with limited(chat_create_burst=2, chat_creates_per_hour=1) as served:
        alice = await served.sign_up(407, "Alice")
        bob = await served.sign_up(408, "Bob")
        carol = await served.sign_up(409, "Carol")
        with_bob = await alice.private_chat_with(bob)
        for _ in range(3):
            assert (await alice.private_chat_with(bob))["id"] == with_bob["id"]
        await alice.create_group("one")
        refused_group = await alice.post(
            "/api/v1/chats", json={"chat_type": "group", "title": "two", "member_ids": []}
        )
        assert_limited(refused_group, "chat_create_rate_limited")
        refused_private = await alice.post(
            "/api/v1/chats", json={"chat_type": "private", "member_ids": [carol.id]}
        )
        assert_limited(refused_private, "chat_create_rate_limited")
        listed = await alice.ok("GET", "/api/v1/chats")
        assert sorted(chat["chat_type"] for chat in listed) == ["group", "private"]
        await carol.private_chat_with(alice)  # Carol's own bucket


async def test_invitations_of_every_kind_draw_on_one_limit(limited: LimitedFactory) -> None:
    async with limited(invite_burst=4, invites_per_hour=1) as served:
        alice = await served.sign_up(410, "Alice")
        others = [await served.sign_up(411 + n, f"User{n}") for n in range(4)]
        group = await alice.create_group("team", others[0], others[1])  # two invitations
        await alice.ok("POST", f"/api/v1/chats/{group['id']}/members/{others[2].id}")
        await alice.ok("POST", f"/api/v1/chats/{group['id']}/invite-link", json={})
        attempts: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", f"/api/v1/chats/{group['id']}/members/{others[3].id}", {}),
            (
                "POST",
                f"/api/v1/chats/{group['id']}/invite-by-username",
                {"json": {"username": "x"}},
            ),
            ("POST", f"/api/v1/chats/{group['id']}/invite-link", {"json": {}}),
            (
                "POST",
                "/api/v1/chats",
                {"json": {"chat_type": "group", "member_ids": [others[3].id]}},
            ),
        ]
        for method, path, kwargs in attempts:
            assert_limited(await alice.request(method, path, **kwargs), "invite_rate_limited")
        chat = await alice.ok("GET", f"/api/v1/chats/{group['id']}")
        assert len(chat["members"]) == 4
        # A group of no one else invites no one.
        await alice.create_group("alone")


async def test_a_group_with_more_first_members_than_the_burst_is_422(
    limited: LimitedFactory,
) -> None:
    async with limited(invite_burst=2) as served:
        alice = await served.sign_up(420, "Alice")
        others = [await served.sign_up(421 + n, f"User{n}") for n in range(3)]
        response = await alice.post(
            "/api/v1/chats",
            json={"chat_type": "group", "title": "big", "member_ids": [o.id for o in others]},
        )
        assert (response.status_code, response.json()["code"]) == (422, "too_many_invites")
        assert await alice.ok("GET", "/api/v1/chats") == []
