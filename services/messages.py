"""Messages: send, forward, edit, delete, react, pin, read, history and search.

`send_message` is the one way a message comes to exist. It knows nothing of the AI: the people's
doors post through `services.conversation` (which then asks the AI), the AI's runner posts its
replies here directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.elements import BindParameter

from core.db import upsert_insert
from core.envelope import encode_envelope, encode_frame
from core.errors import BadRequest, Forbidden, Unprocessable
from core.outbox import stage
from core.signing import MediaUrls
from models import (
    AiMode,
    AiReply,
    Chat,
    ChatMember,
    ChatType,
    Message,
    MessageReaction,
    MessageType,
    User,
)
from models.message import FTS_CONFIG
from services.access import (
    chat_not_found,
    message_not_found,
    require_member,
    require_membership,
    require_message,
)
from services.events import EventType, record_event
from services.media.attachments import attachable_media, message_type_of
from services.message_store import NewMessage, StoredMessage, store_message
from services.search import like_pattern
from services.views.media import MediaView, media_fields, media_url_version
from services.views.messages import (
    MessageView,
    message_view,
    message_views,
    new_message_view,
    shown_messages,
    shown_rows,
)

TEXT_MAX_LENGTH = 4096
CLIENT_MSG_ID_MAX_LENGTH = 64
EMOJI_MAX_LENGTH = 32
HISTORY_MAX_LIMIT = 100
SEARCH_MAX_LIMIT = 50
# The broker topic every new message is also published on: for consumers that want each one,
# whoever it is for (the bot's notifications to offline users).
NEW_MESSAGES_TOPIC = "new_messages"


@dataclass(frozen=True, slots=True)
class MessageDraft:
    """What a new message says. `forward_from`: the message it copies (text and type), when it
    is a forward. `ai_reply`: on the AI's own message, the reply job it is the text of; the
    message's `new_message` view shows it (model, usage, cost), and the view of a new message is
    built without reading anything back, while the job's row links to the message only once the
    message exists."""

    text: str | None = None
    reply_to_message_id: int | None = None
    client_msg_id: str | None = None
    media_ids: Sequence[int] = ()
    telegram_message_id: int | None = None
    forward_from: Message | None = None
    ai_reply: AiReply | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    view: MessageView
    created: bool  # False when a retry with the same client_msg_id found the original
    chat_type: ChatType
    ai_mode: AiMode | None  # the chat's setting


def clean_text(text: str | None, *, required: bool) -> str | None:
    cleaned = (text or "").strip()
    if not cleaned:
        if required:
            raise Unprocessable("Message text must not be empty", code="text_required")
        return None
    if len(cleaned) > TEXT_MAX_LENGTH:
        raise Unprocessable(
            f"Message text is longer than {TEXT_MAX_LENGTH} characters", code="text_too_long"
        )
    return cleaned


async def _retried(session: AsyncSession, stored: StoredMessage, chat_id: int) -> Sent:
    """The answer to a retry: the original message."""
    original = await session.get(Message, (stored.message_id, chat_id))
    if original is None:  # deleted for good since (its chat was): as if never sent
        raise chat_not_found()
    view = await message_view(session, original)
    return Sent(view, created=False, chat_type=stored.chat_type, ai_mode=stored.ai_mode)


async def send_message(
    session: AsyncSession, sender: User, chat_id: int, draft: MessageDraft, *, alone: bool = False
) -> Sent:
    """Persist a message with the chat's next seq and stage its `new_message` event.

    A retry with a `client_msg_id` the sender already used in this chat returns the original
    message and records nothing, also when the two attempts race each other. (The key is the
    sender's within a chat: the same id in another chat is another message.)

    `alone`: the message may commit by itself, in one round trip on PostgreSQL, when the
    caller's unit of work has not touched the database yet (nothing of it would be lost or
    committed apart) and the chat's AI does not answer every message in it (its reply job must
    commit with the message). The caller promises it has nothing more to write."""
    client_msg_id = draft.client_msg_id
    if client_msg_id is not None and not 0 < len(client_msg_id) <= CLIENT_MSG_ID_MAX_LENGTH:
        raise Unprocessable("client_msg_id must be 1..64 characters", code="bad_client_msg_id")
    forward_from, media_ids = draft.forward_from, draft.media_ids
    text = clean_text(draft.text, required=forward_from is None and not media_ids)
    urls: MediaUrls | None = session.info.get("media_urls")
    media: list[MediaView] = []
    message_type = MessageType.TEXT
    forward_source: tuple[int | None, int | None] = (None, None)
    if media_ids:
        items = await attachable_media(session, sender, media_ids)
        message_type = message_type_of(items)
        media = [MediaView.of(item, urls) for item in items] if urls is not None else []
    elif forward_from is not None:
        message_type, text = forward_from.type, forward_from.text
        # A forward of a forward names the original author and chat, as Telegram does.
        forward_source = (
            (forward_from.forward_from_user_id, forward_from.forward_from_chat_id)
            if forward_from.forward_from_chat_id is not None
            else (forward_from.sender_id, forward_from.chat_id)
        )
        if urls is not None:
            media = (await media_fields(session, [forward_from], urls)).get(forward_from.id, [])
    now = datetime.now(UTC)
    row = Message(
        id=0,
        chat_id=chat_id,
        sender_id=sender.id,
        seq=0,
        type=message_type,
        text=text,
        reply_to_id=draft.reply_to_message_id,
        client_msg_id=client_msg_id,
        forward_from_user_id=forward_source[0],
        forward_from_chat_id=forward_source[1],
        telegram_message_id=draft.telegram_message_id,
        created_at=now,
        updated_at=now,
    )
    template = new_message_view(row, sender, media, draft.ai_reply)
    view = template.model_dump(mode="json")  # id and seq to be filled in where it is stored
    new = NewMessage(
        row,
        view,
        media_ids=list(media_ids),
        media_from=forward_from.id if forward_from is not None else None,
    )
    stored = await store_message(session, new, alone=alone)
    if not stored.created:
        return await _retried(session, stored, chat_id)
    ids = {"id": stored.message_id, "seq": stored.seq}
    view.update(ids)
    frame = {"type": EventType.NEW_MESSAGE.value, "chat_id": chat_id, "seq": stored.seq}
    frame["message"] = view
    envelope = encode_envelope(
        stored.member_ids,
        encode_frame(frame),
        chat_id=chat_id,
        seq=stored.seq,
        topics=(NEW_MESSAGES_TOPIC,),
    )
    stage(session, envelope)
    return Sent(
        template.model_copy(update=ids),
        created=True,
        chat_type=stored.chat_type,
        ai_mode=stored.ai_mode,
    )


async def forward_message(
    session: AsyncSession, user: User, message_id: int, to_chat_id: int
) -> Sent:
    original, _ = await require_message(session, message_id, user.id)
    if original.deleted_at is not None:
        raise BadRequest("A deleted message cannot be forwarded", code="message_deleted")
    return await send_message(session, user, to_chat_id, MessageDraft(forward_from=original))


async def edit_message(
    session: AsyncSession, user: User, message_id: int, text: str
) -> MessageView:
    message, _ = await require_message(session, message_id, user.id)
    if message.sender_id != user.id:
        raise Forbidden("Only the sender can edit a message", code="not_message_sender")
    if message.deleted_at is not None:
        raise BadRequest("A deleted message cannot be edited", code="message_deleted")
    cleaned = clean_text(text, required=message.type == MessageType.TEXT)
    if cleaned == message.text:
        return await message_view(session, message)
    now = datetime.now(UTC)
    message.text, message.edited_at, message.updated_at = cleaned, now, now
    await session.flush()
    view = await message_view(session, message)
    await record_event(
        session,
        message.chat_id,
        EventType.MESSAGE_EDITED,
        {"message": view.model_dump(mode="json")},
    )
    return view


async def delete_message(session: AsyncSession, user: User, message_id: int) -> MessageView:
    message, membership = await require_message(session, message_id, user.id)
    if message.sender_id != user.id and not (
        membership.chat.type == ChatType.GROUP and membership.is_manager
    ):
        raise Forbidden("Only the sender or a group admin can delete", code="cannot_delete")
    if message.deleted_at is None:
        now = datetime.now(UTC)
        message.text, message.deleted_at, message.updated_at = None, now, now
        message.pinned_at = message.transcript = None
        await session.execute(
            delete(MessageReaction).where(MessageReaction.message_id == message.id)
        )
        await session.flush()
        await record_event(
            session,
            message.chat_id,
            EventType.MESSAGE_DELETED,
            {"message_id": message.id, "deleted_by": user.id},
        )
    return await message_view(session, message)


async def set_reaction(
    session: AsyncSession, user: User, message_id: int, emoji: str | None
) -> MessageView:
    """Sets (or with None removes) the user's one reaction to a message."""
    message, _ = await require_message(session, message_id, user.id)
    if message.deleted_at is not None:
        raise BadRequest("A deleted message cannot take reactions", code="message_deleted")
    current = await session.get(MessageReaction, (message.id, user.id))
    if emoji is not None:
        emoji = emoji.strip()
        if not 0 < len(emoji) <= EMOJI_MAX_LENGTH:
            raise Unprocessable("emoji must be 1..32 characters", code="bad_emoji")
    if (current.emoji if current else None) == emoji:
        return await message_view(session, message)
    if emoji is None:
        await session.execute(
            delete(MessageReaction).where(
                MessageReaction.message_id == message.id, MessageReaction.user_id == user.id
            )
        )
    else:
        await session.execute(
            upsert_insert(session, MessageReaction)
            .values(message_id=message.id, chat_id=message.chat_id, user_id=user.id, emoji=emoji)
            .on_conflict_do_update(index_elements=["message_id", "user_id"], set_={"emoji": emoji})
        )
    view = await message_view(session, message)
    await record_event(
        session,
        message.chat_id,
        EventType.REACTION_CHANGED,
        {
            "message_id": message.id,
            "user_id": user.id,
            "emoji": emoji,
            "reactions": [r.model_dump() for r in view.reactions],
        },
    )
    return view


