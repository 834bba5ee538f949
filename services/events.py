"""The chat event log: every persisted change in a chat gets the chat's next seq, in the same
transaction as the change, so seq order is commit order and has no gaps."""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from sqlalchemy import (
    Select,
    SQLColumnExpression,
    String,
    Text,
    bindparam,
    cast,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core.envelope import encode_envelope, encode_frame
from core.outbox import stage
from core.signing import MediaUrls
from models import Chat, ChatEvent, ChatMember

MAX_EVENTS_PAGE = 1000


class EventType(StrEnum):
    NEW_MESSAGE = "new_message"
    MESSAGE_EDITED = "message_edited"
    MESSAGE_TRANSCRIBED = "message_transcribed"
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


class StoredEvent(Protocol):
    """What a frame is made of: a `ChatEvent`, or a row with its columns."""

    @property
    def type(self) -> str: ...
    @property
    def chat_id(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def payload(self) -> dict[str, Any]: ...


def event_frame(event: StoredEvent, urls: MediaUrls | None = None) -> dict[str, Any]:
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


def _events_after_statement(payload: SQLColumnExpression[Any]) -> Select[*tuple[Any, ...]]:
    return (
        select(ChatEvent.type, ChatEvent.chat_id, ChatEvent.seq, payload)
        .where(ChatEvent.chat_id == bindparam("chat_id"), ChatEvent.seq > bindparam("after_seq"))
        .order_by(ChatEvent.seq)
        .limit(bindparam("limit"))
    )


# Built once: every resume, gap and difference request asks them. The second reads each
# payload as the JSON text it is stored as.
_EVENTS_AFTER = _events_after_statement(ChatEvent.payload)
_ENCODED_EVENTS_AFTER = _events_after_statement(cast(ChatEvent.payload, Text))
# How a payload's text shows a message's media, stored as `json.dumps` or PostgreSQL write
# it: only such a payload has links to sign afresh.
_MEDIA_ITEMS = ('"media": [{', '"media":[{')


async def events_after(
    session: AsyncSession, chat_id: int, after_seq: int, limit: int
) -> list[dict[str, Any]]:
    """The chat's events after `after_seq`, in order, as frames with fresh media links: rows
    straight from the connection, no entities."""
    connection = await session.connection()
    parameters = {"chat_id": chat_id, "after_seq": after_seq, "limit": min(limit, MAX_EVENTS_PAGE)}
    urls: MediaUrls | None = session.info.get("media_urls")
    return [event_frame(row, urls) for row in await connection.execute(_EVENTS_AFTER, parameters)]


async def encoded_events_after(
    session: AsyncSession, chat_id: int, after_seq: int, limit: int
) -> list[tuple[int, str]]:
    """`events_after` as the frames' JSON, each with its seq, for a socket: a stored payload
    goes into its frame as the text it is, neither parsed nor encoded again, unless it has
    media links to sign afresh."""
    connection = await session.connection()
    parameters = {"chat_id": chat_id, "after_seq": after_seq, "limit": min(limit, MAX_EVENTS_PAGE)}
    urls: MediaUrls | None = session.info.get("media_urls")
    frames = []
    for type_, event_chat_id, seq, payload in await connection.execute(
        _ENCODED_EVENTS_AFTER, parameters
    ):
        if urls is not None and any(media in payload for media in _MEDIA_ITEMS):
            event = _StoredRow(type_, event_chat_id, seq, json.loads(payload))
            frames.append((seq, encode_frame(event_frame(event, urls)).decode()))
            continue
        head = encode_frame({"type": type_, "chat_id": event_chat_id, "seq": seq}).decode()
        rest = payload.strip()[1:].lstrip()
        # The payload's keys follow the frame's own, as `event_frame` merges them.
        frames.append((seq, head[:-1] + ("," + rest if rest != "}" else "}")))
    return frames


class _StoredRow(NamedTuple):
    type: str
    chat_id: int
    seq: int
    payload: dict[str, Any]
