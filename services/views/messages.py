"""Messages as clients see them: sender, reactions, read markers, media and the AI's usage."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple, Protocol

from pydantic import BaseModel
from sqlalchemy import Row, Select, String, bindparam, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.signing import MediaUrls
from core.sql import in_ids
from models import AiReply, ChatMember, MediaKind, Message, MessageReaction, MessageType, User
from services.views.media import MediaView, aeon_media_fields, media_fields
from services.views.users import BRIEF_COLUMNS, BRIEFS_BY_ID, UserBrief


class MessageValues(NamedTuple):
    """What a message's view reads, as a row of `MESSAGE_COLUMNS` holds it."""

    id: int
    chat_id: int
    seq: int
    sender_id: int | None
    text: str | None
    transcript: str | None
    type: MessageType
    reply_to_id: int | None
    forward_from_user_id: int | None
    forward_from_chat_id: int | None
    client_msg_id: str | None
    edited_at: datetime | None
    deleted_at: datetime | None
    pinned_at: datetime | None
    created_at: datetime
    updated_at: datetime


# Selected instead of the entity where messages are only read to be shown: rows cost a
# fraction of what loading entities does.
MESSAGE_COLUMNS = tuple(getattr(Message, name) for name in MessageValues._fields)
# A message as a view reads it: the entity, or a row of `MESSAGE_COLUMNS`.
MessageRow = Message | MessageValues | Row[Any]


def shown_messages(page: Select[int], *, newest_first: bool) -> Select[*tuple[Any, ...]]:
    """The messages of `page` (their ids: which, in what order, how many), in one statement with
    all their views show but media and AI replies: `MESSAGE_COLUMNS`, the readers (the members
    whose marker reached each message, its sender aside), the sender's `BRIEF_COLUMNS` and a
    row per reaction, earliest first (one row when there is none). `shown_rows` reads them.
    The page is of one chat, bound as `chat_id`: the messages are read from its partition."""
    ids = page.subquery()
    sender = aliased(User)
    reader = aliased(ChatMember)
    readers = (
        select(func.aggregate_strings(cast(reader.user_id, String), ","))
        .where(
            reader.chat_id == Message.chat_id,
            reader.last_read_seq >= Message.seq,
            or_(Message.sender_id.is_(None), reader.user_id != Message.sender_id),
        )
        .scalar_subquery()
    )
    return (
        select(
            *MESSAGE_COLUMNS,
            readers,
            *(getattr(sender, column.key) for column in BRIEF_COLUMNS),
            MessageReaction.emoji,
            MessageReaction.user_id,
        )
        .join(ids, ids.c.id == Message.id)
        .outerjoin(sender, sender.id == Message.sender_id)
        .where(Message.chat_id == bindparam("chat_id"))
        .outerjoin(MessageReaction, MessageReaction.message_id == Message.id)
        .order_by(
            Message.id.desc() if newest_first else Message.id,
            MessageReaction.created_at,
            MessageReaction.user_id,
        )
    )


@dataclass(frozen=True, slots=True)
class Shown:
    """What rows of `shown_messages` hold: the messages, in order, and what their views show."""

    messages: list[MessageValues]
    senders: dict[int, UserBrief]
    read_by: dict[int, list[int]]
    reactions: dict[int, list[tuple[str, int]]]

    async def views(
        self, session: AsyncSession, messages: Sequence[MessageValues]
    ) -> list[MessageView]:
        """The views of `messages` (of these, in the order given)."""
        return await read_message_views(
            session, messages, senders=self.senders, read_by=self.read_by, reactions=self.reactions
        )


_READERS = len(MESSAGE_COLUMNS)
_SENDER = slice(_READERS + 1, _READERS + 1 + len(BRIEF_COLUMNS))
_REACTION = slice(_SENDER.stop, None)


def shown_rows(rows: Iterable[Row[Any]]) -> Shown:
    shown = Shown([], {}, {}, {})
    for message_id, group in groupby(rows, key=itemgetter(0)):
        first, *more = group
        message = MessageValues(*first[:_READERS])
        shown.messages.append(message)
        if message.sender_id is not None and message.sender_id not in shown.senders:
            shown.senders[message.sender_id] = UserBrief.of_values(first[_SENDER])
        readers = first[_READERS]
        shown.read_by[message_id] = [int(user) for user in readers.split(",")] if readers else []
        shown.reactions[message_id] = [
            (row[_REACTION][0], row[_REACTION][1])
            for row in (first, *more)
            if row[_REACTION][0] is not None
        ]
    return shown


