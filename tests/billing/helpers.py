"""Rows for service-level billing tests, and the ledger's state as the database holds it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import MemoryBroker
from core.db import unit_of_work
from models import (
    AiReply,
    AiReplyStatus,
    BillingAccount,
    BillingHold,
    Chat,
    ChatType,
    LedgerEntry,
    LedgerKind,
    User,
)
from tests.billing.conftest import PRICEY

Sessionmaker = async_sessionmaker[AsyncSession]


async def new_user(
    sessionmaker: Sessionmaker, telegram_id: int, name: str = "User", username: str | None = None
) -> User:
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        user = User(telegram_id=telegram_id, first_name=name, username=username)
        session.add(user)
        await session.flush()
        return user


async def add_reply(session: AsyncSession, user: User, *, max_tokens: int = 100) -> AiReply:
    """A running reply asked for by `user`, in a chat of its own (one active reply per chat)."""
    chat = Chat(type=ChatType.AI, created_by=user.id)
    session.add(chat)
    await session.flush()
    reply = AiReply(
        chat_id=chat.id,
        requested_by=user.id,
        model=PRICEY.id,
        provider=PRICEY.provider,
        max_tokens=max_tokens,
        status=AiReplyStatus.RUNNING,
    )
    session.add(reply)
    await session.flush()
    return reply


async def new_reply(sessionmaker: Sessionmaker, user: User, *, max_tokens: int = 100) -> AiReply:
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        return await add_reply(session, user, max_tokens=max_tokens)


@dataclass(frozen=True, slots=True)
class LedgerState:
    balance: int
    reserved: int
    entries_sum: int
    holds: int  # open holds
    kinds: list[LedgerKind]  # the entries' kinds, oldest first


async def ledger_state(sessionmaker: Sessionmaker, user_id: int) -> LedgerState:
    async with sessionmaker() as session:
        account = await session.get(BillingAccount, user_id)
        assert account is not None
        entries_sum = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                LedgerEntry.user_id == user_id
            )
        )
        holds = await session.scalar(
            select(func.count()).select_from(BillingHold).where(BillingHold.user_id == user_id)
        )
        kinds = await session.scalars(
            select(LedgerEntry.kind).where(LedgerEntry.user_id == user_id).order_by(LedgerEntry.id)
        )
        return LedgerState(
            account.balance, account.reserved, int(entries_sum or 0), int(holds or 0), list(kinds)
        )


async def entries_of(sessionmaker: Sessionmaker, user_id: int) -> list[LedgerEntry]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.user_id == user_id).order_by(LedgerEntry.id)
        )
        return list(rows)


async def user_of(sessionmaker: Sessionmaker, telegram_id: int) -> User:
    async with sessionmaker() as session:
        user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
        assert user is not None
        return user
