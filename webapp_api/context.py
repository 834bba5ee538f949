"""What one running API process holds: settings, the database, the broker, the socket hub,
the AI participant, media storage, the media cleanup loop and, when this process runs it, the
Telegram bot."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.broker import Broker, create_broker
from core.db import create_engine, create_sessionmaker
from core.presence import PresenceStore, create_presence
from core.ratelimit import create_rate_limiter
from core.settings import Settings
from core.signing import media_urls
from core.storage import Storage, create_storage
from services.auth import AuthConfig
from services.limits import AbuseLimits
from services.media.config import MediaConfig
from workers.ai_runner import AiServices
from workers.media_cleanup import run_media_cleanup_forever
from ws.hub import Hub

if TYPE_CHECKING:
    # aiogram takes seconds to import: only a process that runs the bot imports it.
    from bot.app import TelegramBot
    from bot.notifications import Notifier

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
    # The bot, when this process runs it (`bot_mode`: polling, or webhook updates).
    telegram: TelegramBot | None
    bot_mode: Literal["off", "polling", "webhook"]
    presence: PresenceStore
    notifier: Notifier | None
    limits: AbuseLimits
    media: MediaConfig
    storage: Storage
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings) -> AppContext:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
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
            send_timeout=settings.ws_send_timeout,
            presence_grace=settings.ws_presence_grace,
            typing_ttl=settings.ws_typing_ttl,
            gap_grace=settings.ws_gap_grace,
            resume_grace=settings.ws_resume_grace,
            presence_max_group_size=settings.presence_max_group_size,
            presence_store=presence,
        )
        bot_mode = settings.api_bot_mode() if settings.bot_token else "off"
        # Only a process that runs the bot talks to Telegram by itself (its dispatcher, the
        # replies it streams there, notifications); with BOT_MODE=off another process is the
        # bot (`python -m bot`), and this one calls the Bot API only for what a request asks
        # (an invoice link, a refund).
        telegram: TelegramBot | None = None
        if bot_mode != "off":
            from bot.app import TelegramBot

            telegram = TelegramBot(settings, sessionmaker, broker)
        ai = AiServices.open(
            settings,
            sessionmaker,
            broker,
            sink=telegram.relay if telegram is not None else None,
            surfaces=APP_AND_TELEGRAM if telegram is not None else frozenset({"app"}),
        )
        notifier: Notifier | None = None
        if telegram is not None and settings.notify_interval > 0:
            from bot.notifications import Notifier

            notifier = Notifier(
                telegram.bot,
                sessionmaker,
                broker,
                presence,
                webapp_url=settings.webapp_url,
                interval=settings.notify_interval,
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
            MediaConfig.from_settings(settings),
            create_storage(settings),
        )
        if telegram is not None:
            telegram.attach(ai)
            await telegram.start()
            if bot_mode == "polling":
                context._tasks.append(asyncio.create_task(telegram.run_polling()))
        context._tasks.append(
            asyncio.create_task(
                run_media_cleanup_forever(
                    sessionmaker, broker, context.storage, spool_dir=context.media.spool_dir
                )
            )
        )
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
