"""Who may do what. Every chat, message and media action starts here; administrators'
actions start with `require_admin`.

A chat the caller is not an active member of does not exist for them: 404, never 403, so that
ids do not leak what exists.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Forbidden, NotFound
from models import Chat, ChatMember, ChatType, MemberRole, Message, User

MANAGER_ROLES = frozenset({MemberRole.OWNER, MemberRole.ADMIN})


@dataclass(frozen=True, slots=True)
class Membership:
    chat: Chat
    member: ChatMember

    @property
    def is_manager(self) -> bool:
        """May manage the chat: owner or admin of a group (both sides of a private chat)."""
        return self.chat.type != ChatType.GROUP or self.member.role in MANAGER_ROLES

    def require_manager(self) -> None:
        if not self.is_manager:
            raise Forbidden("Only chat admins can do this", code="not_chat_admin")

    def require_owner(self) -> None:
        if self.member.role != MemberRole.OWNER:
            raise Forbidden("Only the chat owner can do this", code="not_chat_owner")


def require_admin(user: User) -> None:
    """An administrator of the app (ADMIN_TELEGRAM_IDS)."""
    if not user.is_admin:
        raise Forbidden("Only administrators may do this", code="admin_only")


def chat_not_found(**extra: Any) -> NotFound:
    return NotFound("Chat not found", code="chat_not_found", **extra)


def message_not_found() -> NotFound:
    return NotFound("Message not found", code="message_not_found")


async def find_membership(
    session: AsyncSession, chat_id: int, user_id: int, *, include_deleted: bool = False
) -> Membership | None:
    statement = (
        select(Chat, ChatMember)
        .join(ChatMember, ChatMember.chat_id == Chat.id)
        .where(Chat.id == chat_id, ChatMember.user_id == user_id)
    )
    if not include_deleted:
        statement = statement.where(Chat.is_active.is_(True))
    row = (await session.execute(statement)).first()
    return Membership(row[0], row[1]) if row else None


# Built once: every read of a chat's messages asks it.
_IS_ACTIVE_MEMBER = (
    select(ChatMember.id)
    .join(Chat, Chat.id == ChatMember.chat_id)
    .where(
        ChatMember.chat_id == bindparam("chat_id"),
        ChatMember.user_id == bindparam("user_id"),
        Chat.is_active.is_(True),
    )
)


async def require_member(session: AsyncSession, chat_id: int, user_id: int) -> None:
    """`require_membership` for reads that need the right only, not the chat and member."""
    connection = await session.connection()
    found = await connection.execute(_IS_ACTIVE_MEMBER, {"chat_id": chat_id, "user_id": user_id})
    if found.first() is None:
        raise chat_not_found()


async def chats_of_member(
    session: AsyncSession, user_id: int, chat_ids: Collection[int]
) -> set[int]:
    """Which of these active chats the user is a member of, in one query."""
    if not chat_ids:
        return set()
    found = await session.scalars(
        select(Chat.id)
        .join(ChatMember, ChatMember.chat_id == Chat.id)
        .where(Chat.id.in_(chat_ids), ChatMember.user_id == user_id, Chat.is_active.is_(True))
    )
    return set(found)


async def require_membership(
    session: AsyncSession, chat_id: int, user_id: int, *, include_deleted: bool = False
) -> Membership:
    membership = await find_membership(session, chat_id, user_id, include_deleted=include_deleted)
    if membership is None:
        raise chat_not_found()
    return membership


async def require_message(
    session: AsyncSession, message_id: int, user_id: int
) -> tuple[Message, Membership]:
    """A message in a chat the user is an active member of.

    Found by its id alone, as the routes name it: on PostgreSQL a probe of the (id, chat_id)
    index of every partition (see docs/SCALING.md); what the caller does with it afterwards
    names the chat too."""
    message = await session.scalar(select(Message).where(Message.id == message_id))
    if message is None:
        raise message_not_found()
    membership = await find_membership(session, message.chat_id, user_id)
    if membership is None:
        raise message_not_found()
    return message, membership
