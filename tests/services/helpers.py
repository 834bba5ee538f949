"""Rows and readings for service-level tests."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.envelope import decode_envelope
from core.outbox import publish_staged
from models import Chat, ChatEvent, User
from tests.support.brokers import HeldBack


async def new_user(session: AsyncSession, telegram_id: int, name: str) -> User:
    user = User(telegram_id=telegram_id, first_name=name, username=name.lower())
    session.add(user)
    await session.flush()
    return user


async def last_seq(session: AsyncSession, chat_id: int) -> int:
    seq = await session.scalar(
        select(Chat.last_seq).where(Chat.id == chat_id).execution_options(populate_existing=True)
    )
    assert seq is not None
    return int(seq)


async def event_seqs(session: AsyncSession, chat_id: int) -> list[int]:
    seqs = await session.scalars(
        select(ChatEvent.seq).where(ChatEvent.chat_id == chat_id).order_by(ChatEvent.seq)
    )
    return list(seqs)


async def event_count(session: AsyncSession, chat_id: int) -> int:
    count = await session.scalar(
        select(func.count()).select_from(ChatEvent).where(ChatEvent.chat_id == chat_id)
    )
    return int(count or 0)


async def staged_seqs(session: AsyncSession) -> list[int | None]:
    """The seqs of what the session staged for delivery since the last call (published to a
    broker that keeps them, as a committed unit of work would publish them)."""
    broker = HeldBack()
    await publish_staged(session, broker)
    return [decode_envelope(data).seq for data in broker.envelopes]
