"""A unit of work publishes what its services staged only if it commits: any rollback, by hand
or by raising, drops what it rolled back (a savepoint only what was staged inside it)."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import MemoryBroker
from core.db import ReadOnlySessionError, read_session, unit_of_work
from core.envelope import Envelope
from services import messages, users
from services.messages import MessageDraft
from tests.support.api import sign_up


class Heard:
    def __init__(self) -> None:
        self.broker = MemoryBroker()
        self.texts: list[str] = []
        self.broker.add_listener(self._heard)

    def _heard(self, envelope: Envelope) -> None:
        self.texts.append(json.loads(envelope.frame)["message"]["text"])


async def _chat(client: httpx.AsyncClient, telegram_id: int) -> tuple[int, int]:
    alice = await sign_up(client, telegram_id, "Una")
    bob = await sign_up(client, telegram_id + 1, "Ugo")
    return alice.id, (await alice.private_chat_with(bob))["id"]


async def _send(session: AsyncSession, sender_id: int, chat_id: int, text: str) -> None:
    user = await users.get_user(session, sender_id)
    await messages.send_message(session, user, chat_id, MessageDraft(text=text))


async def test_a_rollback_by_hand_drops_what_was_staged(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sender, chat_id = await _chat(client, 701)
    heard = Heard()
    async with unit_of_work(sessionmaker, heard.broker) as session:
        await _send(session, sender, chat_id, "rolled back")
        await session.rollback()
        await _send(session, sender, chat_id, "committed")
    assert heard.texts == ["committed"]


async def test_a_savepoint_rollback_drops_only_what_was_staged_inside_it(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sender, chat_id = await _chat(client, 703)
    heard = Heard()

    async def refused(session: AsyncSession) -> None:
        async with session.begin_nested():
            await _send(session, sender, chat_id, "inside")
            async with session.begin_nested():
                await _send(session, sender, chat_id, "inside, released")
            raise LookupError

    async with unit_of_work(sessionmaker, heard.broker) as session:
        await _send(session, sender, chat_id, "before")
        with pytest.raises(LookupError):
            await refused(session)
        await _send(session, sender, chat_id, "after")
    assert heard.texts == ["before", "after"]


async def test_raising_drops_everything_staged(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sender, chat_id = await _chat(client, 705)
    heard = Heard()

    async def refused() -> None:
        async with unit_of_work(sessionmaker, heard.broker) as session:
            await _send(session, sender, chat_id, "never")
            raise LookupError

    with pytest.raises(LookupError):
        await refused()
    assert heard.texts == []


async def test_a_read_session_refuses_a_write_and_keeps_nothing(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sender, chat_id = await _chat(client, 707)
    with pytest.raises(ReadOnlySessionError):
        async with read_session(sessionmaker) as session:
            await _send(session, sender, chat_id, "written where only reads belong")

    async with read_session(sessionmaker) as session:
        kept = await messages.history(session, await users.get_user(session, sender), chat_id)
    assert kept.messages == []
