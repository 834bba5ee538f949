"""Assistants: custom AIs with their own instructions, model and knowledge, and what people
think of their replies."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntId, IdPk, TimestampMixin, str_enum, utcnow
from models.message import MESSAGE_KEY


class AssistantVisibility(enum.StrEnum):
    PRIVATE = "private"  # its owner only
    LINK = "link"  # anyone with its share token (inside its deep link)
    PUBLIC = "public"  # listed in the catalogue


class Assistant(TimestampMixin, Base):
    __tablename__ = "assistants"
    __table_args__ = (Index("ix_assistants_visibility_uses", "visibility", "uses"),)

    id: Mapped[IdPk]
    owner_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    avatar_media_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("media.id", ondelete="SET NULL")
    )
    instructions: Mapped[str] = mapped_column(Text)
    # None: the server's default model.
    model: Mapped[str | None] = mapped_column(String(128))
    greeting: Mapped[str | None] = mapped_column(Text)
    temperature: Mapped[float | None] = mapped_column(Float)
    max_reply_tokens: Mapped[int | None] = mapped_column(Integer)
    visibility: Mapped[AssistantVisibility] = mapped_column(
        str_enum(AssistantVisibility, "assistant_visibility"), default=AssistantVisibility.PRIVATE
    )
    # Unguessable; what a `link` assistant is shared by.
    share_token: Mapped[str] = mapped_column(String(64), unique=True)
    # Conversations started with it: the catalogue's order.
    uses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Bumped by every change of its knowledge: caches of its vectors key on it.
    knowledge_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    archived_at: Mapped[datetime | None]


class DocumentStatus(enum.StrEnum):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class KnowledgeDocument(TimestampMixin, Base):
    __tablename__ = "knowledge_documents"

    id: Mapped[IdPk]
    assistant_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("assistants.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(255))
    # The uploaded file (None for pasted text, kept in `source_text`).
    media_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("media.id", ondelete="SET NULL")
    )
    source_text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[DocumentStatus] = mapped_column(
        str_enum(DocumentStatus, "document_status"), default=DocumentStatus.PROCESSING
    )
    error: Mapped[str | None] = mapped_column(Text)
    chunks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    embedded_chunks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The embeddings model its chunks' vectors came from; another one means re-embedding.
    embedding_model: Mapped[str | None] = mapped_column(String(128))
    # Embedding is paid by the assistant's owner: `held_micros` is held from their balance
    # (like a reply's worst case) until processing ends and `cost_micros` is charged.
    cost_micros: Mapped[int] = mapped_column(default=0, server_default="0")
    held_micros: Mapped[int] = mapped_column(default=0, server_default="0")
    # pdf, docx, html or text: how its text is extracted.
    source_format: Mapped[str] = mapped_column(String(16))
    # The knowledge worker processing it, which beats while it works; a document whose worker
    # stopped beating is taken up by another (see services.knowledge.processing).
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    heartbeat_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class KnowledgeChunk(Base):
    __tablename__ = "knowledge_chunks"
    # Full-text retrieval: on PostgreSQL a generated tsvector column `text_search` with a GIN
    # index, on SQLite an FTS5 table; both are the database's own (migration 0012), not the
    # model's: no column type describes both.
    __table_args__ = (UniqueConstraint("document_id", "position"),)

    id: Mapped[IdPk]
    document_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("knowledge_documents.id", ondelete="CASCADE")
    )
    assistant_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("assistants.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    # Where in the document: its headings, "Refunds › Deadlines".
    section: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    # float32, L2-normalised, little-endian; None until embedded.
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)


class ReplyRating(Base):
    """One person's verdict on one AI message: +1 or -1, with an optional comment."""

    __tablename__ = "reply_ratings"
    __table_args__ = (
        UniqueConstraint("message_id", "user_id"),
        ForeignKeyConstraint(["message_id", "chat_id"], MESSAGE_KEY, ondelete="CASCADE"),
    )

    id: Mapped[IdPk]
    message_id: Mapped[int] = mapped_column(BigIntId)
    chat_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("chats.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="CASCADE"))
    # The assistant that answered (None: the built-in AI); the owner's statistics group by it.
    assistant_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("assistants.id", ondelete="SET NULL"), index=True
    )
    value: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )


class AssistantBot(TimestampMixin, Base):
    """An assistant published as its own Telegram bot. The token is encrypted at rest."""

    __tablename__ = "assistant_bots"

    id: Mapped[IdPk]
    assistant_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("assistants.id", ondelete="CASCADE"), unique=True
    )
    telegram_bot_id: Mapped[int] = mapped_column(BigIntId, unique=True)
    username: Mapped[str] = mapped_column(String(64))
    token_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    # The secret Telegram sends back with each webhook update of this bot.
    webhook_secret: Mapped[str] = mapped_column(String(64))
