"""Shared fixtures.

Without TEST_DATABASE_URL / TEST_REDIS_URL the suite runs on a temporary SQLite file and the
in-process broker, and tests marked `postgres` / `redis` are skipped with the reason printed.
With them set, the whole suite runs on a fresh PostgreSQL database (created and dropped here)
and Redis. Tests marked `redis_cluster` start a local Redis Cluster of their own, and are
skipped when redis-server or redis-cli is not on PATH. Tests marked `ffmpeg` (the fake vendor's
speech is Ogg/Opus made with it) are skipped when ffmpeg is not on PATH.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.redis_cluster import missing_binaries
from core.db import create_sessionmaker
from core.settings import AEON_ALIASES, Settings
from tests.support.database import TEST_DATABASE_URL, database_fixtures, truncate_all
from tests.support.server import LiveServer, live_server
from tests.support.telegram import TEST_BOT_TOKEN
from webapp_api.app import create_app

pytest_plugins = [
    "tests.support.fake_llm",
    "tests.support.fake_telegram.server",
    "tests.support.redis_cluster",
]

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
REDIS_CLUSTER_MISSING = missing_binaries()
FFMPEG_MISSING = shutil.which("ffmpeg") is None
TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-for-hs256"


def pytest_report_header() -> list[str]:
    return [
        f"database: {'PostgreSQL' if TEST_DATABASE_URL else 'SQLite (temporary file)'}",
        f"broker: {'Redis' if TEST_REDIS_URL else 'in-process'}",
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres" in item.keywords and not TEST_DATABASE_URL:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set TEST_DATABASE_URL"))
        if "redis" in item.keywords and not TEST_REDIS_URL:
            item.add_marker(pytest.mark.skip(reason="needs Redis: set TEST_REDIS_URL"))
        if "redis_cluster" in item.keywords and REDIS_CLUSTER_MISSING:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"needs {' and '.join(REDIS_CLUSTER_MISSING)} on PATH to start a "
                    "local Redis Cluster"
                )
            )
        if "ffmpeg" in item.keywords and FFMPEG_MISSING:
            item.add_marker(pytest.mark.skip(reason="needs ffmpeg on PATH (apt install ffmpeg)"))


@pytest.fixture(scope="session")
def tmp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("suite")


database_url, engine = database_fixtures("database_url", "engine")


@pytest.fixture(autouse=True)
async def _clean_database(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "engine" in request.fixturenames:
        engine: AsyncEngine = request.getfixturevalue("engine")
        await truncate_all(engine)
    if "app" in request.fixturenames:
        # The rows went behind the services' backs: the suite's app forgets them too.
        app: FastAPI = request.getfixturevalue("app")
        app.state.context.auth.cache.clear()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
async def session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


def make_settings(database_url: str, tmp_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "redis_url": TEST_REDIS_URL,
        # Each app its own Redis namespace: apps of other tests must not hear its events.
        "redis_prefix": f"test-{uuid.uuid4().hex[:12]}",
        "secret_key": TEST_SECRET_KEY,
        "bot_token": TEST_BOT_TOKEN,
        "media_dir": tmp_dir / "media",
        "cors_origins": ["https://miniapp.example"],
        "admin_telegram_ids": frozenset({900001}),
        # The bot's own tests turn it (and its notifications) on against the fake Bot API.
        "bot_mode": "off",
        "notify_interval": 0,
        # Sockets that never send `resume` (most tests' sockets) start receiving soon.
        "ws_resume_grace": 0.2,
        # Only the apps of the AI and bot tests run reply jobs: every app that runs them takes
        # jobs from the whole database.
        "ai_runner_enabled": False,
        # Tests send and invite fast from few users; the limits' own tests set theirs low.
        "send_burst": 100_000,
        "chat_create_burst": 100_000,
        "invite_burst": 100_000,
        # Tests empty the tables between them behind the services' backs, which an app that
        # outlives a test would not hear of: only the suite's own app (below), which forgets
        # at each cleaning, and the auth cache's own tests remember credentials.
        "auth_cache_ttl": 0,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_dir: Path, engine: AsyncEngine) -> Settings:
    return make_settings(database_url, tmp_dir, auth_cache_ttl=60)


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="session")
async def server(app: FastAPI) -> AsyncIterator[LiveServer]:
    async with live_server(app) as running:
        yield running


@pytest.fixture
async def client(server: LiveServer, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        yield client


@pytest.fixture
def no_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Settings read in a clean folder, with none of the developer's variables."""
    for name in list(os.environ):
        if name in Settings.model_fields or name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)
        if name.upper() in AEON_ALIASES:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path
