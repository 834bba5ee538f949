"""Who hears what: the audiences of presence, typing and ephemeral frames (who shares a chat
with whom), and when a user was last seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models import Chat, ChatMember, ChatType, User


async def peers_of(session: AsyncSession, user_id: int, *, max_group_size: int) -> set[int]:
    """Everyone who shares an active private chat, or a group of at most `max_group_size`
    members, with the user: announcing presence to every member of large groups would cost the
    square of their size. Clients ask for a large group's online members instead."""
    theirs = aliased(ChatMember)
    my_chats = select(ChatMember.chat_id).where(ChatMember.user_id == user_id)
    small_chats = (
        select(ChatMember.chat_id)
        .where(ChatMember.chat_id.in_(my_chats))
        .group_by(ChatMember.chat_id)
        .having(func.count() <= max_group_size)
    )
    rows = await session.scalars(
        select(theirs.user_id)
        .distinct()
        .join(Chat, Chat.id == theirs.chat_id)
        .where(
            theirs.chat_id.in_(my_chats),
            theirs.user_id != user_id,
            Chat.is_active.is_(True),
            or_(Chat.type == ChatType.PRIVATE, theirs.chat_id.in_(small_chats)),
        )
    )
    return set(rows)


async def chat_member_ids(session: AsyncSession, chat_id: int) -> set[int]:
    return set(
        await session.scalars(select(ChatMember.user_id).where(ChatMember.chat_id == chat_id))
    )


async def touch_last_seen(session: AsyncSession, user_id: int, at: datetime) -> None:
    # Not announced to the auth cache (`stage_user_changed`): nothing reads `last_seen_at` from
    # a request's user, and a flush of that user writes only the columns it changed.
    await session.execute(update(User).where(User.id == user_id).values(last_seen_at=at))
