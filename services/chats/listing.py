"""The chat list: a user's chats, newest activity first, with what a list shows of each (title,
last message, unread count, peer), its version for conditional reads, and one chat's view."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.bounds import fits_int64
from core.errors import Unprocessable
from models import Chat, ChatMember, ChatType, Message, User
from services.access import require_membership
from services.search import like_pattern
from services.views.chats import ChatListItem, ChatView, chat_view, display_title
from services.views.media import media_url_version
from services.views.messages import MessageView, message_summary, message_views
from services.views.users import UserBrief

CHAT_LIST_MAX_LIMIT = 200


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
    unread = await _unread_counts(session, user, {chat.id: chat.last_seq for chat in chats})
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
                title=display_title(chat, user, peer, names.get(chat.id, ())),
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


async def get_chat(session: AsyncSession, user: User, chat_id: int) -> ChatView:
    return await chat_view(session, await require_membership(session, chat_id, user.id), user)


async def _unread_counts(
    session: AsyncSession, user: User, last_seqs: Mapping[int, int]
) -> dict[int, int]:
    """Others' messages after the user's read marker, per chat, in one query: up to each chat's
    `last_seqs` entry (the seq the caller read with the chat), so that the counts agree with it
    even when a message is committed between the two statements."""
    if not last_seqs:
        return {}
    rows = await session.execute(
        select(Message.chat_id, func.count())
        .join(
            ChatMember,
            and_(ChatMember.chat_id == Message.chat_id, ChatMember.user_id == user.id),
        )
        .where(
            Message.chat_id.in_(last_seqs),
            Message.seq > ChatMember.last_read_seq,
            Message.seq <= case(dict(last_seqs), value=Message.chat_id),
            or_(Message.sender_id.is_(None), Message.sender_id != user.id),
            Message.deleted_at.is_(None),
        )
        .group_by(Message.chat_id)
    )
    return {chat_id: int(count) for chat_id, count in rows}
