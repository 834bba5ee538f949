from __future__ import annotations

import enum
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntId, IdPk, JsonDocument, TimestampMixin, str_enum, utcnow

FTS_CONFIG = "'simple'::regconfig"


class MessageType(enum.StrEnum):
    TEXT = "text"
    PHOTO = "photo"
    VIDEO = "video"
    AUDIO = "audio"
    VOICE = "voice"
    DOCUMENT = "document"
    ALBUM = "album"


# How rows elsewhere name a message: its id with its chat, as a partitioned (or distributed)
# table's keys must hold the chat. See docs/SCALING.md, "Partitioned history".
MESSAGE_KEY = ("messages.id", "messages.chat_id")


class Message(TimestampMixin, Base):
    """A message. On PostgreSQL the table is hash-partitioned by `chat_id` (migration 0010) and
    its primary key is (id, chat_id); SQLite keeps `id` as its rowid and a unique (id, chat_id)
    for the foreign keys. Ids stay unique on their own (one sequence); the ORM names a message
    by both, so that what it loads and writes by identity is pruned to the chat's partition."""

    __tablename__ = "messages"
    __table_args__ = (
        # Idempotent sends: a client's id for a message is the sender's, within one chat.
        UniqueConstraint("chat_id", "sender_id", "client_msg_id"),
        UniqueConstraint("chat_id", "seq"),
        UniqueConstraint("chat_id", "telegram_message_id"),
        UniqueConstraint("id", "chat_id").ddl_if(dialect="sqlite"),
        # A reply is to a message of the same chat. Messages are deleted only with their chat,
        # which takes the replies with it: no action is needed (nor could SQLite null one
        # column of a composite key).
        ForeignKeyConstraint(["reply_to_id", "chat_id"], MESSAGE_KEY),
        # "latest N in a chat" and "before/after id" both walk this index.
        Index("ix_messages_chat_id_id", "chat_id", "id"),
        # Full-text search (PostgreSQL only; SQLite searches with LIKE). The 'simple'
        # configuration does no stemming, so it treats every language alike.
        Index(
            "ix_messages_text_fts",
            sql_text(f"to_tsvector({FTS_CONFIG}, coalesce(text, ''))"),
            postgresql_using="gin",
        ).ddl_if(dialect="postgresql"),
        {"postgresql_partition_by": "HASH (chat_id)"},
    )
    __mapper_args__ = MappingProxyType({"primary_key": ("id", "chat_id")})

    id: Mapped[IdPk]
    chat_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("chats.id", ondelete="CASCADE"))
    sender_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL")
    )
    # The seq of the chat event that created this message.
    seq: Mapped[int]
    type: Mapped[MessageType] = mapped_column(
        str_enum(MessageType, "message_type"), default=MessageType.TEXT
    )
    text: Mapped[str | None] = mapped_column(Text)
    # A voice note's, audio's or round video's words, once transcribed.
    transcript: Mapped[str | None] = mapped_column(Text)
    reply_to_id: Mapped[int | None] = mapped_column(BigIntId)
    forward_from_user_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL")
    )
    forward_from_chat_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("chats.id", ondelete="SET NULL")
    )
    client_msg_id: Mapped[str | None] = mapped_column(String(64))
    edited_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    # Set for messages that came from (or were sent to) Telegram, in the chat's Telegram chat.
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    pinned_at: Mapped[datetime | None]
    pinned_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL")
    )


class MessageReaction(Base):
    """One emoji per user per message. It carries the message's chat: the key the message is
    found by (and, distributed, the key that keeps the two together)."""

    __tablename__ = "message_reactions"
    __table_args__ = (
        PrimaryKeyConstraint("message_id", "user_id"),
        ForeignKeyConstraint(["message_id", "chat_id"], MESSAGE_KEY, ondelete="CASCADE"),
    )

    message_id: Mapped[int] = mapped_column(BigIntId)
    chat_id: Mapped[int] = mapped_column(BigIntId)
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="CASCADE"))
    emoji: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )


class ChatEvent(Base):
    """One persisted change in a chat; (chat_id, seq) is gapless and in commit order. On
    PostgreSQL the table is hash-partitioned by `chat_id` (migration 0010)."""

    __tablename__ = "chat_events"
    __table_args__ = (
        PrimaryKeyConstraint("chat_id", "seq"),
        {"postgresql_partition_by": "HASH (chat_id)"},
    )

    chat_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("chats.id", ondelete="CASCADE"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
