"""Telegram groups the bot is in, mirrored as group chats, so the AI has their history."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Chat, ChatType, MemberRole, Message, User
from services.chats.lifecycle import record_chat_updated
from services.chats.members import enroll_member


async def group_for_telegram_chat(session: AsyncSession, telegram_chat_id: int) -> Chat | None:
    return await session.scalar(select(Chat).where(Chat.telegram_chat_id == telegram_chat_id))


async def link_telegram_group(
    session: AsyncSession, telegram_chat_id: int, title: str, *, bot: User, added_by: User | None
) -> Chat:
    """The chat mirroring this Telegram group, created (with the bot as a member) if needed."""
    chat = await group_for_telegram_chat(session, telegram_chat_id)
    if chat is None:
        chat = Chat(
            type=ChatType.GROUP,
            title=title or "Telegram group",
            telegram_chat_id=telegram_chat_id,
            created_by=added_by.id if added_by else None,
        )
        session.add(chat)
        await session.flush()
        await enroll_member(session, chat, bot, MemberRole.MEMBER)
        if added_by is not None:
            await enroll_member(session, chat, added_by, MemberRole.OWNER)
    elif not chat.is_active:
        chat.is_active, chat.deleted_at = True, None
        await record_chat_updated(session, chat)
    return chat


async def migrate_telegram_group(session: AsyncSession, old_id: int, new_id: int) -> None:
    """A group that became a supergroup keeps its chat record (and so its history)."""
    if await group_for_telegram_chat(session, new_id) is None:
        await session.execute(
            update(Chat).where(Chat.telegram_chat_id == old_id).values(telegram_chat_id=new_id)
        )


async def message_for_telegram(
    session: AsyncSession, chat_id: int, telegram_message_id: int
) -> int | None:
    return await session.scalar(
        select(Message.id).where(
            Message.chat_id == chat_id, Message.telegram_message_id == telegram_message_id
        )
    )


async def link_telegram_message(
    session: AsyncSession, chat_id: int, message_id: int, telegram_message_id: int
) -> None:
    """Remember which Telegram message shows ours (the AI's replies), so that a reply to it in
    Telegram is a reply to the AI."""
    await session.execute(
        update(Message)
        .where(Message.chat_id == chat_id, Message.id == message_id)
        .values(telegram_message_id=telegram_message_id)
    )