async def set_pinned(
    session: AsyncSession, user: User, message_id: int, *, pinned: bool
) -> MessageView:
    message, membership = await require_message(session, message_id, user.id)
    membership.require_manager()
    if message.deleted_at is not None:
        raise BadRequest("A deleted message cannot be pinned", code="message_deleted")
    if (message.pinned_at is not None) != pinned:
        message.pinned_at = datetime.now(UTC) if pinned else None
        message.pinned_by = user.id if pinned else None
        await session.flush()
        await record_event(
            session,
            message.chat_id,
            EventType.MESSAGE_PINNED,
            {"message_id": message.id, "is_pinned": pinned, "user_id": user.id},
        )
    return await message_view(session, message)


async def list_pinned(session: AsyncSession, user: User, chat_id: int) -> list[MessageView]:
    await require_membership(session, chat_id, user.id)
    messages = await session.scalars(
        select(Message)
        .where(Message.chat_id == chat_id, Message.pinned_at.is_not(None))
        .order_by(Message.pinned_at.desc())
        .limit(HISTORY_MAX_LIMIT)
    )
    return await message_views(session, list(messages))


@dataclass(frozen=True, slots=True)
class HistorySlice:
    messages: list[MessageView]  # oldest first
    has_more: bool


def _history_statements() -> dict[str, Select[*tuple[Any, ...]]]:
    """The history windows (`history`), by direction: the newest, before an id, after one."""
    in_chat = (
        select(Message.id).where(Message.chat_id == bindparam("chat_id")).limit(bindparam("limit"))
    )
    message_id: BindParameter[int] = bindparam("message_id")
    return {
        "newest": shown_messages(in_chat.order_by(Message.id.desc()), newest_first=True),
        "before": shown_messages(
            in_chat.where(Message.id < message_id).order_by(Message.id.desc()), newest_first=True
        ),
        "after": shown_messages(
            in_chat.where(Message.id > message_id).order_by(Message.id), newest_first=False
        ),
    }


