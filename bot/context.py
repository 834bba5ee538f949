"""What the bot's handlers get besides the update: the process's shared objects."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo
from aiogram.types import User as TelegramUser
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.broker import Broker
from core.settings import Settings, webapp_link
from core.storage import Storage
from services.ai.runtime import AiRuntime
from services.billing.config import BillingConfig
from services.media.config import MediaConfig
from services.users import TelegramProfile
from workers.ai_runner import AiRunner


@dataclass(slots=True)
class BotContext:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    broker: Broker
    billing: BillingConfig
    runtime: AiRuntime | None  # the AI participant, None when this server has none
    media: MediaConfig
    storage: Storage
    runner: AiRunner | None = None  # this process's runner of reply jobs, once attached


def profile_of(user: TelegramUser, *, wrote_to_bot: bool) -> TelegramProfile:
    """A Telegram user as our services know them. A user who writes to the bot in private
    allows it to write back."""
    return TelegramProfile(
        telegram_id=user.id,
        first_name=user.first_name,
        last_name=user.last_name,
        username=user.username,
        language_code=user.language_code,
        is_premium=user.is_premium,
        allows_write_to_pm=True if wrote_to_bot else None,
        is_bot=user.is_bot,
    )


def app_button(
    webapp_url: str | None, label: str, start_param: str | None = None
) -> InlineKeyboardMarkup | None:
    """A button that opens the Mini App (at a chat, with a `startapp` parameter)."""
    url = webapp_link(webapp_url, start_param)
    if url is None:
        return None
    button = InlineKeyboardButton(text=label, web_app=WebAppInfo(url=url))
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def parse_switch(args: str | None, *, current: bool) -> bool | None:
    """A command's `on` or `off`, or no argument: switch. None for anything else."""
    value = (args or "").strip().lower()
    if not value:
        return not current
    return {"on": True, "off": False}.get(value)
