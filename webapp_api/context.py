"""What one running API process holds: settings, the database, the broker, the socket hub,
the AI participant and, when this process runs it, the Telegram bot."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import TelegramBot
from core.broker import Broker, create_broker
from core.db import create_engine, create_sessionmaker
from core.settings import Settings
from services.ai_runner import AiServices
from services.auth import AuthConfig
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
    telegram: TelegramBot | None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings) -> AppContext:
        engine = create_engine(settings.database_url)
        broker = create_broker(settings.redis_url)
        await broker.start()
        sessionmaker = create_sessionmaker(engine)
        hub = Hub(
            sessionmaker,
            broker,
            queue_size=settings.ws_send_queue,
            presence_grace=settings.ws_presence_grace,
            typing_ttl=settings.ws_typing_ttl,
        )
        bot_mode = settings.api_bot_mode()
        telegram = TelegramBot(settings, sessionmaker, broker) if bot_mode != "off" else None
        ai = AiServices.open(
            settings,
            sessionmaker,
            broker,
            sink=telegram.relay if telegram else None,
            surfaces=APP_AND_TELEGRAM if telegram else frozenset({"app"}),
        )
        context = cls(
            settings,
            engine,
            sessionmaker,
            broker,
            AuthConfig.from_settings(settings),
            hub,
            ai,
            telegram,
        )
        if telegram is not None:
            telegram.attach(ai)
            await telegram.start()
            if bot_mode == "polling":
                context._tasks.append(asyncio.create_task(telegram.run_polling()))
        return context

    async def close(self) -> None:
        if self.telegram is not None:
            await self.telegram.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.ai is not None:
            await self.ai.close()
        await self.hub.close()
        await self.broker.close()
        await self.engine.dispose()
