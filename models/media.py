from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntId, IdPk, str_enum, utcnow
from models.message import MESSAGE_KEY


class MediaKind(enum.StrEnum):
    PHOTO = "photo"
    VIDEO = "video"
    AUDIO = "audio"
    VOICE = "voice"
    DOCUMENT = "document"


class Media(Base):
    """One upload. Identical files share one stored blob: its key derives from `sha256`."""

    __tablename__ = "media"
    __table_args__ = (
        # Per-user upload rate and storage quota.
        Index("ix_media_uploader_id_created_at", "uploader_id", "created_at"),
    )

    id: Mapped[IdPk]
    uploader_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL")
    )
    kind: Mapped[MediaKind] = mapped_column(str_enum(MediaKind, "media_kind"))
    # Decided from the file's bytes, never from what the client declared.
    mime_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # The client's name for the file: shown and offered on download, never part of a path.
    original_filename: Mapped[str | None] = mapped_column(String(255))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[float | None] = mapped_column(Float)
    thumbnail_key: Mapped[str | None] = mapped_column(String(128))
    # Unattached media older than a day are cleaned up.
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp(), index=True
    )


class MessageMedia(Base):
    """A media item shown in a message, at `position` in its album. It carries the message's
    chat, the key the message is found by."""

    __tablename__ = "message_media"
    __table_args__ = (
        PrimaryKeyConstraint("message_id", "media_id"),
        ForeignKeyConstraint(["message_id", "chat_id"], MESSAGE_KEY, ondelete="CASCADE"),
    )

    message_id: Mapped[int] = mapped_column(BigIntId)
    chat_id: Mapped[int] = mapped_column(BigIntId)
    # Who may fetch a media item is decided through here.
    media_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("media.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
