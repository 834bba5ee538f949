from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
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


class Message(TimestampMixin, Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("sender_id", "client_msg_id"),
        UniqueConstraint("chat_id", "seq"),
        UniqueConstraint("chat_id", "telegram_message_id"),
        # "latest N in a chat" and "before/after id" both walk this index.
        Index("ix_messages_chat_id_id", "chat_id", "id"),
        # Full-text search (PostgreSQL only; SQLite searches with LIKE). The 'simple'
        # configuration does no stemming, so it treats every language alike.
        Index(
            "ix_messages_text_fts",
            sql_text(f"to_tsvector({FTS_CONFIG}, coalesce(text, ''))"),
            postgresql_using="gin",
        ).ddl_if(dialect="postgresql"),
    )

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
    reply_to_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("messages.id", ondelete="SET NULL")
    )
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
    """One emoji per user per message."""

    __tablename__ = "message_reactions"
    __table_args__ = (PrimaryKeyConstraint("message_id", "user_id"),)

    message_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("messages.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="CASCADE"))
    emoji: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )


class ChatEvent(Base):
    """One persisted change in a chat; (chat_id, seq) is gapless and in commit order."""

    __tablename__ = "chat_events"
    __table_args__ = (PrimaryKeyConstraint("chat_id", "seq"),)

    chat_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("chats.id", ondelete="CASCADE"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
