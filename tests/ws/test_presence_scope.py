"""Presence is announced in private chats and small groups only; a large group's online members
are asked for when it opens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tests.support.api import ApiUser, sign_up
from tests.support.server import LiveServer, live_server
from tests.support.ws import Frame, WsClient, ws_user
from webapp_api.app import create_app

MAX_GROUP_SIZE = 3


@dataclass
class Circles:
    """Bob shares a private chat with Gina, a group at the size limit with Carol and Dan, and
    a group one over it with Alice, Erin and Finn."""

    server: LiveServer
    bob: ApiUser
    alice: ApiUser
    erin: ApiUser
    gina: ApiUser
    small_id: int
    big_id: int


@pytest.fixture
async def circles(database_url: str, tmp_dir: Path, engine: AsyncEngine) -> AsyncIterator[Circles]:
    settings = make_settings(database_url, tmp_dir, presence_max_group_size=MAX_GROUP_SIZE)
    async with (
        live_server(create_app(settings)) as server,
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        bob, alice, carol, dan, erin, finn, gina = [
            await sign_up(http, 320 + i, name)
            for i, name in enumerate(["Bob", "Alice", "Carol", "Dan", "Erin", "Finn", "Gina"])
        ]
        await bob.private_chat_with(gina)
        small = await bob.create_group("small", carol, dan)
        big = await bob.create_group("big", alice, erin, finn)
        yield Circles(server, bob, alice, erin, gina, small["id"], big["id"])


async def _frames_before_pong(ws: WsClient) -> list[Frame]:
    """What is already on its way to this socket: everything queued before a ping's pong."""
    await ws.send(type="ping")
    frames: list[Frame] = []
    async with asyncio.timeout(5):
        while (frame := await ws.recv())["type"] != "pong":
            frames.append(frame)
    return frames


async def test_presence_reaches_private_peers_and_small_groups_not_large_ones(
    circles: Circles,
) -> None:
    async with (
        ws_user(circles.server, 322, "Carol") as carol_ws,
        ws_user(circles.server, 326, "Gina") as gina_ws,
        ws_user(circles.server, 321, "Alice") as alice_ws,
        ws_user(circles.server, 320, "Bob"),
    ):
        for ws in (gina_ws, carol_ws):
            online = await ws.wait_for("user_status")
            assert (online["user_id"], online["is_online"]) == (circles.bob.id, True)
        # One envelope carries the announcement to every peer at once: Alice's would be queued.
        statuses = [f for f in await _frames_before_pong(alice_ws) if f["type"] == "user_status"]
    assert statuses == []


async def test_online_members_of_a_large_group(circles: Circles) -> None:
    async with ws_user(circles.server, 320, "Bob"), ws_user(circles.server, 321, "Alice"):
        online = await circles.erin.ok("GET", f"/api/v1/chats/{circles.big_id}/online")
    assert online == {
        "chat_id": circles.big_id,
        "user_ids": sorted([circles.bob.id, circles.alice.id]),
    }


async def test_online_members_only_for_members(circles: Circles) -> None:
    refused = await circles.gina.get(f"/api/v1/chats/{circles.big_id}/online")
    assert (refused.status_code, refused.json()["code"]) == (404, "chat_not_found")
