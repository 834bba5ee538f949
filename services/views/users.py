"""Users as others see them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import select

from core.sql import in_ids
from models import User


class UserRow(Protocol):
    """What a `UserBrief` reads: a `User`, or a row of `BRIEF_COLUMNS`."""

    @property
    def id(self) -> int: ...
    @property
    def telegram_id(self) -> int: ...
    @property
    def username(self) -> str | None: ...
    @property
    def first_name(self) -> str: ...
    @property
    def last_name(self) -> str | None: ...
    @property
    def photo_url(self) -> str | None: ...
    @property
    def is_bot(self) -> bool: ...


# In `UserBrief`'s field order.
BRIEF_COLUMNS = (
    User.id,
    User.telegram_id,
    User.username,
    User.first_name,
    User.last_name,
    User.photo_url,
    User.is_bot,
)
# Built once: the views of every message list ask it.
BRIEFS_BY_ID = select(*BRIEF_COLUMNS).where(in_ids(User.id, "ids"))


def user_fields(user: UserRow) -> dict[str, Any]:
    """What every view of a user shows: a `UserBrief`'s fields."""
    return {
        "id": user.id,
        "telegram_id": user.telegram_id,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "profile_photo_url": user.photo_url,
        "is_bot": user.is_bot,
    }


class UserBrief(BaseModel):
    id: int
    telegram_id: int
    username: str | None
    first_name: str
    last_name: str | None
    profile_photo_url: str | None
    is_bot: bool

    @classmethod
    def of(cls, user: UserRow) -> UserBrief:
        return cls(**user_fields(user))

    @classmethod
    def of_values(cls, values: Sequence[Any]) -> UserBrief:
        """The brief of the values of `BRIEF_COLUMNS`, in their order."""
        return cls(**dict(zip(_BRIEF_FIELDS, values, strict=True)))


_BRIEF_FIELDS = tuple(UserBrief.model_fields)


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
            **user_fields(user),
            language_code=user.language_code,
            is_premium=user.is_premium,
            is_admin=user.is_admin,
            bio=user.bio,
            allows_write_to_pm=user.allows_write_to_pm,
            notifications_enabled=user.notifications_enabled,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )
