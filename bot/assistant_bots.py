"""Assistants' own Telegram bots, served by the process that runs ours: a Bot and a Dispatcher
per assistant bot (the same handlers for all of them, each dispatcher naming its assistant),
fed by its webhook route or polling. Every process learns of a bot added or removed from the
broker (`services.ai.bot_news`) and starts or stops serving it at once."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError
from aiogram.types import Update

from bot.context import BotContext
from bot.handlers import assistant, errors
from bot.middleware import UnitOfWorkMiddleware
from core.db import read_session
from core.envelope import Envelope
from core.errors import BadRequest, NotFound, ServiceUnavailable, Unauthorized
from core.settings import Settings
from core.token_cipher import TokenCipher
from models import AssistantBot
from services.ai.assistant_bots import (
    BotIdentity,
    served_bot,
    served_bots,
    token_cipher,
)
from services.ai.bot_news import changed_bot_id

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/assistant/{telegram_bot_id}"


def _bot(settings: Settings, token: str) -> Bot:
    api = TelegramAPIServer.from_base(settings.telegram_api_base)
    return Bot(token, session=AiohttpSession(api=api))


async def identify_token(settings: Settings, token: str) -> BotIdentity:
    """Who the token belongs to, by Telegram's getMe; a token Telegram refuses is a 400."""
    bot = _bot(settings, token)
    try:
        me = await bot.get_me()
    except TelegramUnauthorizedError:
        raise BadRequest("Telegram does not know this bot token", code="bad_bot_token") from None
    except TelegramAPIError as error:
        raise ServiceUnavailable(
            f"Telegram could not check the token: {error.message}", code="telegram_unavailable"
        ) from None
    finally:
        await bot.session.close()
    return BotIdentity(telegram_bot_id=me.id, username=me.username or "")


@dataclass(slots=True)
class _Served:
    row_id: int  # the AssistantBot row: a replaced token is a new row
    assistant_id: int
    webhook_secret: str
    bot: Bot
    dispatcher: Dispatcher
    polling: asyncio.Task[None] | None = None


class AssistantBots:
    def __init__(self, context: BotContext) -> None:
        self._context = context
        self._served: dict[int, _Served] = {}
        self._polling = False
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._remove_listener: Callable[[], None] | None = None

    def bot(self, telegram_bot_id: int) -> Bot | None:
        """The Bot of an assistant bot this process serves (the relay streams through it)."""
        served = self._served.get(telegram_bot_id)
        return served.bot if served is not None else None

    async def start(self, *, polling: bool) -> None:
        """Serve every published bot (polling each, or by its webhook) and follow changes."""
        self._polling = polling
        self._remove_listener = self._context.broker.add_listener(self._on_envelope)
        if self._context.settings.assistant_bot_token_key is None:
            return
        async with read_session(self._context.sessionmaker) as session:
            rows = await served_bots(session)
        async with self._lock:
            for row in rows:
                await self._serve(row)

    async def stop(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._lock:
            for served in list(self._served.values()):
                await self._stop_polling(served)
                await served.bot.session.close()
            self._served.clear()

    async def feed(self, telegram_bot_id: int, secret: str | None, data: dict[str, Any]) -> None:
        """One webhook update for an assistant bot, checked against that bot's own secret."""
        served = self._served.get(telegram_bot_id)
        if served is None:
            raise NotFound("Not Found")
        if secret is None or not hmac.compare_digest(
            secret.encode(), served.webhook_secret.encode()
        ):
            raise Unauthorized("Bad webhook secret", code="bad_webhook_secret")
        update = Update.model_validate(data, context={"bot": served.bot})
        await served.dispatcher.feed_update(served.bot, update)

    # -- following changes ----------------------------------------------------------------------

    def _on_envelope(self, envelope: Envelope) -> None:
        telegram_bot_id = changed_bot_id(envelope)
        if telegram_bot_id is None:
            return
        task = asyncio.get_running_loop().create_task(self._refresh(telegram_bot_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh(self, telegram_bot_id: int) -> None:
        async with read_session(self._context.sessionmaker) as session:
            row = await served_bot(session, telegram_bot_id)
        async with self._lock:
            served = self._served.get(telegram_bot_id)
            if served is not None and (row is None or row.id != served.row_id):
                await self._unserve(telegram_bot_id, served)
            if row is not None and telegram_bot_id not in self._served:
                await self._serve(row)

    # -- serving one bot ------------------------------------------------------------------------

    def _cipher(self) -> TokenCipher | None:
        if self._context.settings.assistant_bot_token_key is None:
            return None
        return token_cipher(self._context.settings)

    async def _serve(self, row: AssistantBot) -> None:
        cipher = self._cipher()
        token = cipher.decrypt(row.token_ciphertext) if cipher is not None else None
        if token is None:
            logger.warning(
                "assistant bot %s not served: ASSISTANT_BOT_TOKEN_KEY is unset or not the key "
                "its token was encrypted with",
                row.telegram_bot_id,
            )
            return
        dispatcher = Dispatcher(assistant_id=row.assistant_id)
        dispatcher.update.outer_middleware(UnitOfWorkMiddleware(self._context, main_bot=False))
        dispatcher.include_router(assistant.create_router())
        dispatcher.include_router(errors.create_router())
        served = _Served(
            row.id,
            row.assistant_id,
            row.webhook_secret,
            _bot(self._context.settings, token),
            dispatcher,
        )
        self._served[row.telegram_bot_id] = served
        if self._polling:
            served.polling = asyncio.create_task(self._poll(served))
        elif self._context.settings.public_base_url:
            url = self._context.settings.public_base_url + WEBHOOK_PATH.format(
                telegram_bot_id=row.telegram_bot_id
            )
            try:
                await served.bot.set_webhook(
                    url=url,
                    secret_token=row.webhook_secret,
                    allowed_updates=dispatcher.resolve_used_update_types(),
                )
            except TelegramAPIError as error:
                logger.warning(
                    "assistant bot %s: setWebhook failed: %s", row.telegram_bot_id, error
                )

    async def _poll(self, served: _Served) -> None:
        await served.dispatcher.start_polling(
            served.bot,
            handle_as_tasks=False,
            handle_signals=False,
            close_bot_session=False,
            allowed_updates=served.dispatcher.resolve_used_update_types(),
        )

    async def _stop_polling(self, served: _Served) -> None:
        if served.polling is None:
            return
        with contextlib.suppress(RuntimeError):  # "Polling is not started" (yet)
            await served.dispatcher.stop_polling()
        served.polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await served.polling

    async def _unserve(self, telegram_bot_id: int, served: _Served) -> None:
        del self._served[telegram_bot_id]
        if served.polling is not None:
            await self._stop_polling(served)
        elif self._context.settings.public_base_url:
            try:
                await served.bot.delete_webhook()
            except TelegramAPIError as error:
                logger.warning("assistant bot %s: deleteWebhook failed: %s", telegram_bot_id, error)
        await served.bot.session.close()
