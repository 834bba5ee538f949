"""What one running API process holds: settings, the database engine and the event broker."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.broker import Broker, create_broker
from core.db import create_engine, create_sessionmaker
from core.settings import Settings
from services.ai_runner import AiServices
from services.auth import AuthConfig
from ws.hub import Hub


@dataclass(slots=True)
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    broker: Broker
    auth: AuthConfig
    hub: Hub
    ai: AiServices | None

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
        ai = AiServices.open(settings, sessionmaker, broker)
        return cls(
            settings, engine, sessionmaker, broker, AuthConfig.from_settings(settings), hub, ai
        )

    async def close(self) -> None:
        if self.ai is not None:
            await self.ai.close()
        await self.hub.close()
        await self.broker.close()
        await self.engine.dispose()
