"""Throwaway databases for tests: a fresh PostgreSQL database or a temporary SQLite file."""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.db import create_engine
from core.settings import normalize_database_url
from models import Base

ROOT = Path(__file__).resolve().parents[2]
# The PostgreSQL server whose fresh databases the suite runs on; SQLite files without it.
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or None


def alembic_config(connection: Connection) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["connection"] = connection
    config.attributes["configure_logger"] = False
    return config


async def run_alembic(engine: AsyncEngine, direction: str, revision: str) -> None:
    def run(connection: Connection) -> None:
        getattr(command, direction)(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


@asynccontextmanager
async def fresh_database_url(server_url: str | None, tmp_dir: Path) -> AsyncIterator[str]:
    """A new empty database: on the PostgreSQL server of `server_url`, else a SQLite file."""
    if server_url is None:
        yield f"sqlite+aiosqlite:///{tmp_dir / f'test-{uuid.uuid4().hex[:8]}.db'}"
        return
    url = make_url(normalize_database_url(server_url))
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def truncate_all(engine: AsyncEngine) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        for name in tables:
            await connection.execute(text(f'DELETE FROM "{name}"'))
        if engine.dialect.name == "postgresql":
            # DELETE and a sequence restart: what TRUNCATE ... RESTART IDENTITY does, for a
            # fraction of its cost on tables this small.
            sequences = await connection.scalars(
                text("SELECT sequence_name FROM information_schema.sequences")
            )
            for sequence in list(sequences):
                await connection.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))


async def migrated_engine(url: str) -> AsyncEngine:
    engine = create_engine(url)
    await run_alembic(engine, "upgrade", "head")
    return engine


def database_fixtures(url_name: str, engine_name: str) -> tuple[Any, Any]:
    """Two session fixtures named `url_name` and `engine_name`: a fresh database of their own
    (dropped at the end) and an engine on it, migrated to head. Every suite whose apps run
    reply jobs needs a database apart: an app runs the jobs of its whole database."""

    async def database_url(tmp_dir: Path) -> AsyncIterator[str]:
        async with fresh_database_url(TEST_DATABASE_URL, tmp_dir) as url:
            yield url

    async def engine(**database: str) -> AsyncIterator[AsyncEngine]:
        migrated = await migrated_engine(database[url_name])
        yield migrated
        await migrated.dispose()

    # pytest passes fixtures by parameter name: this one's is `url_name`.
    engine.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(url_name, inspect.Parameter.KEYWORD_ONLY, annotation=str)]
    )
    return (
        pytest.fixture(database_url, scope="session", name=url_name),
        pytest.fixture(engine, scope="session", name=engine_name),
    )
