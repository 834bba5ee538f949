from __future__ import annotations

from pydantic import Field

from core.bounds import Input


class AssistantBotToken(Input):
    token: str = Field(min_length=1, max_length=128, description="the bot's token from BotFather")
