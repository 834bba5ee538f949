from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntId, IdPk, TimestampMixin, str_enum, utcnow


class ChatType(enum.StrEnum):
    PRIVATE = "private"
    GROUP = "group"
    AI = "ai"


class MemberRole(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class Chat(TimestampMixin, Base):
    __tablename__ = "chats"

    id: Mapped[IdPk]
    type: Mapped[ChatType] = mapped_column(str_enum(ChatType, "chat_type"))
    title: Mapped[str | None] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(Text)
    photo_url: Mapped[str | None] = mapped_column(String(1024))
    created_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL")
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    # The chat's event sequence: the seq of the newest chat_events row.
    last_seq: Mapped[int] = mapped_column(default=0, server_default="0")


class ChatMember(Base):
    __tablename__ = "chat_members"
    __table_args__ = (UniqueConstraint("chat_id", "user_id"),)

    id: Mapped[IdPk]
    chat_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("chats.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[MemberRole] = mapped_column(
        str_enum(MemberRole, "member_role"), default=MemberRole.MEMBER
    )
    joined_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
    last_read_seq: Mapped[int] = mapped_column(default=0, server_default="0")
    is_favorite: Mapped[bool] = mapped_column(default=False)
    is_muted: Mapped[bool] = mapped_column(default=False)
    is_archived: Mapped[bool] = mapped_column(default=False)
