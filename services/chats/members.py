"""Who is in a chat: adding, removing and leaving, roles, each member's own settings, and the
join lock that keeps one person from joining a chat twice."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadRequest, Forbidden, NotFound
from models import Chat, ChatMember, ChatType, MemberRole, User
from services.access import Membership, chat_not_found, require_membership
from services.events import EventType, record_event
from services.users import users_by_id
from services.views.chats import member_added_payload, member_removed_payload, member_role_payload


async def enroll_member(
    session: AsyncSession, chat: Chat, user: User, role: MemberRole = MemberRole.MEMBER
) -> ChatMember:
    """Add a member without an actor's permission check: the caller has decided they belong
    (a new chat's members, an invitation, Telegram letting them in)."""
    member = ChatMember(chat_id=chat.id, user_id=user.id, role=role)
    session.add(member)
    await session.flush()
    await record_event(session, chat.id, EventType.MEMBER_ADDED, member_added_payload(member, user))
    return member


async def lock_joins(session: AsyncSession, chat_id: int) -> None:
    """Serializes joins to a chat: take this, then check that someone is not a member yet,
    then add them. Without it two concurrent joins of one person both pass the check
    (PostgreSQL; SQLite's write lock serializes the whole transaction anyway)."""
    await session.execute(select(Chat.id).where(Chat.id == chat_id).with_for_update(key_share=True))


async def member_row(
    session: AsyncSession, chat_id: int, user_id: int, *, lock: bool = False
) -> ChatMember | None:
    """The current member row; `lock` holds it to the commit, so that of two concurrent
    removals the second finds it gone. (A member row is locked before the chat row, in every
    writer, so that this cannot deadlock with a read receipt.)"""
    statement = select(ChatMember).where(
        ChatMember.chat_id == chat_id, ChatMember.user_id == user_id
    )
    if lock:
        statement = statement.with_for_update()
    return await session.scalar(statement.execution_options(populate_existing=True))


async def ensure_member(session: AsyncSession, chat: Chat, user: User) -> None:
    """Adds `user` to the group unless they are in it (the caller has decided they belong).
    A member, the common case (everyone who writes in a Telegram group), costs one read."""
    if await member_row(session, chat.id, user.id) is not None:
        return
    await lock_joins(session, chat.id)
    if await member_row(session, chat.id, user.id) is None:
        await enroll_member(session, chat, user)


async def add_member(session: AsyncSession, actor: User, chat_id: int, user_id: int) -> ChatMember:
    membership = await require_membership(session, chat_id, actor.id)
    if membership.chat.type != ChatType.GROUP:
        raise BadRequest("Members can only be added to groups", code="not_a_group")
    membership.require_manager()
    user = (await users_by_id(session, [user_id]))[user_id]
    await lock_joins(session, chat_id)
    existing = await member_row(session, chat_id, user_id)
    if existing is not None:
        raise BadRequest("User is already a member", code="already_member")
    return await enroll_member(session, membership.chat, user)


async def _remove(session: AsyncSession, chat: Chat, member: ChatMember) -> None:
    await session.delete(member)
    await session.flush()
    if member.role == MemberRole.OWNER and chat.type == ChatType.GROUP:
        await _hand_over_ownership(session, chat)
    await record_event(
        session,
        chat.id,
        EventType.MEMBER_REMOVED,
        member_removed_payload(member),
        also_notify=[member.user_id],
    )


async def _hand_over_ownership(session: AsyncSession, chat: Chat) -> None:
    """The longest-standing admin (else member) becomes owner; an empty group is closed."""
    successor = await session.scalar(
        select(ChatMember)
        .where(ChatMember.chat_id == chat.id)
        .order_by((ChatMember.role == MemberRole.ADMIN).desc(), ChatMember.joined_at, ChatMember.id)
        .limit(1)
    )
    if successor is None:
        chat.is_active = False
        chat.deleted_at = datetime.now(UTC)
        return
    successor.role = MemberRole.OWNER
    await session.flush()
    await record_event(session, chat.id, EventType.MEMBER_UPDATED, member_role_payload(successor))


async def remove_member(session: AsyncSession, actor: User, chat_id: int, user_id: int) -> None:
    membership = await require_membership(session, chat_id, actor.id)
    if user_id == actor.id:
        await leave_chat(session, actor, chat_id)
        return
    if membership.chat.type != ChatType.GROUP:
        raise BadRequest("Members can only be removed from groups", code="not_a_group")
    membership.require_manager()
    target = await member_row(session, chat_id, user_id, lock=True)
    if target is None:
        raise NotFound("User is not a member", code="member_not_found")
    if target.role == MemberRole.OWNER or (
        target.role == MemberRole.ADMIN and membership.member.role != MemberRole.OWNER
    ):
        raise Forbidden("Only the owner can remove admins", code="cannot_remove_member")
    await _remove(session, membership.chat, target)


async def leave_chat(session: AsyncSession, user: User, chat_id: int) -> None:
    membership = await require_membership(session, chat_id, user.id)
    if membership.chat.type != ChatType.GROUP:
        raise BadRequest(
            "Private and AI chats cannot be left; delete them instead", code="not_a_group"
        )
    member = await member_row(session, chat_id, user.id, lock=True)
    if member is None:  # a concurrent request removed them first
        raise chat_not_found()
    await _remove(session, membership.chat, member)


async def set_member_role(
    session: AsyncSession, actor: User, chat_id: int, user_id: int, role: MemberRole
) -> ChatMember:
    membership = await require_membership(session, chat_id, actor.id)
    if membership.chat.type != ChatType.GROUP:
        raise BadRequest("Roles exist only in groups", code="not_a_group")
    # Re-read our own role under a lock: of two concurrent handovers, the second must see
    # that we are no longer the owner.
    if await member_row(session, chat_id, actor.id, lock=True) is None:
        raise chat_not_found()
    membership.require_owner()
    if user_id == actor.id:
        raise BadRequest("Hand over ownership by promoting someone else", code="own_role")
    target = await session.scalar(
        select(ChatMember).where(ChatMember.chat_id == chat_id, ChatMember.user_id == user_id)
    )
    if target is None:
        raise NotFound("User is not a member", code="member_not_found")
    if target.role == role:
        return target
    target.role = role
    if role == MemberRole.OWNER:
        membership.member.role = MemberRole.ADMIN
    # Both member rows are written before the chat row is locked for a seq: the lock order of
    # every writer (member, then chat), so that a concurrent read receipt cannot deadlock us.
    await session.flush()
    await record_event(session, chat_id, EventType.MEMBER_UPDATED, member_role_payload(target))
    if role == MemberRole.OWNER:
        await record_event(
            session, chat_id, EventType.MEMBER_UPDATED, member_role_payload(membership.member)
        )
    return target


async def update_member_settings(
    session: AsyncSession, user: User, chat_id: int, changes: dict[str, bool]
) -> Membership:
    """The caller's own flags for a chat: favorite, muted, archived. Private to them."""
    membership = await require_membership(session, chat_id, user.id)
    for field in ("is_favorite", "is_muted", "is_archived"):
        if field in changes:
            setattr(membership.member, field, changes[field])
    await session.flush()
    return membership
