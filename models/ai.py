from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    false,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntId, IdPk, JsonDocument, str_enum, utcnow
from models.message import MESSAGE_KEY


class AiReplyStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_REPLY_STATUSES = (AiReplyStatus.QUEUED, AiReplyStatus.RUNNING)


class AiJobKind(enum.StrEnum):
    TEXT = "text"  # an answer, streamed (and spoken, where the chat wants voice replies)
    IMAGE = "image"  # "/image <prompt>": one generated picture
    TRANSCRIPTION = "transcription"  # a voice note's transcript, asked for on its own


_ACTIVE = "status IN ('queued', 'running')"


class AiReply(Base):
    """A reply of the AI participant: a durable job from queued to a persisted message.

    One active reply per chat is a constraint, not a check: a partial unique index. A
    transcription asked for on its own does not hold it; one per message at a time."""

    __tablename__ = "ai_replies"
    __table_args__ = (
        Index(
            "uq_ai_replies_active_chat",
            "chat_id",
            unique=True,
            postgresql_where=text(f"{_ACTIVE} AND kind <> 'transcription'"),
            sqlite_where=text(f"{_ACTIVE} AND kind <> 'transcription'"),
        ),
        Index(
            "uq_ai_replies_active_transcription",
            "trigger_message_id",
            unique=True,
            postgresql_where=text(f"{_ACTIVE} AND kind = 'transcription'"),
            sqlite_where=text(f"{_ACTIVE} AND kind = 'transcription'"),
        ),
        Index("ix_ai_replies_status_id", "status", "id"),
        Index("ix_ai_replies_requested_by_created_at", "requested_by", "created_at"),
        # Both messages are in the reply's chat, and go only with it (as the reply does).
        ForeignKeyConstraint(["trigger_message_id", "chat_id"], MESSAGE_KEY),
        ForeignKeyConstraint(["reply_message_id", "chat_id"], MESSAGE_KEY),
    )

    id: Mapped[IdPk]
    chat_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("chats.id", ondelete="CASCADE"))
    trigger_message_id: Mapped[int | None] = mapped_column(BigIntId)
    # Who pays: the user whose message triggered the reply.
    requested_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL")
    )
    # Where it was asked: "app" (the Mini App) or "telegram" (a chat with the bot); a Telegram
    # reply is run by a process that also runs the bot, so it can stream into Telegram.
    surface: Mapped[str] = mapped_column(String(16), default="app", server_default="app")
    # The assistant that answers (None: the built-in AI), for its owner's statistics.
    assistant_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("assistants.id", ondelete="SET NULL"), index=True
    )
    model: Mapped[str] = mapped_column(String(128))
    provider: Mapped[str] = mapped_column(String(32))
    status: Mapped[AiReplyStatus] = mapped_column(
        str_enum(AiReplyStatus, "ai_reply_status"), default=AiReplyStatus.QUEUED
    )
    kind: Mapped[AiJobKind] = mapped_column(
        str_enum(AiJobKind, "ai_job_kind"), default=AiJobKind.TEXT, server_default="text"
    )
    text: Mapped[str] = mapped_column(Text, default="", server_default="")
    max_tokens: Mapped[int]
    reply_message_id: Mapped[int | None] = mapped_column(BigIntId)
    input_tokens: Mapped[int] = mapped_column(default=0, server_default="0")
    output_tokens: Mapped[int] = mapped_column(default=0, server_default="0")
    # What it used besides tokens, each priced by its model in the catalogue.
    audio_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    speech_characters: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    images_generated: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Everything it cost: tokens and the above.
    cost_micros: Mapped[int] = mapped_column(default=0, server_default="0")
    incomplete: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class UserProfile(Base):
    """What a user chose to tell the AI about themself (personalisation of their direct chat)."""

    __tablename__ = "user_profiles"

    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # {"values": [{"name", "weight"}], "beliefs": [...], "interests": [...], "skills": [...],
    #  "desires": [...], "intentions": [...]}
    data: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.current_timestamp()
    )
