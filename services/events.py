"""The chat event log: every persisted change in a chat gets the chat's next seq, in the same
transaction as the change, so seq order is commit order and has no gaps."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import String, cast, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.outbox import encode_envelope, encode_frame, stage
from core.signing import MediaUrls
from models import Chat, ChatEvent, ChatMember

MAX_EVENTS_PAGE = 1000


class EventType(StrEnum):
    NEW_MESSAGE = "new_message"
    MESSAGE_EDITED = "message_edited"
    MESSAGE_DELETED = "message_deleted"
    REACTION_CHANGED = "reaction_changed"
    MESSAGE_PINNED = "message_pinned"
    MESSAGE_READ = "message_read"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    MEMBER_UPDATED = "member_updated"
    CHAT_UPDATED = "chat_updated"
    CHAT_DELETED = "chat_deleted"


async def next_seq(session: AsyncSession, chat_id: int) -> int:
    """Take the chat's next seq. The row lock (PostgreSQL) or the write lock (SQLite) this takes
    is held to commit, so concurrent writers to one chat queue here, in commit order."""
    seq = await session.scalars(
        update(Chat)
        .where(Chat.id == chat_id)
        .values(last_seq=Chat.last_seq + 1)
        .returning(Chat.last_seq)
    )
    return int(seq.one())


def event_frame(event: ChatEvent, urls: MediaUrls | None = None) -> dict[str, Any]:
    """The event as clients receive it. Given `urls`, media links are signed afresh: a stored
    event replayed later must not carry links that have expired since."""
    frame = {"type": event.type, "chat_id": event.chat_id, "seq": event.seq, **event.payload}
    message = frame.get("message")
    if urls is not None and isinstance(message, dict) and message.get("media"):
        media = [
            {
                **item,
                "url": urls.media(item["id"]),
                "thumbnail_url": urls.thumbnail(item["id"]) if item.get("thumbnail_url") else None,
            }
            for item in message["media"]
        ]
        frame["message"] = {**message, "media": media, "media_url": media[0]["url"]}
    return frame


async def record_event(
    session: AsyncSession,
    chat_id: int,
    type_: EventType,
    payload: dict[str, Any],
    *,
    seq: int | None = None,
    also_notify: Iterable[int] = (),
) -> None:
    """Append an event and stage it for delivery to the chat's members (and `also_notify`,
    e.g. a member who was just removed). Pass `seq` when the change already took one."""
    if seq is None:
        seq = await next_seq(session, chat_id)
    await session.flush()  # the change this event records, when still pending
    event = ChatEvent(chat_id=chat_id, seq=seq, type=type_.value, payload=payload)
    # The members come back with the insert, a round trip saved. Read after the seq was
    # taken, they include everyone whose joining took an earlier seq.
    members = await session.scalar(
        insert(ChatEvent)
        .values(chat_id=chat_id, seq=seq, type=event.type, payload=payload)
        .returning(
            select(func.aggregate_strings(cast(ChatMember.user_id, String), ","))
            .where(ChatMember.chat_id == chat_id)
            .scalar_subquery()
        )
    )
    member_ids = [int(user_id) for user_id in members.split(",")] if members else []
    envelope = encode_envelope(
        [*member_ids, *also_notify], encode_frame(event_frame(event)), chat_id=chat_id, seq=seq
    )
    stage(session, envelope)


async def events_after(
    session: AsyncSession, chat_id: int, after_seq: int, limit: int
) -> list[dict[str, Any]]:
    """The chat's events after `after_seq`, in order, as frames with fresh media links."""
    result = await session.scalars(
        select(ChatEvent)
        .where(ChatEvent.chat_id == chat_id, ChatEvent.seq > after_seq)
        .order_by(ChatEvent.seq)
        .limit(min(limit, MAX_EVENTS_PAGE))
    )
    urls: MediaUrls | None = session.info.get("media_urls")
    return [event_frame(event, urls) for event in result]
