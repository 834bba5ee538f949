"""The seam between a resume's replay and live delivery: whatever their interleaving, the
socket passes on every event after the client's seq once, in order, and `resumed` reports
what it passed on. Live events are published through the app's real broker; the interleaving
is forced by the order of the steps (and, on PostgreSQL, by a table lock that holds the replay
query), never by timing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.db import unit_of_work
from services import messages, users
from services.chats import members
from services.messages import MessageDraft
from tests.conftest import make_settings
from tests.support.api import ApiUser, sign_up
from tests.support.brokers import HeldBack
from tests.support.server import LiveServer, live_server
from tests.support.ws import Frame, WsClient, ws_user
from webapp_api.app import create_app


@dataclass
class Seam:
    server: LiveServer
    app: FastAPI
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient

    async def publish(self, envelope: bytes) -> None:
        """Through the app's own broker: its listeners (the hub) run before this returns."""
        await self.app.state.context.broker.publish(envelope)

    async def send_unannounced(self, sender: ApiUser, chat_id: int, text: str) -> bytes:
        """A committed message whose doorbell has not rung yet: its envelope."""
        held = HeldBack()
        async with unit_of_work(self.sessionmaker, held) as session:
            user = await users.get_user(session, sender.id)
            await messages.send_message(session, user, chat_id, MessageDraft(text=text))
        (envelope,) = held.envelopes
        return envelope


@pytest.fixture
async def seam(
    database_url: str,
    tmp_dir: Path,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Seam]:
    # The resume grace never runs out here: only the client's resume settles a socket.
    # The resume grace never runs out here: only the client's resume settles a socket. The gap
    # grace is long enough for a late doorbell rung right after a later one.
    app = create_app(make_settings(database_url, tmp_dir, ws_resume_grace=300, ws_gap_grace=1.0))
    async with live_server(app) as server, httpx.AsyncClient(base_url=server.base_url) as http:
        yield Seam(server, app, sessionmaker, http)


async def _frames_until_pong(ws: WsClient) -> list[Frame]:
    """Every frame up to the answer to a ping sent now: nothing sent before it is missing."""
    await ws.send(type="ping")
    frames: list[Frame] = []
    async with asyncio.timeout(10):
        while (frame := await ws.recv())["type"] != "pong":
            frames.append(frame)
    return frames


async def _frames_until_resumed(ws: WsClient) -> tuple[list[Frame], Frame]:
    frames: list[Frame] = []
    async with asyncio.timeout(10):
        while (frame := await ws.recv())["type"] != "resumed":
            frames.append(frame)
    return frames, frame


def _seqs(frames: list[Frame], chat_id: int) -> list[int]:
    return [f["seq"] for f in frames if f.get("chat_id") == chat_id and "seq" in f]


async def _missed(sender: ApiUser, chat_id: int, count: int) -> int:
    """Sends `count` messages nobody's socket is open for; the last seq."""
    last = 0
    for index in range(count):
        last = (await sender.send(chat_id, f"missed {index}"))["seq"]
    return last


async def test_a_live_event_before_the_resume_neither_skips_nor_repeats_the_missed_ones(
    seam: Seam,
) -> None:
    alice, bob = await sign_up(seam.http, 601, "Al"), await sign_up(seam.http, 602, "Bo")
    chat_id = (await alice.private_chat_with(bob))["id"]
    seen = (await alice.send(chat_id, "seen"))["seq"]
    await _missed(alice, chat_id, 3)
    async with ws_user(seam.server, 602, "Bo") as bob_ws:
        # Published (through the real broker, to this socket) before the resume is read.
        live = (await alice.send(chat_id, "live before resume"))["seq"]
        await bob_ws.send(type="resume", chats={str(chat_id): seen})
        frames, resumed = await _frames_until_resumed(bob_ws)
        after = (await alice.send(chat_id, "after"))["seq"]
        trailing = await _frames_until_pong(bob_ws)
    assert _seqs(frames, chat_id) == list(range(seen + 1, live + 1))
    assert resumed["chats"] == {str(chat_id): live}
    assert _seqs(trailing, chat_id) == [after]


async def test_late_and_repeated_doorbells_before_the_resume_merge_into_one_sequence(
    seam: Seam,
) -> None:
    alice, bob = await sign_up(seam.http, 605, "Amy"), await sign_up(seam.http, 606, "Bill")
    chat_id = (await alice.private_chat_with(bob))["id"]
    seen = (await alice.send(chat_id, "seen"))["seq"]
    await _missed(alice, chat_id, 2)
    async with ws_user(seam.server, 606, "Bill") as bob_ws:
        await alice.send(chat_id, "live 1")
        late = await seam.send_unannounced(alice, chat_id, "late")
        last = (await alice.send(chat_id, "live 3"))["seq"]
        await seam.publish(late)
        await seam.publish(late)
        await bob_ws.send(type="resume", chats={str(chat_id): seen})
        frames, resumed = await _frames_until_resumed(bob_ws)
    assert _seqs(frames, chat_id) == list(range(seen + 1, last + 1))
    assert [f["message"]["text"] for f in frames] == [
        "missed 0",
        "missed 1",
        "live 1",
        "late",
        "live 3",
    ]
    assert resumed["chats"] == {str(chat_id): last}


