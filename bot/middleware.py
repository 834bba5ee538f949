"""One unit of work per update: a session that commits once, and the sender as our user."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from aiogram.types import User as TelegramUser

from bot.context import BotContext, profile_of
from core.db import unit_of_work
from services.users import sync_telegram_user


class UnitOfWorkMiddleware(BaseMiddleware):
    def __init__(self, context: BotContext, *, main_bot: bool = True) -> None:
        self._context = context
        # Writing to an assistant's bot lets that bot write back, not ours.
        self._main_bot = main_bot

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        context = self._context
        async with unit_of_work(context.sessionmaker, context.broker) as session:
            data["ctx"] = context
            data["session"] = session
            sender: TelegramUser | None = data.get("event_from_user")
            if sender is not None:
                chat = data.get("event_chat")
                private = self._main_bot and chat is not None and chat.type == "private"
                synced = await sync_telegram_user(
                    session,
                    profile_of(sender, wrote_to_bot=private),
                    admin_ids=context.settings.admin_telegram_ids,
                )
                if synced.user.banned_at is not None:
                    return None  # banned: the bot takes nothing from them either
                data["user"] = synced.user
            return await handler(event, data)
