"""The bot end to end: the real aiogram Bot and Dispatcher (polling) against the fake Bot API
server, the AI against the fake LLM vendor, a live API server on a database of its own (every
app that runs reply jobs takes them from its whole database)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.db import create_sessionmaker
from tests.conftest import make_settings
from tests.support.api import RunningApp, running_app
from tests.support.database import database_fixtures, truncate_all
from tests.support.fake_llm import FakeLLM, FakeLLMServer
from tests.support.fake_telegram.fake import FakeTelegram
from tests.support.fake_telegram.server import FakeTelegramServer

WEBAPP_URL = "https://miniapp.example/app"
GROUP_EDIT_INTERVAL = 0.2


@dataclass(frozen=True, slots=True)
class BotApp(RunningApp):
    """The app, and the fakes its bot and AI talk to."""

    telegram: FakeTelegram
    llm: FakeLLM
    sessionmaker: async_sessionmaker[AsyncSession]


BotAppFactory = Callable[..., AbstractAsyncContextManager[BotApp]]
bot_database_url, bot_engine = database_fixtures("bot_database_url", "bot_engine")


@pytest.fixture
async def start_bot_app(
    bot_database_url: str,
    bot_engine: AsyncEngine,
    tmp_dir: Path,
    fake_llm_server: FakeLLMServer,
    fake_llm: FakeLLM,
    fake_telegram_server: FakeTelegramServer,
    fake_telegram: FakeTelegram,
) -> AsyncIterator[BotAppFactory]:
    """Starts the API with the bot polling the fake Telegram; settings may be overridden."""

    @asynccontextmanager
    async def start(**overrides: object) -> AsyncIterator[BotApp]:
        values: dict[str, object] = {
            "bot_mode": "polling",
            "telegram_api_base": fake_telegram_server.base_url,
            "webapp_url": WEBAPP_URL,
            "openai_api_key": "test-key",
            "openai_base_url": fake_llm_server.base_url + "/v1",
            "llm_default_model": "gpt-4o-mini",
            "ai_runner_enabled": True,
            "ai_user_replies_per_minute": 1000,
            "billing_enabled": False,
            "telegram_draft_interval": 0.05,
            "telegram_edit_interval": 0.05,
            "telegram_group_edit_interval": GROUP_EDIT_INTERVAL,
        }
        values.update(overrides)
        async with running_app(make_settings(bot_database_url, tmp_dir, **values)) as running:
            yield BotApp(
                running.server,
                running.client,
                running.app,
                fake_telegram,
                fake_llm,
                create_sessionmaker(bot_engine),
            )
        fake_llm.close()

    yield start
    await truncate_all(bot_engine)


@pytest.fixture
async def bot_app(start_bot_app: BotAppFactory) -> AsyncIterator[BotApp]:
    async with start_bot_app() as running:
        yield running