async def test_without_a_resume_the_chats_start_at_the_live_edge_after_the_grace(
    database_url: str, tmp_dir: Path, engine: AsyncEngine
) -> None:
    app = create_app(make_settings(database_url, tmp_dir, ws_resume_grace=0.05))
    async with live_server(app) as server, httpx.AsyncClient(base_url=server.base_url) as http:
        alice, bob = await sign_up(http, 607, "Ada"), await sign_up(http, 608, "Bud")
        chat_id = (await alice.private_chat_with(bob))["id"]
        await _missed(alice, chat_id, 2)
        async with ws_user(server, 608, "Bud") as bob_ws:
            first = (await alice.send(chat_id, "live 1"))["seq"]
            second = (await alice.send(chat_id, "live 2"))["seq"]
            received = await bob_ws.collect(2, "new_message")
            trailing = await _frames_until_pong(bob_ws)
    assert [f["seq"] for f in received] == [first, second]
    assert _seqs(trailing, chat_id) == []


@pytest.mark.postgres
async def test_no_chat_meets_a_live_event_with_a_stale_position_while_another_replays(
    seam: Seam, engine: AsyncEngine
) -> None:
    """The replay of the first chat is held by a lock on the event log; meanwhile both chats
    get live events. The second chat's must wait for its own replay, not set its position."""
    alice, bob = await sign_up(seam.http, 609, "Ari"), await sign_up(seam.http, 610, "Bea")
    carol = await sign_up(seam.http, 611, "Cal")
    first = (await alice.private_chat_with(bob))["id"]
    second = (await carol.create_group("second", bob))["id"]
    seen_first = (await alice.send(first, "seen"))["seq"]
    seen_second = (await carol.send(second, "seen"))["seq"]
    await _missed(alice, first, 2)
    await _missed(carol, second, 2)
    live_first = await seam.send_unannounced(alice, first, "live")
    live_second = await seam.send_unannounced(carol, second, "live")
    async with ws_user(seam.server, 610, "Bea") as bob_ws:
        async with engine.connect() as locker:
            transaction = await locker.begin()
            await locker.execute(text("LOCK TABLE chat_events IN ACCESS EXCLUSIVE MODE"))
            await bob_ws.send(
                type="resume", chats={str(first): seen_first, str(second): seen_second}
            )

            async def replay_waits_for_the_lock() -> bool:
                # Its own transaction each time: pg_stat_activity is a snapshot per transaction.
                async with engine.connect() as watcher:
                    waiting = await watcher.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND query LIKE '%FROM chat_events%'"
                        )
                    )
                return bool(waiting)

            async with asyncio.timeout(10):
                while not await replay_waits_for_the_lock():  # noqa: ASYNC110 (no event)
                    await asyncio.sleep(0.01)
            await seam.publish(live_first)
            await seam.publish(live_second)
            await transaction.rollback()
        frames, resumed = await _frames_until_resumed(bob_ws)
        trailing = await _frames_until_pong(bob_ws)
    assert _seqs(frames, first) == list(range(seen_first + 1, seen_first + 4))
    assert _seqs(frames, second) == list(range(seen_second + 1, seen_second + 4))
    assert resumed["chats"] == {str(first): seen_first + 3, str(second): seen_second + 3}
    assert _seqs(trailing, first) == _seqs(trailing, second) == []


async def test_a_chat_joined_after_connecting_starts_at_its_first_event_even_if_it_is_late(
    seam: Seam,
) -> None:
    owner, bob = await sign_up(seam.http, 612, "Own"), await sign_up(seam.http, 613, "Gus")
    group = (await owner.create_group("club"))["id"]
    await _missed(owner, group, 2)
    async with ws_user(seam.server, 613, "Gus") as bob_ws:
        await bob_ws.send(type="resume", chats={})
        await bob_ws.wait_for("resumed")
        held = HeldBack()
        async with unit_of_work(seam.sessionmaker, held) as session:
            actor = await users.get_user(session, owner.id)
            await members.add_member(session, actor, group, bob.id)
        (added,) = held.envelopes
        # The welcome overtakes the (late) doorbell of bob's joining.
        welcome = (await owner.send(group, "welcome"))["seq"]
        await seam.publish(added)
        frames: list[Frame] = []
        async with asyncio.timeout(10):
            while not frames or frames[-1]["seq"] < welcome:
                frame = await bob_ws.recv()
                if frame.get("chat_id") == group:
                    frames.append(frame)
        trailing = await _frames_until_pong(bob_ws)
    assert [(f["type"], f["seq"]) for f in frames] == [
        ("member_added", welcome - 1),
        ("new_message", welcome),
    ]
    assert _seqs(trailing, group) == []
