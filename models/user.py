from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, func, true
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntId, IdPk, TimestampMixin, utcnow


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (Index("ix_users_username_lower", func.lower("username"), unique=True),)

    id: Mapped[IdPk]
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str] = mapped_column(String(256), default="")
    last_name: Mapped[str | None] = mapped_column(String(256))
    language_code: Mapped[str | None] = mapped_column(String(16))
    is_premium: Mapped[bool] = mapped_column(default=False)
    photo_url: Mapped[str | None] = mapped_column(String(1024))
    allows_write_to_pm: Mapped[bool] = mapped_column(default=False)
    is_bot: Mapped[bool] = mapped_column(default=False)
    is_admin: Mapped[bool] = mapped_column(default=False)
    last_seen_at: Mapped[datetime | None]
    bio: Mapped[str | None] = mapped_column(Text)
    notifications_enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    banned_at: Mapped[datetime | None]  # set by an operator: no sign-in, no session, no socket


class AuthSession(Base):
    """A signed-in device: one refresh-token family. Revoking it ends its access tokens too."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
    revoked_at: Mapped[datetime | None]


class RefreshToken(Base):
    """Only the SHA-256 of a refresh token is stored. A used token that comes back was stolen."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
