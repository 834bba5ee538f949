"""A socket that sees a chat's seq jump waits a short grace for the missing event, and replays
from the database only if it does not come: once per process and chat, however many sockets
wait. Doorbells are held back here to play a slow or lossy Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.db import unit_of_work
from services import messages, users
from services.messages import MessageDraft
from tests.conftest import make_settings
from tests.support.api import ApiUser, sign_up
from tests.support.brokers import HeldBack
from tests.support.server import LiveServer, live_server, wait_until
from tests.support.sql import watch_statements
from tests.support.ws import Frame, WsClient, ws_user
from webapp_api.app import create_app
from ws.hub import Hub

GAP_GRACE = 0.1


@dataclass
class Gappy:
    server: LiveServer
    app: FastAPI
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.context.hub
        return hub

    async def publish(self, envelope: bytes) -> None:
        await self.app.state.context.broker.publish(envelope)

    async def send_unannounced(self, sender: ApiUser, chat_id: int, text: str) -> bytes:
        """A message committed like any other whose doorbell has not rung (yet)."""
        held = HeldBack()
        async with unit_of_work(self.sessionmaker, held) as session:
            user = await users.get_user(session, sender.id)
            await messages.send_message(session, user, chat_id, MessageDraft(text=text))
        (envelope,) = held.envelopes
        return envelope

    def event_log_reads(self) -> AbstractContextManager[list[str]]:
        """The server's reads of the chat event log (replays), from requests and tasks alike."""
        return watch_statements(
            self.app,
            lambda statement: (
                statement.lstrip().upper().startswith("SELECT") and "chat_events" in statement
            ),
            requests_only=False,
        )


@pytest.fixture
async def gappy(
    database_url: str,
    tmp_dir: Path,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Gappy]:
    app = create_app(make_settings(database_url, tmp_dir, ws_gap_grace=GAP_GRACE))
    async with live_server(app) as server, httpx.AsyncClient(base_url=server.base_url) as http:
        yield Gappy(server, app, sessionmaker, http)


async def _until_seq(ws: WsClient, chat_id: int, seq: int) -> list[Frame]:
    """This chat's event frames up to `seq`, then everything up to a pong: nothing may follow."""
    frames: list[Frame] = []
    async with asyncio.timeout(10):
        while not frames or frames[-1]["seq"] < seq:
            frame = await ws.recv()
            if frame.get("chat_id") == chat_id and "seq" in frame:
                frames.append(frame)
        await ws.send(type="ping")
        while (frame := await ws.recv())["type"] != "pong":
            assert "seq" not in frame, f"after seq {seq}: {frame}"
    return frames


def _texts(frames: list[Frame]) -> list[tuple[int, str]]:
    return [(frame["seq"], frame["message"]["text"]) for frame in frames]


async def test_an_event_that_arrives_late_within_the_grace_is_not_replayed(
    gappy: Gappy,
) -> None:
    alice, bob = await sign_up(gappy.http, 301, "Ali"), await sign_up(gappy.http, 302, "Bo")
    chat_id = (await alice.private_chat_with(bob))["id"]
    async with ws_user(gappy.server, 302, "Bo") as bob_ws:
        first = await alice.send(chat_id, "first")
        await _until_seq(bob_ws, chat_id, first["seq"])
        late = await gappy.send_unannounced(alice, chat_id, "late")
        overtaking = await gappy.send_unannounced(alice, chat_id, "overtaking")
        with gappy.event_log_reads() as reads:
            await gappy.publish(overtaking)
            await gappy.publish(late)
            frames = await _until_seq(bob_ws, chat_id, first["seq"] + 2)
            await wait_until(lambda: gappy.hub.chats_with_gaps == 0)  # the grace is over
    assert _texts(frames) == [(first["seq"] + 1, "late"), (first["seq"] + 2, "overtaking")]
    assert reads == []


async def test_an_event_lost_on_the_way_is_replayed_after_the_grace(gappy: Gappy) -> None:
    alice, bob = await sign_up(gappy.http, 303, "Ann"), await sign_up(gappy.http, 304, "Ben")
    chat_id = (await alice.private_chat_with(bob))["id"]
    async with ws_user(gappy.server, 304, "Ben") as bob_ws:
        first = await alice.send(chat_id, "first")
        await _until_seq(bob_ws, chat_id, first["seq"])
        await gappy.send_unannounced(alice, chat_id, "lost")
        with gappy.event_log_reads() as reads:
            after = await alice.send(chat_id, "after")
            frames = await _until_seq(bob_ws, chat_id, after["seq"])
    assert _texts(frames) == [(first["seq"] + 1, "lost"), (after["seq"], "after")]
    assert len(reads) == 1


async def test_many_sockets_with_the_same_gap_share_one_replay(gappy: Gappy) -> None:
    names = [(310 + i, f"U{i}") for i in range(5)]
    people = [await sign_up(gappy.http, telegram_id, name) for telegram_id, name in names]
    owner = people[0]
    chat_id = (await owner.create_group("crowd", *people[1:]))["id"]
    async with AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(ws_user(gappy.server, telegram_id, name))
            for telegram_id, name in [*names, *names]  # two sockets each
        ]
        first = await owner.send(chat_id, "first")
        for ws in sockets:
            await _until_seq(ws, chat_id, first["seq"])
        await gappy.send_unannounced(owner, chat_id, "lost")
        with gappy.event_log_reads() as reads:
            after = await owner.send(chat_id, "after")
            received = [await _until_seq(ws, chat_id, after["seq"]) for ws in sockets]
    expected = [(first["seq"] + 1, "lost"), (after["seq"], "after")]
    assert [_texts(frames) for frames in received] == [expected] * len(sockets)
    assert len(reads) == 1
