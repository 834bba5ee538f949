"""Sends racing each other at the service level, each its own unit of work on its own
connection (PostgreSQL: there they really overlap)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import MemoryBroker
from core.db import read_session, unit_of_work
from core.envelope import Envelope
from models import Message
from services.chats.lifecycle import create_chat
from services.messages import MessageDraft, Sent, send_message
from tests.services.helpers import event_seqs, new_user

pytestmark = pytest.mark.postgres

ATTEMPTS = 6


async def test_retries_racing_each_other_store_one_message(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        alice = await new_user(session, 14001, "Alice")
        bob = await new_user(session, 14002, "Bob")
        chat_id = (
            await create_chat(session, alice, chat_type="private", member_ids=[bob.id])
        ).chat.id
    published: list[Envelope] = []
    broker = MemoryBroker()
    broker.add_listener(published.append)

    async def attempt() -> Sent:
        async with unit_of_work(sessionmaker, broker) as session:
            return await send_message(
                session, alice, chat_id, MessageDraft(text="once", client_msg_id="race-1")
            )

    sent = await asyncio.gather(*(attempt() for _ in range(ATTEMPTS)))
    assert [s.created for s in sent].count(True) == 1
    assert {s.view.id for s in sent} == {sent[0].view.id}
    assert len(published) == 1  # one new_message event, from the attempt that stored it
    # The seqs the other attempts took were given back: the next message follows at once.
    async with unit_of_work(sessionmaker, broker) as session:
        after = await send_message(session, bob, chat_id, MessageDraft(text="after"))
    assert after.view.seq == sent[0].view.seq + 1
    async with read_session(sessionmaker) as session:
        stored = await session.scalar(
            select(func.count()).select_from(Message).where(Message.chat_id == chat_id)
        )
        seqs = await event_seqs(session, chat_id)
    assert stored == 2
    assert seqs == list(range(1, len(seqs) + 1))
