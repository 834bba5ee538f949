"""Chats and their members: private, group and AI chats, roles, invitations and invite links."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, and_, bindparam, case, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.bounds import fits_int64
from core.db import upsert_insert
from core.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from models import (
    Chat,
    ChatInvitation,
    ChatInviteLink,
    ChatMember,
    ChatType,
    MemberRole,
    Message,
    User,
)
from services.access import Membership, chat_not_found, require_membership
from services.events import EventType, record_event
from services.messages import like_pattern, unread_counts
from services.views import (
    ChatListItem,
    ChatView,
    MemberView,
    MessageView,
    MySettings,
    UserBrief,
    media_url_version,
    message_summary,
    message_views,
)

RESTORE_WINDOW = timedelta(days=30)
TITLE_MAX_LENGTH = 256
DESCRIPTION_MAX_LENGTH = 2000
MAX_GROUP_MEMBERS_AT_CREATION = 200
CHAT_LIST_MAX_LIMIT = 200


def _member_payload(member: ChatMember, user: User) -> dict[str, object]:
    return {
        "user_id": user.id,
        "role": member.role.value,
        "user": UserBrief.of(user).model_dump(mode="json"),
    }


def _chat_payload(chat: Chat) -> dict[str, object]:
    return {
        "chat": {
            "id": chat.id,
            "chat_type": chat.type.value,
            "title": chat.title,
            "description": chat.description,
            "photo_url": chat.photo_url,
            "is_active": chat.is_active,
        }
    }


async def _existing_users(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, User]:
    users = await session.scalars(select(User).where(User.id.in_(set(user_ids))))
    return {user.id: user for user in users}


async def _users_by_id(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, User]:
    found = await _existing_users(session, user_ids)
    missing = sorted(set(user_ids) - found.keys())
    if missing:
        raise NotFound(f"Unknown user ids: {missing}", code="user_not_found")
    return found


async def _add_member(
    session: AsyncSession, chat: Chat, user: User, role: MemberRole = MemberRole.MEMBER
) -> ChatMember:
    member = ChatMember(chat_id=chat.id, user_id=user.id, role=role)
    session.add(member)
    await session.flush()
    await record_event(session, chat.id, EventType.MEMBER_ADDED, _member_payload(member, user))
    return member


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
    users = await _existing_users(session, requested)
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
    await _add_member(session, chat, creator, MemberRole.OWNER)
    for user in members:
        await _add_member(session, chat, user)
    return chat


async def _chat_by_pair_key(
    session: AsyncSession,
    pair_key: str,
    chat_type: ChatType,
    created_by: int,
    members: list[User],
    *,
    title: str | None = None,
) -> tuple[Chat, bool]:
    """The one chat with this pair key, created if missing; race-free via the unique key."""
    inserted = await session.scalar(
        upsert_insert(session, Chat)
        .values(type=chat_type, pair_key=pair_key, created_by=created_by, title=title)
        .on_conflict_do_nothing(index_elements=["pair_key"])
        .returning(Chat.id)
    )
    chat = await session.scalar(select(Chat).where(Chat.pair_key == pair_key))
    assert chat is not None
    if inserted is None:
        if not chat.is_active:
            chat.is_active, chat.deleted_at = True, None
            await record_event(session, chat.id, EventType.CHAT_UPDATED, _chat_payload(chat))
        return chat, False
    for user in members:
        await _add_member(session, chat, user, MemberRole.OWNER)
    return chat, True


async def get_or_create_private_chat(
    session: AsyncSession, user: User, other_user_id: int
) -> tuple[Chat, bool]:
    if other_user_id == user.id:
        raise Unprocessable("A private chat needs another user", code="private_chat_with_self")
    other = (await _users_by_id(session, [other_user_id]))[other_user_id]
    low, high = sorted((user.id, other.id))
    return await _chat_by_pair_key(
        session, f"private:{low}:{high}", ChatType.PRIVATE, user.id, [user, other]
    )


async def get_or_create_ai_chat(session: AsyncSession, user: User, bot: User) -> Chat:
    chat, _ = await _chat_by_pair_key(session, f"ai:{user.id}", ChatType.AI, user.id, [user, bot])
    return chat


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
        await record_event(session, chat.id, EventType.CHAT_UPDATED, _chat_payload(chat))
    return chat


async def delete_chat(session: AsyncSession, user: User, chat_id: int) -> None:
    membership = await require_membership(session, chat_id, user.id)
    if membership.chat.type == ChatType.GROUP:
        membership.require_owner()
    chat = membership.chat
    chat.is_active = False
    chat.deleted_at = datetime.now(UTC)
    await session.flush()
    await record_event(session, chat.id, EventType.CHAT_DELETED, _chat_payload(chat))


async def restore_chat(session: AsyncSession, user: User, chat_id: int) -> Chat:
    membership = await require_membership(session, chat_id, user.id, include_deleted=True)
    chat = membership.chat
    if chat.is_active:
        return chat
    if chat.type == ChatType.GROUP:
        membership.require_owner()
    assert chat.deleted_at is not None
    if datetime.now(UTC) - chat.deleted_at > RESTORE_WINDOW:
        raise Conflict("The chat was deleted more than 30 days ago", code="restore_window_passed")
    chat.is_active, chat.deleted_at = True, None
    await session.flush()
    await record_event(session, chat.id, EventType.CHAT_UPDATED, _chat_payload(chat))
    return chat


async def _lock_joins(session: AsyncSession, chat_id: int) -> None:
    """Serializes joins to a chat: take this, then check that someone is not a member yet,
    then add them. Without it two concurrent joins of one person both pass the check
    (PostgreSQL; SQLite's write lock serializes the whole transaction anyway)."""
    await session.execute(select(Chat.id).where(Chat.id == chat_id).with_for_update(key_share=True))


async def _member_row(
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


async def add_member(session: AsyncSession, actor: User, chat_id: int, user_id: int) -> ChatMember:
    membership = await require_membership(session, chat_id, actor.id)
    if membership.chat.type != ChatType.GROUP:
        raise BadRequest("Members can only be added to groups", code="not_a_group")
    membership.require_manager()
    user = (await _users_by_id(session, [user_id]))[user_id]
    await _lock_joins(session, chat_id)
    existing = await _member_row(session, chat_id, user_id)
    if existing is not None:
        raise BadRequest("User is already a member", code="already_member")
    return await _add_member(session, membership.chat, user)


async def _remove(session: AsyncSession, chat: Chat, member: ChatMember) -> None:
    await session.delete(member)
    await session.flush()
    if member.role == MemberRole.OWNER and chat.type == ChatType.GROUP:
        await _hand_over_ownership(session, chat)
    await record_event(
        session,
        chat.id,
        EventType.MEMBER_REMOVED,
        {"user_id": member.user_id},
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
    await record_event(
        session, chat.id, EventType.MEMBER_UPDATED, {"user_id": successor.user_id, "role": "owner"}
    )


async def remove_member(session: AsyncSession, actor: User, chat_id: int, user_id: int) -> None:
    membership = await require_membership(session, chat_id, actor.id)
    if user_id == actor.id:
        await leave_chat(session, actor, chat_id)
        return
    if membership.chat.type != ChatType.GROUP:
        raise BadRequest("Members can only be removed from groups", code="not_a_group")
    membership.require_manager()
    target = await _member_row(session, chat_id, user_id, lock=True)
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
    member = await _member_row(session, chat_id, user.id, lock=True)
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
    if await _member_row(session, chat_id, actor.id, lock=True) is None:
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
    await record_event(
        session, chat_id, EventType.MEMBER_UPDATED, {"user_id": user_id, "role": role.value}
    )
    if role == MemberRole.OWNER:
        await record_event(
            session, chat_id, EventType.MEMBER_UPDATED, {"user_id": actor.id, "role": "admin"}
        )
    return target


def normalize_username(username: str) -> str:
    name = username.strip().lstrip("@").lower()
    if not name or len(name) > 64:
        raise Unprocessable("A username is required", code="username_required")
    return name


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
        await _lock_joins(session, invitation.chat_id)
        chat = await session.get(Chat, invitation.chat_id)
        already = await _member_row(session, invitation.chat_id, user.id)
        if chat is not None and chat.is_active and already is None:
            await _add_member(session, chat, user)
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
    await _lock_joins(session, link.chat_id)
    chat = await session.get(Chat, link.chat_id)
    if chat is None or not chat.is_active:
        raise chat_not_found()
    if await _member_row(session, chat.id, user.id) is None:
        await _add_member(session, chat, user)
    return chat


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


async def remove_invitations_for_chat(session: AsyncSession, chat_id: int) -> None:
    await session.execute(delete(ChatInvitation).where(ChatInvitation.chat_id == chat_id))


SAVED_MESSAGES_TITLE = "Saved Messages"
GROUP_TITLE_NAMES = 3


def _display_title(
    chat: Chat,
    viewer: User,
    peer: User | MemberView | None,
    members: Sequence[tuple[int, str]] = (),
) -> str | None:
    """A group's title, else its members' first names (`members`: id and first name, in
    joining order); a private or AI chat is named after the other person, the creator's own
    chat after what it is."""
    if chat.title:
        return chat.title
    if chat.type == ChatType.GROUP:
        names = [name for user_id, name in members if user_id != viewer.id] or [viewer.first_name]
        shown = ", ".join(names[:GROUP_TITLE_NAMES])
        more = len(names) - GROUP_TITLE_NAMES
        return f"{shown} and {more} more" if more > 0 else shown
    if peer is not None:
        return " ".join(part for part in (peer.first_name, peer.last_name) if part)
    return SAVED_MESSAGES_TITLE if _is_saved_messages(chat) else None


def _is_saved_messages(chat: Chat) -> bool:
    return chat.pair_key == f"saved:{chat.created_by}"


def _encode_cursor(chat: Chat) -> str:
    raw = f"{chat.last_activity_at.isoformat()}|{chat.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, chat_id = raw.partition("|")
        position = datetime.fromisoformat(moment), int(chat_id)
    except (ValueError, UnicodeDecodeError):
        raise Unprocessable("cursor is not valid", code="bad_cursor") from None
    if not fits_int64(position[1]):
        raise Unprocessable("cursor is not valid", code="bad_cursor")
    return position


@dataclass(frozen=True, slots=True)
class ChatListPage:
    items: list[ChatListItem]
    next_cursor: str | None


async def list_chats(
    session: AsyncSession,
    user: User,
    *,
    limit: int = 100,
    cursor: str | None = None,
    query: str | None = None,
) -> ChatListPage:
    """The user's active chats, most recently active first, with a constant number of queries
    whatever the page size."""
    limit = max(1, min(limit, CHAT_LIST_MAX_LIMIT))
    statement = (
        select(Chat, ChatMember)
        .join(ChatMember, ChatMember.chat_id == Chat.id)
        .where(ChatMember.user_id == user.id, Chat.is_active.is_(True))
    )
    if cursor:
        moment, chat_id = _decode_cursor(cursor)
        statement = statement.where(
            or_(
                Chat.last_activity_at < moment,
                and_(Chat.last_activity_at == moment, Chat.id < chat_id),
            )
        )
    if query and query.strip():
        pattern = like_pattern(query.strip().lower())
        peer_member = aliased(ChatMember)
        peer_user = aliased(User)
        peer_matches = (
            select(peer_member.id)
            .join(peer_user, peer_user.id == peer_member.user_id)
            .where(
                peer_member.chat_id == Chat.id,
                peer_member.user_id != user.id,
                or_(
                    func.lower(peer_user.first_name).like(pattern, escape="\\"),
                    func.lower(peer_user.last_name).like(pattern, escape="\\"),
                    func.lower(peer_user.username).like(pattern, escape="\\"),
                ),
            )
        )
        statement = statement.where(
            or_(
                func.lower(Chat.title).like(pattern, escape="\\"),
                and_(or_(Chat.type != ChatType.GROUP, Chat.title.is_(None)), peer_matches.exists()),
            )
        )
    rows = (
        await session.execute(
            statement.order_by(Chat.last_activity_at.desc(), Chat.id.desc()).limit(limit + 1)
        )
    ).all()
    page = rows[:limit]
    chats = [chat for chat, _ in page]
    chat_ids = [chat.id for chat in chats]
    last_by_chat = {view.chat_id: view for view in await _last_messages(session, chats)}
    unread = await unread_counts(session, user, {chat.id: chat.last_seq for chat in chats})
    member_counts = dict(
        (
            await session.execute(
                select(ChatMember.chat_id, func.count())
                .where(ChatMember.chat_id.in_(chat_ids))
                .group_by(ChatMember.chat_id)
            )
        ).all()
    )
    peers = await _peers(session, user, [c.id for c in chats if c.type != ChatType.GROUP])
    names = await _member_names(
        session, [c.id for c in chats if c.type == ChatType.GROUP and not c.title]
    )
    items = []
    for chat, member in page:
        last = last_by_chat.get(chat.id)
        peer = peers.get(chat.id)
        items.append(
            ChatListItem(
                id=chat.id,
                title=_display_title(chat, user, peer, names.get(chat.id, ())),
                chat_type=chat.type,
                photo_url=chat.photo_url or (peer.photo_url if peer else None),
                last_message=message_summary(last) if last else None,
                last_message_time=last.created_at if last else None,
                last_message_detail=last,
                unread_count=unread.get(chat.id, 0),
                last_seq=chat.last_seq,
                last_read_seq=member.last_read_seq,
                is_favorite=member.is_favorite,
                is_muted=member.is_muted,
                is_archived=member.is_archived,
                is_active=chat.is_active,
                member_count=int(member_counts.get(chat.id, 0)),
                peer=UserBrief.of(peer) if peer else None,
            )
        )
    next_cursor = _encode_cursor(page[-1][0]) if len(rows) > limit else None
    return ChatListPage(items, next_cursor)


def _chat_list_version_statement() -> Select[*tuple[Any, ...]]:
    member = aliased(ChatMember)
    members_profiles = (
        select(func.max(User.updated_at))
        .select_from(member)
        .join(User, User.id == member.user_id)
        .where(member.chat_id == Chat.id)
        .correlate(Chat)
        .scalar_subquery()
    )
    last_sender_profile = (
        select(User.updated_at)
        .select_from(Message)
        .join(User, User.id == Message.sender_id)
        .where(Message.chat_id == Chat.id, Message.deleted_at.is_(None))
        .order_by(Message.id.desc())
        .limit(1)
        .correlate(Chat)
        .scalar_subquery()
    )
    named_by_members = or_(Chat.type != ChatType.GROUP, Chat.title.is_(None))
    return (
        select(
            Chat.id,
            Chat.last_seq,
            Chat.updated_at,
            ChatMember.last_read_seq,
            ChatMember.is_favorite,
            ChatMember.is_muted,
            ChatMember.is_archived,
            case((named_by_members, members_profiles), else_=None),
            last_sender_profile,
        )
        .join(ChatMember, ChatMember.chat_id == Chat.id)
        .where(ChatMember.user_id == bindparam("user_id"), Chat.is_active.is_(True))
        .order_by(Chat.id)
    )


# Built once: it is asked on every poll, and building it costs more than running it.
_CHAT_LIST_VERSION = _chat_list_version_statement()


async def chat_list_version(session: AsyncSession, user: User) -> tuple[object, ...]:
    """Everything the user's chat list is built from, in one small query: equal versions, equal
    lists. Every change in a chat moves its `last_seq`; what is not a chat event is here too:
    the user's own flags, and the profiles that name a chat or sign its last message."""
    rows = await session.execute(_CHAT_LIST_VERSION, {"user_id": user.id})
    return (media_url_version(session), *(tuple(row) for row in rows))


async def _last_messages(session: AsyncSession, chats: Sequence[Chat]) -> list[MessageView]:
    """The newest message of each chat that is not deleted. `last_message_id` is the newest
    message; only when that one is deleted is an older one looked for."""
    newest = list(
        await session.scalars(
            select(Message).where(
                Message.id.in_([c.last_message_id for c in chats if c.last_message_id])
            )
        )
    )
    found = [m for m in newest if m.deleted_at is None]
    deleted_in = [m.chat_id for m in newest if m.deleted_at is not None]
    if deleted_in:
        older = (
            select(func.max(Message.id))
            .where(Message.chat_id.in_(deleted_in), Message.deleted_at.is_(None))
            .group_by(Message.chat_id)
        )
        found += await session.scalars(select(Message).where(Message.id.in_(older)))
    return await message_views(session, found)


async def _member_names(
    session: AsyncSession, chat_ids: Sequence[int]
) -> dict[int, list[tuple[int, str]]]:
    """Each chat's members (id, first name) in joining order: what names an untitled group."""
    names: dict[int, list[tuple[int, str]]] = {}
    if chat_ids:
        rows = await session.execute(
            select(ChatMember.chat_id, User.id, User.first_name)
            .join(User, User.id == ChatMember.user_id)
            .where(ChatMember.chat_id.in_(chat_ids))
            .order_by(ChatMember.joined_at, ChatMember.id)
        )
        for chat_id, user_id, first_name in rows:
            names.setdefault(chat_id, []).append((user_id, first_name))
    return names


async def _peers(session: AsyncSession, user: User, chat_ids: Sequence[int]) -> dict[int, User]:
    """The other member of each private or AI chat."""
    if not chat_ids:
        return {}
    rows = await session.execute(
        select(ChatMember.chat_id, User)
        .join(User, User.id == ChatMember.user_id)
        .where(ChatMember.chat_id.in_(chat_ids), ChatMember.user_id != user.id)
    )
    return {row[0]: row[1] for row in rows}


async def chat_view(session: AsyncSession, membership: Membership, viewer: User) -> ChatView:
    chat, me = membership.chat, membership.member
    rows = await session.execute(
        select(ChatMember, User)
        .join(User, User.id == ChatMember.user_id)
        .where(ChatMember.chat_id == chat.id)
        .order_by(ChatMember.joined_at, ChatMember.id)
    )
    members = [MemberView.of(member, user) for member, user in rows]
    peer = next((m for m in members if m.id != viewer.id and chat.type != ChatType.GROUP), None)
    return ChatView(
        id=chat.id,
        title=_display_title(chat, viewer, peer, [(m.id, m.first_name) for m in members]),
        chat_type=chat.type,
        description=chat.description,
        photo_url=chat.photo_url,
        created_by=chat.created_by,
        is_active=chat.is_active,
        created_at=chat.created_at,
        updated_at=chat.updated_at,
        last_seq=chat.last_seq,
        members=members,
        my_settings=MySettings(
            is_favorite=me.is_favorite,
            is_muted=me.is_muted,
            is_archived=me.is_archived,
            last_read_seq=me.last_read_seq,
        ),
    )


async def get_chat(session: AsyncSession, user: User, chat_id: int) -> ChatView:
    return await chat_view(session, await require_membership(session, chat_id, user.id), user)


async def enroll_member(
    session: AsyncSession, chat: Chat, user: User, role: MemberRole
) -> ChatMember:
    """Add a member without an actor's permission check (Telegram already let them in)."""
    return await _add_member(session, chat, user, role)


async def ensure_member(session: AsyncSession, chat: Chat, user: User) -> None:
    """Adds `user` to the group unless they are in it (the caller has decided they belong)."""
    await _lock_joins(session, chat.id)
    if await _member_row(session, chat.id, user.id) is None:
        await _add_member(session, chat, user)


async def record_chat_updated(session: AsyncSession, chat: Chat) -> None:
    await record_event(session, chat.id, EventType.CHAT_UPDATED, _chat_payload(chat))
