"""Billing on a database of its own. Service tests use its sessionmaker; end-to-end tests start
an app on it (the AI against the fake LLM vendor, the bot against the fake Bot API server). An
app runs the reply jobs of its whole database, hence a database apart from other suites'."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.db import create_sessionmaker
from core.settings import DEFAULT_STAR_PACKAGES
from llm.catalogue import ModelInfo, cost_micros
from services.billing.config import BillingConfig
from services.billing.quota import WorstCase
from tests.conftest import TEST_SECRET_KEY, make_settings
from tests.support.api import RunningApp, running_app
from tests.support.database import database_fixtures, truncate_all
from tests.support.fake_llm import FakeLLM, FakeLLMServer
from tests.support.fake_telegram.server import FakeTelegramServer

# 100 micro-credits per input token, 200 per output token: costs large enough to see.
PRICEY = ModelInfo(
    id="pricey",
    provider="openai",
    vendor_model="pricey-1",
    display_name="Pricey",
    context_window=10_000,
    max_output_tokens=100,
    input_price=100_000_000,
    output_price=200_000_000,
)
STARTING_GRANT = 100_000


def catalogue_entry(model: ModelInfo) -> dict[str, Any]:
    """A chat model as an LLM_MODELS entry (without the fields of other kinds, unset ones)."""
    media_prices = ("audio_minute_price", "speech_price", "image_price")
    return {
        name: value
        for name, value in dataclasses.asdict(model).items()
        if value is not None and name not in media_prices
    }


def pricey_worst_case(prompt_tokens: int, max_tokens: int) -> WorstCase:
    """A text reply's hold at PRICEY's prices."""
    return WorstCase(
        tokens=prompt_tokens + max_tokens,
        micros=cost_micros(PRICEY, prompt_tokens, max_tokens),
    )


ADMIN_TELEGRAM_ID = 900001  # an administrator in make_settings


def config_with(**changes: Any) -> BillingConfig:
    """The billing of `start_app`'s apps, with some changes."""
    base = BillingConfig(
        enabled=True,
        starting_grant=STARTING_GRANT,
        daily_free=0,
        packages=DEFAULT_STAR_PACKAGES,
        secret_key=TEST_SECRET_KEY,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def config() -> BillingConfig:
    """The billing of `start_app`'s apps."""
    return config_with()


billing_database_url, billing_engine = database_fixtures("billing_database_url", "billing_engine")


@pytest.fixture(scope="session")
def billing_sessionmaker(billing_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(billing_engine)


@pytest.fixture(autouse=True)
async def _fresh_billing_database(billing_engine: AsyncEngine) -> AsyncIterator[None]:
    yield
    await truncate_all(billing_engine)


AppFactory = Callable[..., AbstractAsyncContextManager[RunningApp]]


@pytest.fixture
def start_app(
    billing_database_url: str,
    billing_engine: AsyncEngine,
    tmp_dir: Path,
    fake_llm_server: FakeLLMServer,
    fake_llm: FakeLLM,
    fake_telegram_server: FakeTelegramServer,
) -> AppFactory:
    """Starts an API on the billing database: its AI at the fake vendor (the `pricey` model by
    default), the Bot API at the fake Telegram (the bot itself off unless bot_mode says so)."""

    @asynccontextmanager
    async def start(**overrides: object) -> AsyncIterator[RunningApp]:
        values: dict[str, object] = {
            "openai_api_key": "test-key",
            "openai_base_url": fake_llm_server.base_url + "/v1",
            "llm_models": json.dumps([catalogue_entry(PRICEY)]),
            "llm_default_model": PRICEY.id,
            "bot_username": "test_ai_bot",
            "ai_runner_enabled": True,
            "ai_user_replies_per_minute": 1000,
            "ai_group_always_replies_per_minute": 1000,
            "telegram_api_base": fake_telegram_server.base_url,
            "billing_starting_grant_micros": STARTING_GRANT,
        }
        values.update(overrides)
        async with running_app(make_settings(billing_database_url, tmp_dir, **values)) as running:
            yield running
        fake_llm.close()

    return start
