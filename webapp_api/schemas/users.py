from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.bounds import Flag, Input
from models import User
from services.users import BIO_MAX_LENGTH
from services.views import UserBrief


class Me(BaseModel):
    """The caller's own profile (Aeon's `GET /me` shape, plus our fields)."""

    id: int
    telegram_id: int
    username: str | None
    first_name: str
    last_name: str | None
    language_code: str | None
    is_premium: bool
    is_admin: bool
    is_bot: bool
    profile_photo_url: str | None
    bio: str | None
    allows_write_to_pm: bool
    notifications_enabled: bool
    # Accounts are never deactivated here; Aeon's clients read the flag.
    is_active: bool = True
    created_at: datetime
    updated_at: datetime
    # Aeon's organisation links, which this messenger does not have.
    subordinates: list[UserBrief] = []
    managers: list[UserBrief] = []

    @classmethod
    def of(cls, user: User) -> Me:
        return cls(
            id=user.id,
            telegram_id=user.telegram_id,
            username=user.username,
            first_name=user.first_name,
            last_name=user.last_name,
            language_code=user.language_code,
            is_premium=user.is_premium,
            is_admin=user.is_admin,
            is_bot=user.is_bot,
            profile_photo_url=user.photo_url,
            bio=user.bio,
            allows_write_to_pm=user.allows_write_to_pm,
            notifications_enabled=user.notifications_enabled,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


class MeUpdate(Input):
    model_config = ConfigDict(extra="forbid")

    bio: str | None = Field(default=None, max_length=BIO_MAX_LENGTH)
    notifications_enabled: Flag = True  # only fields the client sent are applied


class TelegramSignIn(Input):
    init_data: str = Field(min_length=1)


class RefreshRequest(Input):
    refresh_token: str = Field(min_length=1, max_length=512)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int
    user: Me
