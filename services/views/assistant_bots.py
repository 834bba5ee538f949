"""An assistant's own Telegram bot as its owner sees it: never its token."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from core.settings import Settings
from models import AssistantBot


class AssistantBotOut(BaseModel):
    telegram_bot_id: int
    username: str
    mode: Literal["webhook", "polling"] = Field(
        description="how this server takes the bot's updates (BOT_MODE=webhook: by webhook)"
    )

    @classmethod
    def of(cls, published: AssistantBot, settings: Settings) -> AssistantBotOut:
        return cls(
            telegram_bot_id=published.telegram_bot_id,
            username=published.username,
            mode="webhook" if settings.bot_mode == "webhook" else "polling",
        )
