"""Where a new message is written: every check and write of a send, as one statement.

On PostgreSQL that statement is the `post_message` function (migrations 0009, 0010): membership,
the reply's chat, idempotency by `client_msg_id` (the sender's, within the chat), the chat's
next seq, the message, its media, the event (the view finished with the message's id and seq
where it is stored) and the members to deliver it to, in one round trip. Run alone (autocommit)
it is a whole transaction; otherwise it joins the caller's. SQLite, in-process, runs the same
steps as statements of the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Row, bindparam, insert, literal, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.db import WRITES, autocommit_engine, has_begun
from core.errors import Unprocessable
from models import AiMode, Chat, ChatEvent, ChatMember, ChatType, Message, MessageMedia
from services.access import chat_not_found
from services.events import EventType, next_seq


class Outcome(StrEnum):
    SENT = "sent"
    DUPLICATE = "duplicate"  # the sender already used client_msg_id here: nothing was written
    NOT_MEMBER = "not_member"
    BAD_REPLY_TO = "bad_reply_to"
    AI_ANSWERS = "ai_answers"  # asked to go alone, in a chat whose AI answers every message


@dataclass(frozen=True, slots=True)
class NewMessage:
    row: Message  # transient: the columns to insert; its id and seq are given where stored
    view: dict[str, Any]  # the message's view as JSON, the payload of its event
    media_ids: list[int]  # uploads it shows, checked and locked by the caller
    media_from: int | None  # a forwarded message whose media it shows


@dataclass(frozen=True, slots=True)
class StoredMessage:
    created: bool  # False: a retry; message_id and seq are the original's
    message_id: int
    seq: int
    chat_type: ChatType
    ai_mode: AiMode | None
    member_ids: list[int]


_POST_MESSAGE = (
    text(
        "SELECT outcome, message_id, message_seq, chat_type, ai_mode, member_ids "
        "FROM post_message("
        ":chat_id, :sender_id, :type, :text, :reply_to_id, :client_msg_id, :forward_from_user_id, "
        ":forward_from_chat_id, :telegram_message_id, :now, :view, :media_ids, :media_from, "
        ":unless_ai_answers)"
    )
    .bindparams(
        bindparam("view", type_=JSONB),
        bindparam("media_ids", type_=ARRAY(BigInteger)),
    )
    .execution_options(**{WRITES: True})
)


async def store_message(session: AsyncSession, new: NewMessage, *, alone: bool) -> StoredMessage:
    """Write `new`: by itself when `alone` and the session has not begun (on PostgreSQL; the
    chat's AI answering every message sends it back to the session), else in the session."""
    if session.get_bind().dialect.name != "postgresql":
        return await _store_step_by_step(session, new)
    parameters = _parameters(new)
    engine = session.bind  # a session of a test's connection has no engine to go alone with
    if alone and isinstance(engine, AsyncEngine) and not has_begun(session):
        async with autocommit_engine(engine).connect() as connection:
            alone_row = (
                await connection.execute(_POST_MESSAGE, {**parameters, "unless_ai_answers": True})
            ).one()
        if alone_row.outcome != Outcome.AI_ANSWERS:
            return _stored(alone_row)
    row = (await session.execute(_POST_MESSAGE, {**parameters, "unless_ai_answers": False})).one()
    return _stored(row)


def _parameters(new: NewMessage) -> dict[str, Any]:
    row = new.row
    return {
        "chat_id": row.chat_id,
        "sender_id": row.sender_id,
        "type": row.type.value,
        "text": row.text,
        "reply_to_id": row.reply_to_id,
        "client_msg_id": row.client_msg_id,
        "forward_from_user_id": row.forward_from_user_id,
        "forward_from_chat_id": row.forward_from_chat_id,
        "telegram_message_id": row.telegram_message_id,
        "now": row.created_at,
        "view": new.view,
        "media_ids": new.media_ids or None,
        "media_from": new.media_from,
    }


def _stored(row: Row[Any]) -> StoredMessage:
    if row.outcome == Outcome.NOT_MEMBER:
        raise chat_not_found()
    if row.outcome == Outcome.BAD_REPLY_TO:
        raise _bad_reply_to()
    return StoredMessage(
        created=row.outcome == Outcome.SENT,
        message_id=row.message_id,
        seq=row.message_seq,
        chat_type=ChatType(row.chat_type),
        ai_mode=AiMode(row.ai_mode) if row.ai_mode is not None else None,
        member_ids=list(row.member_ids or ()),
    )


def _bad_reply_to() -> Unprocessable:
    return Unprocessable(
        "reply_to_message_id must be a message of the same chat", code="bad_reply_to"
    )


async def _store_step_by_step(session: AsyncSession, new: NewMessage) -> StoredMessage:
    """What `post_message` does, as statements of the session (SQLite). The session's write
    lock, taken at its BEGIN, is held to commit: nobody else can use `client_msg_id` between
    the check for an original and the insert."""
    row = new.row
    chat_id, sender_id = row.chat_id, row.sender_id
    chat = (
        await session.execute(
            select(Chat.type, Chat.ai_mode)
            .join(ChatMember, ChatMember.chat_id == Chat.id)
            .where(Chat.id == chat_id, ChatMember.user_id == sender_id, Chat.is_active.is_(True))
        )
    ).first()
    if chat is None:
        raise chat_not_found()
    if row.reply_to_id is not None:
        reply_to = await session.scalar(
            select(Message.id).where(Message.id == row.reply_to_id, Message.chat_id == chat_id)
        )
        if reply_to is None:
            raise _bad_reply_to()
    if (original := await _original(session, row)) is not None:
        return _retry(original, chat.type, chat.ai_mode)
    seq = await next_seq(session, chat_id)
    inserted = await session.execute(
        insert(Message)
        .values(
            chat_id=chat_id,
            sender_id=sender_id,
            seq=seq,
            type=row.type,
            text=row.text,
            reply_to_id=row.reply_to_id,
            client_msg_id=row.client_msg_id,
            forward_from_user_id=row.forward_from_user_id,
            forward_from_chat_id=row.forward_from_chat_id,
            telegram_message_id=row.telegram_message_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        .returning(Message.id)
    )
    message_id = inserted.scalar_one()
    await session.execute(
        update(Chat)
        .where(Chat.id == chat_id)
        .values(last_message_id=message_id, last_activity_at=row.created_at)
    )
    await _show_media(session, new, message_id)
    await session.execute(
        insert(ChatEvent).values(
            chat_id=chat_id,
            seq=seq,
            type=EventType.NEW_MESSAGE.value,
            payload={"message": {**new.view, "id": message_id, "seq": seq}},
            created_at=row.created_at,
        )
    )
    members = await session.scalars(select(ChatMember.user_id).where(ChatMember.chat_id == chat_id))
    return StoredMessage(
        created=True,
        message_id=message_id,
        seq=seq,
        chat_type=chat.type,
        ai_mode=chat.ai_mode,
        member_ids=list(members),
    )


async def _original(session: AsyncSession, row: Message) -> Row[int, int] | None:
    if row.client_msg_id is None:
        return None
    found = await session.execute(
        select(Message.id, Message.seq).where(
            Message.chat_id == row.chat_id,
            Message.sender_id == row.sender_id,
            Message.client_msg_id == row.client_msg_id,
        )
    )
    return found.first()


def _retry(original: Row[int, int], chat_type: ChatType, ai_mode: AiMode | None) -> StoredMessage:
    return StoredMessage(
        created=False,
        message_id=original.id,
        seq=original.seq,
        chat_type=chat_type,
        ai_mode=ai_mode,
        member_ids=[],
    )


async def _show_media(session: AsyncSession, new: NewMessage, message_id: int) -> None:
    if new.media_ids:
        rows = [
            {
                "message_id": message_id,
                "chat_id": new.row.chat_id,
                "media_id": media_id,
                "position": position,
            }
            for position, media_id in enumerate(new.media_ids)
        ]
        await session.execute(insert(MessageMedia), rows)
    elif new.media_from is not None:
        await session.execute(
            insert(MessageMedia).from_select(
                ["message_id", "chat_id", "media_id", "position"],
                select(
                    literal(message_id, BigInteger),
                    literal(new.row.chat_id, BigInteger),
                    MessageMedia.media_id,
                    MessageMedia.position,
                ).where(MessageMedia.message_id == new.media_from),
            )
        )
