"""Presence and typing audiences: who shares a chat with whom, and when a user was last seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models import Chat, ChatMember, User


async def peers_of(session: AsyncSession, user_id: int) -> set[int]:
    """Everyone who shares an active chat with the user."""
    mine, theirs = aliased(ChatMember), aliased(ChatMember)
    rows = await session.scalars(
        select(theirs.user_id)
        .distinct()
        .join(mine, mine.chat_id == theirs.chat_id)
        .join(Chat, Chat.id == theirs.chat_id)
        .where(mine.user_id == user_id, theirs.user_id != user_id, Chat.is_active.is_(True))
    )
    return set(rows)


async def chat_member_ids(session: AsyncSession, chat_id: int) -> set[int]:
    return set(
        await session.scalars(select(ChatMember.user_id).where(ChatMember.chat_id == chat_id))
    )


async def touch_last_seen(session: AsyncSession, user_id: int, at: datetime) -> None:
    await session.execute(update(User).where(User.id == user_id).values(last_seen_at=at))
