"""The chat list: a user's chats, newest activity first, with what a list shows of each (title,
last message, unread count, peer), its version for conditional reads, and one chat's view."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Select, String, and_, bindparam, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import BindParameter

from core.bounds import fits_int64
from core.errors import Unprocessable
from core.sql import in_ids
from models import Chat, ChatMember, ChatType, Message, MessageReaction, User
from services.access import require_membership
from services.search import like_pattern
from services.views.chats import ChatListItem, ChatView, chat_view, display_title
from services.views.media import media_url_version
from services.views.messages import (
    MESSAGE_COLUMNS,
    MessageRow,
    MessageValues,
    message_summary,
    read_message_views,
)
from services.views.users import BRIEF_COLUMNS, UserBrief

CHAT_LIST_MAX_LIMIT = 200


def _encode_cursor(last_activity_at: datetime, chat_id: int) -> str:
    raw = f"{last_activity_at.isoformat()}|{chat_id}"
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


def _chat_list_statement() -> Select[*tuple[Any, ...]]:
    """Each of the user's active chats with all the list shows of it but its last message's
    reactions and media and an untitled group's member names: rows, not entities, in one
    statement."""
    user_id: BindParameter[int] = bindparam("user_id")
    other = aliased(ChatMember)
    member_count = (
        select(func.count()).select_from(other).where(other.chat_id == Chat.id).scalar_subquery()
    )
    # Others' messages after the user's read marker.
    unread = (
        select(func.count())
        .select_from(Message)
        .where(
            Message.chat_id == Chat.id,
            Message.seq > ChatMember.last_read_seq,
            or_(Message.sender_id.is_(None), Message.sender_id != user_id),
            Message.deleted_at.is_(None),
        )
        .scalar_subquery()
    )
    # The newest message that is not deleted: `last_message_id` is the newest message; only
    # when that one is deleted is an older one looked for.
    newest_shown = select(Message.id).where(
        Message.chat_id == Chat.id,
        Message.id == Chat.last_message_id,
        Message.deleted_at.is_(None),
    )
    older_shown = select(func.max(Message.id)).where(
        Message.chat_id == Chat.id, Message.deleted_at.is_(None)
    )
    last_message_id = case(
        (Chat.last_message_id.is_(None), None),
        else_=func.coalesce(newest_shown.scalar_subquery(), older_shown.scalar_subquery()),
    )
    last = aliased(Message)
    # Who read the last message: the members whose marker reached it, its sender aside.
    read_by = (
        select(func.aggregate_strings(cast(other.user_id, String), ","))
        .where(
            other.chat_id == Chat.id,
            other.last_read_seq >= last.seq,
            or_(last.sender_id.is_(None), other.user_id != last.sender_id),
        )
        .scalar_subquery()
    )
    # The other person of a private or AI chat.
    peer_id = (
        select(other.user_id)
        .where(other.chat_id == Chat.id, other.user_id != user_id)
        .order_by(other.id)
        .limit(1)
        .scalar_subquery()
    )
    peer = aliased(User)
    sender = aliased(User)
    return (
        select(
            *_CHAT_COLUMNS,
            member_count,
            unread,
            read_by,
            *(getattr(peer, column.key) for column in BRIEF_COLUMNS),
            *(getattr(sender, column.key) for column in BRIEF_COLUMNS),
            *(getattr(last, column.key) for column in MESSAGE_COLUMNS),
        )
        .join(ChatMember, ChatMember.chat_id == Chat.id)
        .outerjoin(peer, and_(Chat.type != ChatType.GROUP, peer.id == peer_id))
        .outerjoin(last, and_(last.chat_id == Chat.id, last.id == last_message_id))
        .outerjoin(sender, sender.id == last.sender_id)
        .where(ChatMember.user_id == user_id, Chat.is_active.is_(True))
        .order_by(Chat.last_activity_at.desc(), Chat.id.desc())
        .limit(bindparam("limit"))
    )


class _ListedChat(NamedTuple):
    id: int
    type: ChatType
    title: str | None
    pair_key: str | None
    created_by: int | None
    photo_url: str | None
    last_seq: int
    is_active: bool
    last_activity_at: datetime
    last_read_seq: int
    is_favorite: bool
    is_muted: bool
    is_archived: bool
    member_count: int
    unread_count: int
    read_by: str | None


_CHAT_COLUMNS = (
    Chat.id,
    Chat.type,
    Chat.title,
    Chat.pair_key,
    Chat.created_by,
    Chat.photo_url,
    Chat.last_seq,
    Chat.is_active,
    Chat.last_activity_at,
    ChatMember.last_read_seq,
    ChatMember.is_favorite,
    ChatMember.is_muted,
    ChatMember.is_archived,
)
# Where each part of a row of `_CHAT_LIST` is.
_CHAT = slice(0, len(_ListedChat._fields))
_PEER = slice(_CHAT.stop, _CHAT.stop + len(BRIEF_COLUMNS))
_SENDER = slice(_PEER.stop, _PEER.stop + len(BRIEF_COLUMNS))
_LAST = slice(_SENDER.stop, _SENDER.stop + len(MESSAGE_COLUMNS))

_REACTIONS = slice(_LAST.stop, None)


def _with_reactions(chats: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """The chats of `chats` (a `_chat_list_statement`), each with the reactions to its last
    message: a row per reaction, earliest first (one row when there is none), the same round
    trip."""
    page = chats.subquery()
    columns = list(page.c)
    last_message_id = columns[_LAST.start]
    return (
        select(*columns, MessageReaction.emoji, MessageReaction.user_id)
        .outerjoin(MessageReaction, MessageReaction.message_id == last_message_id)
        .order_by(
            columns[_ListedChat._fields.index("last_activity_at")].desc(),
            columns[_ListedChat._fields.index("id")].desc(),
            MessageReaction.created_at,
            MessageReaction.user_id,
        )
    )


# Built once, as the statement below: the list is asked on every poll, and building a
# statement costs more than running it.
_CHAT_LIST = _chat_list_statement()
_CHAT_LIST_WITH_REACTIONS = _with_reactions(_CHAT_LIST)
_MEMBER_NAMES = (
    select(ChatMember.chat_id, User.id, User.first_name)
    .join(User, User.id == ChatMember.user_id)
    .where(in_ids(ChatMember.chat_id, "chat_ids"))
    .order_by(ChatMember.joined_at, ChatMember.id)
)


def _matching(
    statement: Select[*tuple[Any, ...]], user: User, query: str
) -> Select[*tuple[Any, ...]]:
    """Chats whose title (or, for private chats and untitled groups, a member's name)
    matches `query`."""
    pattern = like_pattern(query.lower())
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
    return statement.where(
        or_(
            func.lower(Chat.title).like(pattern, escape="\\"),
            and_(or_(Chat.type != ChatType.GROUP, Chat.title.is_(None)), peer_matches.exists()),
        )
    )


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
    statement = _CHAT_LIST
    if cursor:
        moment, chat_id = _decode_cursor(cursor)
        statement = statement.where(
            or_(
                Chat.last_activity_at < moment,
                and_(Chat.last_activity_at == moment, Chat.id < chat_id),
            )
        )
    if query and query.strip():
        statement = _matching(statement, user, query.strip())
    statement = _CHAT_LIST_WITH_REACTIONS if statement is _CHAT_LIST else _with_reactions(statement)
    # Core rows straight from the connection: no entity, no ORM step per statement.
    connection = await session.connection()
    found = await connection.execute(statement, {"user_id": user.id, "limit": limit + 1})
    groups = [list(rows) for _, rows in groupby(found, key=itemgetter(0))]
    page = [rows[0] for rows in groups[:limit]]
    chats = [_ListedChat(*row[_CHAT]) for row in page]
    last_messages: list[MessageRow] = []
    senders: dict[int, UserBrief] = {}
    read_by: dict[int, list[int]] = {}
    reactions: dict[int, list[tuple[str, int]]] = {}
    for chat, rows in zip(chats, groups, strict=False):
        row = rows[0]
        if row[_LAST][0] is None:
            continue
        message = MessageValues(*row[_LAST])
        last_messages.append(message)
        if message.sender_id is not None and message.sender_id not in senders:
            senders[message.sender_id] = UserBrief.of_values(row[_SENDER])
        read_by[message.id] = (
            [int(reader) for reader in chat.read_by.split(",")] if chat.read_by else []
        )
        reactions[message.id] = [tuple(r[_REACTIONS]) for r in rows if r[_REACTIONS][0] is not None]
    last_by_chat = {
        view.chat_id: view
        for view in await read_message_views(
            session, last_messages, senders=senders, read_by=read_by, reactions=reactions
        )
    }
    untitled = [chat.id for chat in chats if chat.type == ChatType.GROUP and not chat.title]
    names: dict[int, list[tuple[int, str]]] = {}
    if untitled:
        for chat_id, member_id, first_name in await connection.execute(
            _MEMBER_NAMES, {"chat_ids": untitled}
        ):
            names.setdefault(chat_id, []).append((member_id, first_name))
    items = []
    for chat, row in zip(chats, page, strict=True):
        last = last_by_chat.get(chat.id)
        peer = UserBrief.of_values(row[_PEER]) if row[_PEER][0] is not None else None
        items.append(
            ChatListItem(
                id=chat.id,
                title=display_title(chat, user, peer, names.get(chat.id, ())),
                chat_type=chat.type,
                photo_url=chat.photo_url or (peer.profile_photo_url if peer else None),
                last_message=message_summary(last) if last else None,
                last_message_time=last.created_at if last else None,
                last_message_detail=last,
                unread_count=chat.unread_count,
                last_seq=chat.last_seq,
                last_read_seq=chat.last_read_seq,
                is_favorite=chat.is_favorite,
                is_muted=chat.is_muted,
                is_archived=chat.is_archived,
                is_active=chat.is_active,
                member_count=chat.member_count,
                peer=peer,
            )
        )
    last_chat = chats[-1] if len(groups) > limit else None
    next_cursor = _encode_cursor(last_chat.last_activity_at, last_chat.id) if last_chat else None
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
    connection = await session.connection()
    rows = await connection.execute(_CHAT_LIST_VERSION, {"user_id": user.id})
    return (media_url_version(session), *(tuple(row) for row in rows))


async def get_chat(session: AsyncSession, user: User, chat_id: int) -> ChatView:
    return await chat_view(session, await require_membership(session, chat_id, user.id), user)
