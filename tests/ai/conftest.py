"""The AI participant end to end: a live server whose AI talks, through the official openai and
anthropic SDKs, to the fake LLM vendor. Nothing of ours or of the SDKs is patched.

One app serves the suite (generous limits). A test that needs other settings starts its own
with the `own_app` fixture, on a database of its own: the suite's app runs every reply job of its
database, and would otherwise take some of theirs (with its own settings, and its own sockets).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.settings import Settings
from models import ACTIVE_REPLY_STATUSES, AiReply
from tests.conftest import make_settings
from tests.support.api import RunningApp, running_app, user_fixture
from tests.support.database import database_fixtures, truncate_all
from tests.support.fake_llm import FakeLLM, FakeLLMServer
from tests.support.server import LiveServer, live_server
from webapp_api.app import create_app

BOT_USERNAME = "test_ai_bot"
DEFAULT_MODEL = "gpt-4o-mini"  # of the built-in catalogue
CLAUDE_MODEL = "claude-haiku-4-5"
TINY_MODEL = "tiny-context"
TINY_CONTEXT_WINDOW = 700
TINY_MAX_OUTPUT = 64
TINY_MODELS = json.dumps(
    [
        {
            "id": TINY_MODEL,
            "provider": "openai",
            "vendor_model": "tiny-context-1",
            "display_name": "Tiny context",
            "context_window": TINY_CONTEXT_WINDOW,
            "max_output_tokens": TINY_MAX_OUTPUT,
            "input_price": 1_000_000,
            "output_price": 2_000_000,
        }
    ]
)


def ai_settings(
    database_url: str, tmp_dir: Path, fake: FakeLLMServer, **overrides: object
) -> Settings:
    """Both vendors at the fake, a short stale-after (fast crash recovery), generous limits."""
    values: dict[str, object] = {
        "openai_api_key": "test-key",
        "openai_base_url": fake.base_url + "/v1",
        "anthropic_api_key": "test-key",
        "anthropic_base_url": fake.base_url,
        "llm_default_model": DEFAULT_MODEL,
        "llm_models": TINY_MODELS,
        "bot_username": BOT_USERNAME,
        "ai_reply_stale_after": 1.0,
        "ai_runner_enabled": True,
        "ai_user_replies_per_minute": 1000,
        "ai_group_always_replies_per_minute": 1000,
    }
    values.update(overrides)
    return make_settings(database_url, tmp_dir, **values)


@pytest.fixture(scope="session")
def ai_app(
    database_url: str, tmp_dir: Path, engine: AsyncEngine, fake_llm_server: FakeLLMServer
) -> FastAPI:
    return create_app(ai_settings(database_url, tmp_dir, fake_llm_server))


@pytest.fixture(scope="session")
async def server(ai_app: FastAPI) -> AsyncIterator[LiveServer]:
    """The suite's server, with this app (the suite's `client` talks to it)."""
    async with live_server(ai_app) as running:
        yield running


async def active_replies(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        statement = select(func.count()).where(AiReply.status.in_(ACTIVE_REPLY_STATUSES))
        return int(await session.scalar(statement) or 0)


@pytest.fixture(autouse=True)
async def _replies_settled(
    server: LiveServer,
    fake_llm: FakeLLM,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[None]:
    """No reply job of one test may run on into the next one's (truncated) database."""
    yield
    fake_llm.close()
    async with asyncio.timeout(15):
        while await active_replies(sessionmaker):  # noqa: ASYNC110 (no event to await)
            await asyncio.sleep(0.02)


alice = user_fixture(201, "Alice")
bob = user_fixture(202, "Bob")
carol = user_fixture(203, "Carol")


OwnAppFactory = Callable[..., AbstractAsyncContextManager[RunningApp]]
own_database_url, own_engine = database_fixtures("own_database_url", "own_engine")


@pytest.fixture
async def own_app(
    own_database_url: str, own_engine: AsyncEngine, tmp_dir: Path, fake_llm_server: FakeLLMServer
) -> AsyncIterator[OwnAppFactory]:
    """Starts an app with `ai_settings(**overrides)` on the test's own database."""

    def start(**overrides: object) -> AbstractAsyncContextManager[RunningApp]:
        return running_app(ai_settings(own_database_url, tmp_dir, fake_llm_server, **overrides))

    yield start
    await truncate_all(own_engine)
