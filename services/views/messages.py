"""Messages as clients see them: sender, reactions, read markers, media and the AI's usage."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.signing import MediaUrls
from models import AiReply, ChatMember, MediaKind, Message, MessageReaction, MessageType, User
from services.views.media import MediaView, aeon_media_fields, media_fields
from services.views.users import UserBrief


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
    def of(cls, reply: AiReply) -> AiInfo:
        return cls(
            reply_id=reply.id,
            model=reply.model,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cost_micros=reply.cost_micros,
            incomplete=reply.incomplete,
        )


def _reaction_counts(reactions: list[tuple[str, int]]) -> list[ReactionCount]:
    """(emoji, user id) pairs, earliest first: the most given emoji first."""
    by_emoji: dict[str, list[int]] = defaultdict(list)
    for emoji, user_id in reactions:
        by_emoji[emoji].append(user_id)
    counts = Counter(emoji for emoji, _ in reactions).most_common()
    return [ReactionCount(emoji=e, count=n, user_ids=by_emoji[e]) for e, n in counts]


async def message_views(
    session: AsyncSession,
    messages: Sequence[Message],
) -> list[MessageView]:
    """Views of messages, in the order given, with a constant number of queries. Media URLs
    are signed with the session's `media_urls` (see core.db.create_sessionmaker)."""
    if not messages:
        return []
    message_ids = [m.id for m in messages]
    chat_ids = {m.chat_id for m in messages}
    sender_ids = {m.sender_id for m in messages if m.sender_id is not None}
    senders = {
        u.id: UserBrief.of(u)
        for u in await session.scalars(select(User).where(User.id.in_(sender_ids)))
    }
    reactions: dict[int, list[tuple[str, int]]] = defaultdict(list)
    reaction_rows = await session.execute(
        select(MessageReaction.message_id, MessageReaction.emoji, MessageReaction.user_id)
        .where(MessageReaction.message_id.in_(message_ids))
        .order_by(MessageReaction.created_at, MessageReaction.user_id)
    )
    for message_id, emoji, user_id in reaction_rows:
        reactions[message_id].append((emoji, user_id))
    markers: dict[int, list[tuple[int, int]]] = defaultdict(list)
    marker_rows = await session.execute(
        select(ChatMember.chat_id, ChatMember.user_id, ChatMember.last_read_seq).where(
            ChatMember.chat_id.in_(chat_ids),
            ChatMember.last_read_seq >= min(m.seq for m in messages),
        )
    )
    for chat_id, user_id, last_read_seq in marker_rows:
        markers[chat_id].append((user_id, last_read_seq))
    media = await _media(session, messages)
    replies = {
        reply.reply_message_id: reply
        for reply in await session.scalars(
            select(AiReply).where(AiReply.reply_message_id.in_(message_ids))
        )
        if reply.reply_message_id is not None
    }
    return [
        _view(
            m,
            senders.get(m.sender_id) if m.sender_id is not None else None,
            reactions.get(m.id, []),
            sorted(
                user_id
                for user_id, seq in markers[m.chat_id]
                if seq >= m.seq and user_id != m.sender_id
            ),
            media.get(m.id, []),
            replies.get(m.id),
        )
        for m in messages
    ]


def new_message_view(
    message: Message, sender: User, media: list[MediaView], ai_reply: AiReply | None = None
) -> MessageView:
    """`message_view` of a message being created: nobody has reacted to it yet, and read
    markers only move to the seq of a message that existed before, so nobody has read it.
    `ai_reply`: the AI reply the message carries (its row does not link to the message yet)."""
    return _view(message, UserBrief.of(sender), [], [], media, ai_reply)


async def _media(session: AsyncSession, messages: Sequence[Message]) -> dict[int, list[MediaView]]:
    urls: MediaUrls | None = session.info.get("media_urls")
    return await media_fields(session, messages, urls) if urls is not None else {}


def _view(
    message: Message,
    sender: UserBrief | None,
    reactions: list[tuple[str, int]],
    read_by: list[int],
    media: list[MediaView],
    ai_reply: AiReply | None,
) -> MessageView:
    return MessageView(
        id=message.id,
        chat_id=message.chat_id,
        seq=message.seq,
        sender_id=message.sender_id,
        sender=sender,
        text=message.text,
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


async def message_view(session: AsyncSession, message: Message) -> MessageView:
    (view,) = await message_views(session, [message])
    return view
