"""A chat's life: created (a group, a private chat, the AI chat, Saved Messages), changed,
deleted and restored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import upsert_insert
from core.errors import BadRequest, Conflict, Unprocessable
from models import Assistant, Chat, ChatType, MemberRole, User
from services.access import require_membership
from services.chats.members import enroll_member
from services.events import EventType, record_event
from services.users import existing_users, users_by_id
from services.views.chats import chat_payload

RESTORE_WINDOW = timedelta(days=30)
TITLE_MAX_LENGTH = 256
DESCRIPTION_MAX_LENGTH = 2000
MAX_GROUP_MEMBERS_AT_CREATION = 200


@dataclass(frozen=True, slots=True)
class CreatedChat:
    chat: Chat
    skipped_member_ids: list[int]  # asked for, but no user has that id
    is_new: bool  # False: the private chat (or Saved Messages) existed already


async def create_chat(
    session: AsyncSession,
    creator: User,
    *,
    chat_type: Literal["private", "group"],
    title: str | None = None,
    description: str | None = None,
    photo_url: str | None = None,
    member_ids: Sequence[int] = (),
) -> CreatedChat:
    """Aeon's create: ids that are no user's are skipped (and reported), as the original does.
    A group (the creator becomes its owner; it may be untitled: its members name it), or the
    private chat with the one other member (the existing one if there is one), or with nobody
    else the creator's own chat (Saved Messages) under `title`."""
    requested = [uid for uid in dict.fromkeys(member_ids) if uid != creator.id]
    if len(requested) > MAX_GROUP_MEMBERS_AT_CREATION:
        raise Unprocessable("Too many members for one request", code="too_many_members")
    users = await existing_users(session, requested)
    skipped = [uid for uid in requested if uid not in users]
    others = [users[uid] for uid in requested if uid in users]
    title = (title or "").strip() or None
    if chat_type == "group":
        chat = await _create_group(session, creator, title, description, photo_url, others)
        is_new = True
    elif len(others) > 1:
        raise Unprocessable(
            "A private chat has at most one other member", code="private_chat_members"
        )
    elif others:
        chat, is_new = await get_or_create_private_chat(session, creator, others[0].id)
    else:
        chat, is_new = await _chat_by_pair_key(
            session, f"saved:{creator.id}", ChatType.PRIVATE, creator.id, [creator], title=title
        )
    return CreatedChat(chat, skipped, is_new)


async def _create_group(
    session: AsyncSession,
    creator: User,
    title: str | None,
    description: str | None,
    photo_url: str | None,
    members: Sequence[User],
) -> Chat:
    chat = Chat(
        type=ChatType.GROUP,
        title=title,
        description=description,
        photo_url=photo_url,
        created_by=creator.id,
    )
    session.add(chat)
    await session.flush()
    await enroll_member(session, chat, creator, MemberRole.OWNER)
    for user in members:
        await enroll_member(session, chat, user)
    return chat


async def _chat_by_pair_key(
    session: AsyncSession,
    pair_key: str,
    chat_type: ChatType,
    created_by: int,
    members: list[User],
    *,
    title: str | None = None,
    assistant_id: int | None = None,
) -> tuple[Chat, bool]:
    """The one chat with this pair key, created if missing; race-free via the unique key."""
    inserted = await session.scalar(
        upsert_insert(session, Chat)
        .values(
            type=chat_type,
            pair_key=pair_key,
            created_by=created_by,
            title=title,
            assistant_id=assistant_id,
        )
        .on_conflict_do_nothing(index_elements=["pair_key"])
        .returning(Chat.id)
    )
    chat = (await session.scalars(select(Chat).where(Chat.pair_key == pair_key))).one()
    if inserted is None:
        if not chat.is_active:
            chat.is_active, chat.deleted_at = True, None
            await record_chat_updated(session, chat)
        return chat, False
    for user in members:
        await enroll_member(session, chat, user, MemberRole.OWNER)
    return chat, True


async def get_or_create_private_chat(
    session: AsyncSession, user: User, other_user_id: int
) -> tuple[Chat, bool]:
    if other_user_id == user.id:
        raise Unprocessable("A private chat needs another user", code="private_chat_with_self")
    other = (await users_by_id(session, [other_user_id]))[other_user_id]
    low, high = sorted((user.id, other.id))
    return await _chat_by_pair_key(
        session, f"private:{low}:{high}", ChatType.PRIVATE, user.id, [user, other]
    )


async def get_or_create_ai_chat(session: AsyncSession, user: User, bot: User) -> Chat:
    chat, _ = await _chat_by_pair_key(session, f"ai:{user.id}", ChatType.AI, user.id, [user, bot])
    return chat


async def get_or_create_assistant_chat(
    session: AsyncSession, user: User, bot: User, assistant: Assistant
) -> tuple[Chat, bool]:
    """The user's own AI chat with this assistant (named after it), created on first request."""
    return await _chat_by_pair_key(
        session,
        f"ai:{user.id}:{assistant.id}",
        ChatType.AI,
        user.id,
        [user, bot],
        title=assistant.name,
        assistant_id=assistant.id,
    )


async def update_chat(
    session: AsyncSession,
    user: User,
    chat_id: int,
    *,
    changes: dict[str, str | None],
) -> Chat:
    membership = await require_membership(session, chat_id, user.id)
    if membership.chat.type != ChatType.GROUP:
        raise BadRequest("Only group chats have a title and description", code="not_a_group")
    membership.require_manager()
    chat = membership.chat
    if "title" in changes:
        title = (changes["title"] or "").strip()
        if not title:
            raise Unprocessable("A group needs a title", code="title_required")
        changes["title"] = title
    changed = False
    for field in ("title", "description", "photo_url"):
        if field in changes and getattr(chat, field) != changes[field]:
            setattr(chat, field, changes[field])
            changed = True
    if changed:
        await session.flush()
        await record_chat_updated(session, chat)
    return chat


async def delete_chat(session: AsyncSession, user: User, chat_id: int) -> None:
    membership = await require_membership(session, chat_id, user.id)
    if membership.chat.type == ChatType.GROUP:
        membership.require_owner()
    chat = membership.chat
    chat.is_active = False
    chat.deleted_at = datetime.now(UTC)
    await session.flush()
    await record_event(session, chat.id, EventType.CHAT_DELETED, chat_payload(chat))


async def restore_chat(session: AsyncSession, user: User, chat_id: int) -> Chat:
    membership = await require_membership(session, chat_id, user.id, include_deleted=True)
    chat = membership.chat
    if chat.is_active:
        return chat
    if chat.type == ChatType.GROUP:
        membership.require_owner()
    if chat.deleted_at is not None and datetime.now(UTC) - chat.deleted_at > RESTORE_WINDOW:
        raise Conflict("The chat was deleted more than 30 days ago", code="restore_window_passed")
    chat.is_active, chat.deleted_at = True, None
    await session.flush()
    await record_chat_updated(session, chat)
    return chat


async def record_chat_updated(session: AsyncSession, chat: Chat) -> None:
    """Tells the chat's members (and their lists) that the chat itself changed."""
    await record_event(session, chat.id, EventType.CHAT_UPDATED, chat_payload(chat))
