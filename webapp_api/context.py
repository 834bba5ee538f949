"""What one running API process holds: settings, the database, the broker, the socket hub,
the AI participant and, when this process runs it, the Telegram bot."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import TelegramBot
from bot.notifications import Notifier
from core.broker import Broker, create_broker
from core.db import create_engine, create_sessionmaker
from core.presence import PresenceStore, create_presence
from core.ratelimit import create_rate_limiter
from core.settings import Settings
from services.ai_runner import AiServices
from services.auth import AuthConfig
from services.limits import AbuseLimits
from services.media import media_urls
from ws.hub import Hub

APP_AND_TELEGRAM = frozenset({"app", "telegram"})


@dataclass(slots=True)
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    broker: Broker
    auth: AuthConfig
    hub: Hub
    ai: AiServices | None
    # The process's Telegram client (with a BOT_TOKEN); `bot_mode` says whether it also runs
    # the bot's dispatcher here (polling, or webhook updates) and streams Telegram replies.
    telegram: TelegramBot | None
    bot_mode: Literal["off", "polling", "webhook"]
    presence: PresenceStore
    notifier: Notifier | None
    limits: AbuseLimits
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings) -> AppContext:
        engine = create_engine(settings.database_url)
        broker = create_broker(settings.redis_url, settings.redis_prefix)
        await broker.start()
        auth = AuthConfig.from_settings(settings)
        sessionmaker = create_sessionmaker(
            engine, info={"media_urls": media_urls(settings, auth.secret_key)}
        )
        presence = create_presence(settings.redis_url, settings.redis_prefix)
        await presence.start()
        hub = Hub(
            sessionmaker,
            broker,
            queue_size=settings.ws_send_queue,
            presence_grace=settings.ws_presence_grace,
            typing_ttl=settings.ws_typing_ttl,
            gap_grace=settings.ws_gap_grace,
            resume_grace=settings.ws_resume_grace,
            presence_max_group_size=settings.presence_max_group_size,
            presence_store=presence,
        )
        bot_mode = settings.api_bot_mode()
        # With a token the process can always send (notifications); it runs the bot's
        # dispatcher and streams Telegram replies only when the bot mode says so.
        telegram = TelegramBot(settings, sessionmaker, broker) if settings.bot_token else None
        if telegram is None:
            bot_mode = "off"
        runs_bot = telegram is not None and bot_mode != "off"
        ai = AiServices.open(
            settings,
            sessionmaker,
            broker,
            sink=telegram.relay if telegram is not None and runs_bot else None,
            surfaces=APP_AND_TELEGRAM if runs_bot else frozenset({"app"}),
        )
        notifier = (
            Notifier(
                telegram.bot,
                sessionmaker,
                broker,
                presence,
                webapp_url=settings.webapp_url,
                interval=settings.notify_interval,
            )
            if telegram is not None and settings.notify_interval > 0
            else None
        )
        context = cls(
            settings,
            engine,
            sessionmaker,
            broker,
            auth,
            hub,
            ai,
            telegram,
            bot_mode,
            presence,
            notifier,
            AbuseLimits.from_settings(
                settings, create_rate_limiter(settings.redis_url, settings.redis_prefix)
            ),
        )
        if telegram is not None and runs_bot:
            telegram.attach(ai)
            await telegram.start()
            if bot_mode == "polling":
                context._tasks.append(asyncio.create_task(telegram.run_polling()))
        return context

    async def close(self) -> None:
        if self.notifier is not None:
            await self.notifier.close()
        if self.telegram is not None:
            await self.telegram.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.ai is not None:
            await self.ai.close()
        await self.hub.close()
        await self.presence.close()
        await self.limits.limiter.close()
        await self.broker.close()
        await self.engine.dispose()
