"""What one running API process holds: settings, the database engine and the event broker."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.broker import Broker, create_broker
from core.db import create_engine, create_sessionmaker
from core.settings import Settings
from services.auth import AuthConfig


@dataclass(slots=True)
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    broker: Broker
    auth: AuthConfig

    @classmethod
    async def open(cls, settings: Settings) -> AppContext:
        engine = create_engine(settings.database_url)
        broker = create_broker(settings.redis_url)
        await broker.start()
        return cls(
            settings,
            engine,
            create_sessionmaker(engine),
            broker,
            AuthConfig.from_settings(settings),
        )

    async def close(self) -> None:
        await self.broker.close()
        await self.engine.dispose()
