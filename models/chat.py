from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntId, IdPk, TimestampMixin, str_enum, utcnow


class ChatType(enum.StrEnum):
    PRIVATE = "private"
    GROUP = "group"
    AI = "ai"


class AiMode(enum.StrEnum):
    OFF = "off"
    MENTION = "mention"  # answers when mentioned, replied to, or asked with /ask
    ALWAYS = "always"


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
    # "private:<low id>:<high id>" or "ai:<user id>": one such chat per pair, race-free.
    pair_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    last_message_id: Mapped[int | None] = mapped_column(BigIntId)
    last_activity_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
    deleted_at: Mapped[datetime | None]
    # The AI participant in this chat. None means the default for the chat type.
    ai_mode: Mapped[AiMode | None] = mapped_column(str_enum(AiMode, "ai_mode"))
    ai_model: Mapped[str | None] = mapped_column(String(128))
    ai_persona: Mapped[str | None] = mapped_column(Text)
    ai_temperature: Mapped[float | None] = mapped_column(Float)
    # The assistant that is this chat's AI (None: the built-in one).
    assistant_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("assistants.id", ondelete="SET NULL"), index=True
    )
    # The AI also answers with a voice note.
    ai_voice_replies: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The AI's memory of this chat starts at this message (a "/new" context).
    ai_context_from_id: Mapped[int | None] = mapped_column(BigIntId)
    # A Telegram group the bot is in, mirrored as this chat (kept across the supergroup migration).
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)


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


class ChatInvitation(Base):
    """An invitation by username for someone we have not seen yet; accepted at first sign-in."""

    __tablename__ = "chat_invitations"
    __table_args__ = (UniqueConstraint("chat_id", "username"),)

    id: Mapped[IdPk]
    chat_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("chats.id", ondelete="CASCADE"))
    # Stored lower-case, without the leading @.
    username: Mapped[str] = mapped_column(String(64), index=True)
    invited_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )


class ChatInviteLink(Base):
    __tablename__ = "chat_invite_links"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    chat_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("chats.id", ondelete="CASCADE"), index=True
    )
    created_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