class AiReplyRow(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def model(self) -> str: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cost_micros(self) -> int: ...
    @property
    def incomplete(self) -> bool: ...


class ReactionCount(BaseModel):
    emoji: str
    count: int
    user_ids: list[int]  # who reacted so, earliest first: a client knows its own reaction


class MessageView(BaseModel):
    """Aeon's Message shape plus seq, reactions, pins and idempotency key."""

    id: int
    chat_id: int
    seq: int
    sender_id: int | None
    sender: UserBrief | None
    text: str | None
    # A voice note's, audio's or video's words, once transcribed (`message_transcribed`).
    transcript: str | None
    message_type: MessageType
    reply_to_message_id: int | None
    media_url: str | None = None
    media_type: str | None = None
    media_size: int | None = None
    media_duration: int | None = None
    forward_from_user_id: int | None
    forward_from_chat_id: int | None
    is_edited: bool
    is_deleted: bool
    edited_at: datetime | None
    read_by: list[int]
    reactions: list[ReactionCount]
    is_pinned: bool
    client_msg_id: str | None
    created_at: datetime
    updated_at: datetime
    media: list[MediaView] = []
    ai: AiInfo | None = None  # on the AI's replies: the model, its usage and cost


class AiInfo(BaseModel):
    reply_id: int
    model: str
    input_tokens: int
    output_tokens: int
    cost_micros: int
    incomplete: bool

    @classmethod
    def of(cls, reply: AiReplyRow) -> AiInfo:
        return cls(
            reply_id=reply.id,
            model=reply.model,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cost_micros=reply.cost_micros,
            incomplete=reply.incomplete,
        )


def _reaction_counts(reactions: list[tuple[str, int]]) -> list[ReactionCount]:
    """(emoji, user id) pairs, earliest first: the most given emoji first (ties: the earliest
    given first)."""
    if not reactions:
        return []
    by_emoji: dict[str, list[int]] = {}
    for emoji, user_id in reactions:
        by_emoji.setdefault(emoji, []).append(user_id)
    ranked = sorted(by_emoji.items(), key=lambda item: len(item[1]), reverse=True)
    return [ReactionCount(emoji=e, count=len(ids), user_ids=ids) for e, ids in ranked]


# Built once (the views of every message list ask them): building costs more than running.
_REACTIONS = (
    select(MessageReaction.message_id, MessageReaction.emoji, MessageReaction.user_id)
    .where(in_ids(MessageReaction.message_id, "ids"))
    .order_by(MessageReaction.created_at, MessageReaction.user_id)
)
_READ_MARKERS = select(ChatMember.chat_id, ChatMember.user_id, ChatMember.last_read_seq).where(
    in_ids(ChatMember.chat_id, "chat_ids"),
    ChatMember.last_read_seq >= bindparam("min_seq"),
)
_AI_REPLIES = select(
    AiReply.reply_message_id,
    AiReply.id,
    AiReply.model,
    AiReply.input_tokens,
    AiReply.output_tokens,
    AiReply.cost_micros,
    AiReply.incomplete,
).where(in_ids(AiReply.reply_message_id, "ids"))


async def message_views(
    session: AsyncSession,
    messages: Sequence[MessageRow],
) -> list[MessageView]:
    """Views of messages, in the order given, with a constant number of queries. Media URLs
    are signed with the session's `media_urls` (see core.db.create_sessionmaker)."""
    if not messages:
        return []
    # Core rows straight from the connection: no entity, no ORM step per statement.
    connection = await session.connection()
    sender_ids = {m.sender_id for m in messages if m.sender_id is not None}
    senders = {
        row.id: UserBrief.of(row)
        for row in await connection.execute(BRIEFS_BY_ID, {"ids": sender_ids})
    }
    markers: dict[int, list[tuple[int, int]]] = defaultdict(list)
    marker_rows = await connection.execute(
        _READ_MARKERS,
        {"chat_ids": {m.chat_id for m in messages}, "min_seq": min(m.seq for m in messages)},
    )
    for chat_id, user_id, last_read_seq in marker_rows:
        markers[chat_id].append((user_id, last_read_seq))
    read_by = {
        m.id: [
            user_id
            for user_id, seq in markers[m.chat_id]
            if seq >= m.seq and user_id != m.sender_id
        ]
        for m in messages
    }
    return await read_message_views(session, messages, senders=senders, read_by=read_by)


async def read_message_views(
    session: AsyncSession,
    messages: Sequence[MessageRow],
    *,
    senders: Mapping[int, UserBrief],
    read_by: Mapping[int, list[int]],
    reactions: Mapping[int, list[tuple[str, int]]] | None = None,
) -> list[MessageView]:
    """`message_views` of messages whose caller read their senders and their readers (the
    members whose read marker reached each message, its sender aside) already, and maybe
    their `reactions` ((emoji, user id), earliest first)."""
    if not messages:
        return []
    connection = await session.connection()
    if reactions is None:
        reactions = defaultdict(list)
        found = await connection.execute(_REACTIONS, {"ids": [m.id for m in messages]})
        for message_id, emoji, user_id in found:
            reactions[message_id].append((emoji, user_id))
    media = await _media(session, messages)
    # Only the AI's messages carry a reply (a sender removed since leaves no trace to tell).
    ai_ids = [m.id for m in messages if m.sender_id is None or _is_bot(senders.get(m.sender_id))]
    replies = {
        row.reply_message_id: row
        for row in (await connection.execute(_AI_REPLIES, {"ids": ai_ids}) if ai_ids else ())
    }
    return [
        _view(
            m,
            senders.get(m.sender_id) if m.sender_id is not None else None,
            reactions.get(m.id, []),
            sorted(read_by.get(m.id, ())),
            media.get(m.id, []),
            replies.get(m.id),
        )
        for m in messages
    ]


def _is_bot(sender: UserBrief | None) -> bool:
    return sender is None or sender.is_bot


def new_message_view(
    message: Message, sender: User, media: list[MediaView], ai_reply: AiReply | None = None
) -> MessageView:
    """`message_view` of a message being created: nobody has reacted to it yet, and read
    markers only move to the seq of a message that existed before, so nobody has read it.
    `ai_reply`: the AI reply the message carries (its row does not link to the message yet)."""
    return _view(message, UserBrief.of(sender), [], [], media, ai_reply)


async def _media(
    session: AsyncSession, messages: Sequence[MessageRow]
) -> dict[int, list[MediaView]]:
    urls: MediaUrls | None = session.info.get("media_urls")
    return await media_fields(session, messages, urls) if urls is not None else {}


def _view(
    message: MessageRow,
    sender: UserBrief | None,
    reactions: list[tuple[str, int]],
    read_by: list[int],
    media: list[MediaView],
    ai_reply: AiReplyRow | None,
) -> MessageView:
    return MessageView(
        id=message.id,
        chat_id=message.chat_id,
        seq=message.seq,
        sender_id=message.sender_id,
        sender=sender,
        text=message.text,
        transcript=message.transcript,
        message_type=message.type,
        reply_to_message_id=message.reply_to_id,
        forward_from_user_id=message.forward_from_user_id,
        forward_from_chat_id=message.forward_from_chat_id,
        is_edited=message.edited_at is not None,
        is_deleted=message.deleted_at is not None,
        edited_at=message.edited_at,
        read_by=read_by,
        reactions=_reaction_counts(reactions),
        is_pinned=message.pinned_at is not None,
        client_msg_id=message.client_msg_id,
        created_at=message.created_at,
        updated_at=message.updated_at,
        media=media,
        **aeon_media_fields(media),
        ai=AiInfo.of(ai_reply) if ai_reply is not None else None,
    )


_TYPE_SUMMARIES = {
    MessageType.PHOTO: "Photo",
    MessageType.VIDEO: "Video",
    MessageType.VOICE: "Voice message",
    MessageType.AUDIO: "Audio",
    MessageType.DOCUMENT: "File",
    MessageType.ALBUM: "Album",
}


def message_summary(message: MessageView) -> str:
    """A message as one readable line: its text, else what it carries ("Photo",
    "Voice message", a file's name)."""
    if message.text:
        return message.text
    if len(message.media) == 1 and message.media[0].kind in (MediaKind.AUDIO, MediaKind.DOCUMENT):
        return message.media[0].filename
    return _TYPE_SUMMARIES.get(message.message_type, "Message")


async def message_view(session: AsyncSession, message: MessageRow) -> MessageView:
    (view,) = await message_views(session, [message])
    return view
