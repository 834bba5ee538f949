"""Ways into a group besides being added: an invitation by username, kept until that user
first signs in, and invite links."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import upsert_insert
from core.errors import BadRequest, NotFound
from models import Chat, ChatInvitation, ChatInviteLink, ChatType, User
from services.access import chat_not_found, require_membership
from services.chats.members import add_member, enroll_member, lock_joins, member_row
from services.users import normalize_username


async def invite_by_username(
    session: AsyncSession, actor: User, chat_id: int, username: str
) -> Literal["added", "invited"]:
    """Adds the user if we know them; otherwise keeps an invitation for their first sign-in.
    Returns "added" or "invited"."""
    name = normalize_username(username)
    membership = await require_membership(session, chat_id, actor.id)
    if membership.chat.type != ChatType.GROUP:
        raise BadRequest("Only groups take invitations", code="not_a_group")
    membership.require_manager()
    user = await session.scalar(select(User).where(func.lower(User.username) == name))
    if user is not None:
        await add_member(session, actor, chat_id, user.id)
        return "added"
    await session.execute(
        upsert_insert(session, ChatInvitation)
        .values(chat_id=chat_id, username=name, invited_by=actor.id)
        .on_conflict_do_nothing(index_elements=["chat_id", "username"])
    )
    return "invited"


async def accept_invitations(session: AsyncSession, user: User) -> list[int]:
    """Joins the user to every chat that invited their username before we knew them."""
    if not user.username:
        return []
    invitations = list(
        await session.scalars(
            select(ChatInvitation).where(ChatInvitation.username == user.username.lower())
        )
    )
    joined: list[int] = []
    for invitation in invitations:
        await lock_joins(session, invitation.chat_id)
        chat = await session.get(Chat, invitation.chat_id)
        already = await member_row(session, invitation.chat_id, user.id)
        if chat is not None and chat.is_active and already is None:
            await enroll_member(session, chat, user)
            joined.append(chat.id)
        await session.delete(invitation)
    await session.flush()
    return joined


async def create_invite_link(
    session: AsyncSession, actor: User, chat_id: int, *, expires_in: timedelta | None = None
) -> ChatInviteLink:
    membership = await require_membership(session, chat_id, actor.id)
    if membership.chat.type != ChatType.GROUP:
        raise BadRequest("Only groups have invite links", code="not_a_group")
    membership.require_manager()
    now = datetime.now(UTC)
    link = ChatInviteLink(
        token=secrets.token_urlsafe(18),
        chat_id=chat_id,
        created_by=actor.id,
        created_at=now,
        expires_at=now + expires_in if expires_in else None,
    )
    session.add(link)
    await session.flush()
    return link


async def revoke_invite_link(session: AsyncSession, actor: User, chat_id: int, token: str) -> None:
    membership = await require_membership(session, chat_id, actor.id)
    membership.require_manager()
    link = await session.get(ChatInviteLink, token)
    if link is None or link.chat_id != chat_id:
        raise NotFound("Invite link not found", code="invite_link_not_found")
    if link.revoked_at is None:
        link.revoked_at = datetime.now(UTC)
        await session.flush()


async def join_by_invite_link(session: AsyncSession, user: User, token: str) -> Chat:
    link = await session.get(ChatInviteLink, token)
    now = datetime.now(UTC)
    if link is None or link.revoked_at is not None:
        raise NotFound("Invite link not found", code="invite_link_not_found")
    if link.expires_at is not None and link.expires_at <= now:
        raise NotFound("Invite link has expired", code="invite_link_expired")
    await lock_joins(session, link.chat_id)
    chat = await session.get(Chat, link.chat_id)
    if chat is None or not chat.is_active:
        raise chat_not_found()
    if await member_row(session, chat.id, user.id) is None:
        await enroll_member(session, chat, user)
    return chat
