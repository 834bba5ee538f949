from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.bounds import Flag, Input
from services.users import BIO_MAX_LENGTH
from services.views.users import Me


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
