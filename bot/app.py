"""The bot of one process: aiogram's Bot and Dispatcher, the Telegram relay for AI replies,
and the ways to run it (polling, or updates fed from the API's webhook route)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, MenuButtonWebApp, Update, WebAppInfo

from bot.context import BotContext
from bot.handlers import errors, groups, payments, private
from bot.middleware import UnitOfWorkMiddleware
from bot.relay import Cadence, TelegramRelay
from wiring.process import Process
from workers.ai_runner import AiRunner

logger = logging.getLogger(__name__)

COMMANDS = [
    BotCommand(command="image", description="Draw a picture: /image <what>"),
    BotCommand(command="new", description="Start a fresh conversation"),
    BotCommand(command="model", description="Choose the AI model"),
    BotCommand(command="persona", description="How the AI should behave"),
    BotCommand(command="stop", description="Stop the answer being written"),
    BotCommand(command="balance", description="What you have left"),
    BotCommand(command="topup", description="Buy credits with Telegram Stars"),
    BotCommand(command="help", description="How this works"),
]


class TelegramBot:
    def __init__(self, process: Process) -> None:
        settings, sessionmaker, broker = process.settings, process.sessionmaker, process.broker
        if settings.bot_token is None:
            raise ValueError("a Telegram bot needs BOT_TOKEN")
        self.bot = Bot(
            settings.bot_token.get_secret_value(),
            session=AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base)),
        )
        self.context = BotContext(
            settings,
            sessionmaker,
            broker,
            process.billing,
            process.ai,
            process.media,
            process.storage,
        )
        cadence = Cadence(
            draft_interval=settings.telegram_draft_interval,
            private_edit_interval=settings.telegram_edit_interval,
            group_edit_interval=settings.telegram_group_edit_interval,
            group_edits_per_minute=settings.telegram_group_edits_per_minute,
        )
        self.relay = TelegramRelay(self.bot, sessionmaker, broker, cadence)
        self.dispatcher = Dispatcher()
        self.dispatcher.update.outer_middleware(UnitOfWorkMiddleware(self.context))
        self.dispatcher.include_router(payments.create_router())  # before private's catch-all
        self.dispatcher.include_router(private.create_router())
        self.dispatcher.include_router(groups.create_router())
        self.dispatcher.include_router(errors.create_router())

    def attach(self, runner: AiRunner | None) -> None:
        self.context.runner = runner

    async def start(self) -> None:
        """Learn who the bot is and offer the Mini App from its commands and menu button."""
        try:
            me = await self.bot.get_me()
            runtime = self.context.runtime
            if runtime is not None and runtime.bot_username is None:
                runtime.bot_username = me.username
            await self.bot.set_my_commands(COMMANDS)
            if self.context.settings.webapp_url:
                await self.bot.set_chat_menu_button(
                    menu_button=MenuButtonWebApp(
                        text="Open", web_app=WebAppInfo(url=self.context.settings.webapp_url)
                    )
                )
        except TelegramAPIError as error:
            logger.warning("could not set up the bot with Telegram: %s", error)

    def allowed_updates(self) -> list[str]:
        return self.dispatcher.resolve_used_update_types()

    async def run_polling(self) -> None:
        await self.dispatcher.start_polling(
            self.bot,
            # One update at a time, in Telegram's order: a group's history keeps its order.
            # Handlers only write to the database; replies stream elsewhere.
            handle_as_tasks=False,
            handle_signals=False,
            close_bot_session=False,
            allowed_updates=self.allowed_updates(),
        )

    async def feed(self, data: dict[str, Any]) -> None:
        """One update from the webhook."""
        update = Update.model_validate(data, context={"bot": self.bot})
        await self.dispatcher.feed_update(self.bot, update)

    async def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # "Polling is not started"
            await self.dispatcher.stop_polling()
        await self.bot.session.close()