# Built once, as the page statements below: asked on every scroll and poll, and building a
# statement costs more than running it.
_HISTORY = _history_statements()


async def history(
    session: AsyncSession,
    user: User,
    chat_id: int,
    *,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> HistorySlice:
    """A window of the chat's history: the newest `limit` messages, or those just before
    `before_id` (scrolling up), or just after `after_id` (catching up)."""
    await require_member(session, chat_id, user.id)
    limit = max(1, min(limit, HISTORY_MAX_LIMIT))
    parameters = {"chat_id": chat_id, "limit": limit + 1}
    if after_id is not None:
        statement = _HISTORY["after"]
        parameters["message_id"] = after_id
    elif before_id is not None:
        statement = _HISTORY["before"]
        parameters["message_id"] = before_id
    else:
        statement = _HISTORY["newest"]
    connection = await session.connection()
    shown = shown_rows(await connection.execute(statement, parameters))
    window = shown.messages[:limit]
    if after_id is None:
        window.reverse()
    return HistorySlice(await shown.views(session, window), len(shown.messages) > limit)


@dataclass(frozen=True, slots=True)
class HistoryPage:
    messages: list[MessageView]
    total: int
    page: int
    per_page: int
    has_next: bool
    has_prev: bool


def _page_statements() -> tuple[Select[int], Select[*tuple[Any, ...]]]:
    """Aeon's pages (`history_page`): the count of the chat's messages shown, asked of an
    active member only (no row: not one), and one page of them, newest first."""
    chat_id: BindParameter[int] = bindparam("chat_id")
    visible = (Message.chat_id == chat_id, Message.deleted_at.is_(None))
    total = (
        select(select(func.count()).select_from(Message).where(*visible).scalar_subquery())
        .select_from(ChatMember)
        .join(Chat, Chat.id == ChatMember.chat_id)
        .where(
            ChatMember.chat_id == chat_id,
            ChatMember.user_id == bindparam("user_id"),
            Chat.is_active.is_(True),
        )
    )
    page = (
        select(Message.id)
        .where(*visible)
        .order_by(Message.id.desc())
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )
    return total, shown_messages(page, newest_first=True)


_PAGE_TOTAL, _PAGE = _page_statements()


async def history_page(
    session: AsyncSession, user: User, chat_id: int, *, page: int, per_page: int
) -> HistoryPage:
    """Aeon's pages: page 1 holds the newest `per_page` messages, oldest first within it.
    Deleted messages are left out, and out of `total`, as the original does (its clients show
    what they get; the native history keeps tombstones for clients with a cache)."""
    connection = await session.connection()
    found = await connection.execute(_PAGE_TOTAL, {"chat_id": chat_id, "user_id": user.id})
    total = found.scalar()
    if total is None:
        raise chat_not_found()
    parameters = {"chat_id": chat_id, "offset": (page - 1) * per_page, "limit": per_page}
    shown = shown_rows(await connection.execute(_PAGE, parameters))
    shown.messages.reverse()
    return HistoryPage(
        messages=await shown.views(session, shown.messages),
        total=total,
        page=page,
        per_page=per_page,
        has_next=page * per_page < total,
        has_prev=page > 1,
    )


def _history_page_version_statement() -> Select[*tuple[Any, ...]]:
    chat_id: BindParameter[int] = bindparam("chat_id")
    page_senders = (
        select(Message.sender_id)
        .where(Message.chat_id == chat_id, Message.deleted_at.is_(None))
        .order_by(Message.id.desc())
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )
    senders_profiles = (
        select(func.max(User.updated_at)).where(User.id.in_(page_senders)).scalar_subquery()
    )
    return (
        select(Chat.last_seq, Chat.updated_at, senders_profiles)
        .join(ChatMember, ChatMember.chat_id == Chat.id)
        .where(
            Chat.id == chat_id,
            ChatMember.user_id == bindparam("user_id"),
            Chat.is_active.is_(True),
        )
    )


# Built once: it is asked on every poll, and building it costs more than running it.
_HISTORY_PAGE_VERSION = _history_page_version_statement()


async def history_page_version(
    session: AsyncSession, user: User, chat_id: int, *, page: int, per_page: int
) -> tuple[object, ...]:
    """What `history_page` is built from, in one small query: equal versions, equal pages.
    Every change in the chat moves its `last_seq`; the senders' profiles are not chat events.
    404 for a chat the user is not in, as the page itself."""
    parameters = {
        "chat_id": chat_id,
        "user_id": user.id,
        "offset": (page - 1) * per_page,
        "limit": per_page,
    }
    connection = await session.connection()
    row = (await connection.execute(_HISTORY_PAGE_VERSION, parameters)).first()
    if row is None:
        raise chat_not_found()
    return (media_url_version(session), *row)


def _read_statements() -> tuple[Select[*tuple[Any, ...]], ...]:
    """What a read receipt needs, for an active member only (no row: not one): the reader's
    marker and the read message's seq and id (none: no such message in the chat). By chat and
    message (`mark_read`); by chat, its newest message (`mark_all_read`); by message alone
    (`mark_message_read`), with the message's chat: that one alone looks in every partition."""
    user_id: BindParameter[int] = bindparam("user_id")
    message_id: BindParameter[int] = bindparam("message_id")
    chat_id: BindParameter[int] = bindparam("chat_id")
    columns = (ChatMember.chat_id, ChatMember.last_read_seq, Message.seq, Message.id)

    def in_chat(read: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
        return (
            select(*columns)
            .join(Chat, Chat.id == ChatMember.chat_id)
            .outerjoin(Message, and_(read, Message.chat_id == chat_id))
            .where(
                ChatMember.chat_id == chat_id,
                ChatMember.user_id == user_id,
                Chat.is_active.is_(True),
            )
        )

    newer = aliased(Message)
    newest = select(func.max(newer.id)).where(newer.chat_id == chat_id)
    by_message = (
        select(*columns)
        .select_from(Message)
        .join(ChatMember, ChatMember.chat_id == Message.chat_id)
        .join(Chat, Chat.id == Message.chat_id)
        .where(Message.id == message_id, ChatMember.user_id == user_id, Chat.is_active.is_(True))
    )
    return (
        in_chat(Message.id == message_id),
        in_chat(Message.id == newest.scalar_subquery()),
        by_message,
    )


# Built once, as the statements below: every read receipt asks them.
_READ_IN_CHAT, _READ_ALL_IN_CHAT, _READ_MESSAGE = _read_statements()
# (An update's parameters may not be named after a column of its table.)
_ADVANCE_READ_MARKER = (
    update(ChatMember)
    .where(
        ChatMember.chat_id == bindparam("in_chat"),
        ChatMember.user_id == bindparam("reader"),
        ChatMember.last_read_seq < bindparam("seq"),
    )
    .values(last_read_seq=bindparam("seq"))
    # No member entity of the session to keep in step: a receipt loads none.
    .execution_options(synchronize_session=False)
)
_READ_MARKER = select(ChatMember.last_read_seq).where(
    ChatMember.chat_id == bindparam("in_chat"), ChatMember.user_id == bindparam("reader")
)


async def _read_up_to(
    session: AsyncSession, user: User, chat_id: int, marker: int, seq: int, message_id: int
) -> int:
    """Moves the read marker forward to `seq` only (a stale receipt changes nothing, as a
    concurrent one that went further), recording the move; returns the marker."""
    if seq <= marker:
        return marker
    parameters = {"in_chat": chat_id, "reader": user.id, "seq": seq}
    # Through the session, not its connection: a read-only session refuses a write there.
    result = await session.execute(_ADVANCE_READ_MARKER, parameters)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        connection = await session.connection()
        current: int = (await connection.execute(_READ_MARKER, parameters)).scalar_one()
        return current
    await record_event(
        session,
        chat_id,
        EventType.MESSAGE_READ,
        {"message_id": message_id, "user_id": user.id, "last_read_seq": seq},
    )
    return seq


async def _receipt(session: AsyncSession, statement: Select[*tuple[Any, ...]], **ids: int) -> Any:
    """The row of `statement` (of `_read_statements`), or None."""
    connection = await session.connection()
    return (await connection.execute(statement, ids)).first()


async def mark_read(session: AsyncSession, user: User, chat_id: int, message_id: int) -> int:
    """Marks everything up to and including `message_id` read; returns the read marker."""
    found = await _receipt(
        session, _READ_IN_CHAT, chat_id=chat_id, user_id=user.id, message_id=message_id
    )
    if found is None:
        raise chat_not_found()
    _, marker, seq, _ = found
    if seq is None:
        raise message_not_found()
    return await _read_up_to(session, user, chat_id, marker, seq, message_id)


async def mark_message_read(session: AsyncSession, user: User, message_id: int) -> tuple[int, int]:
    """Aeon's read-by-message-id; returns the chat id and the read marker."""
    found = await _receipt(session, _READ_MESSAGE, user_id=user.id, message_id=message_id)
    if found is None:
        raise message_not_found()
    chat_id, marker, seq, _ = found
    return chat_id, await _read_up_to(session, user, chat_id, marker, seq, message_id)


async def mark_all_read(session: AsyncSession, user: User, chat_id: int) -> int:
    """Marks the chat read up to its newest message; returns the read marker."""
    found = await _receipt(session, _READ_ALL_IN_CHAT, chat_id=chat_id, user_id=user.id)
    if found is None:
        raise chat_not_found()
    _, marker, seq, newest_id = found
    if seq is None:  # no message yet
        return int(marker)
    return await _read_up_to(session, user, chat_id, marker, seq, newest_id)


async def search_messages(
    session: AsyncSession, user: User, query: str, *, limit: int = 20, chat_id: int | None = None
) -> list[MessageView]:
    """Messages matching `query` in the user's chats, newest first."""
    query = query.strip()
    if not query:
        raise Unprocessable("Search query must not be empty", code="query_required")
    my_chats = select(ChatMember.chat_id).join(Chat, Chat.id == ChatMember.chat_id)
    my_chats = my_chats.where(ChatMember.user_id == user.id, Chat.is_active.is_(True))
    statement = select(Message).where(Message.chat_id.in_(my_chats), Message.deleted_at.is_(None))
    if chat_id is not None:
        await require_membership(session, chat_id, user.id)
        statement = statement.where(Message.chat_id == chat_id)
    if session.get_bind().dialect.name == "postgresql":
        # The same expression as the GIN index, so that the index serves the search.
        config: ColumnElement[Any] = literal_column(FTS_CONFIG)
        document = func.to_tsvector(config, func.coalesce(Message.text, literal_column("''")))
        statement = statement.where(document.bool_op("@@")(func.plainto_tsquery(config, query)))
    else:
        statement = statement.where(Message.text.like(like_pattern(query), escape="\\"))
    rows = await session.scalars(
        statement.order_by(Message.id.desc()).limit(max(1, min(limit, SEARCH_MAX_LIMIT)))
    )
    return await message_views(session, list(rows))
