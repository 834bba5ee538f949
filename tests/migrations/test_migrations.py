from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from core.db import create_engine
from models import Base
from tests.support.database import (
    TEST_DATABASE_URL,
    alembic_config,
    fresh_database_url,
    run_alembic,
)


def _tables(connection: Connection) -> set[str]:
    """The tables, partitions aside."""
    partitions: set[str] = set()
    if connection.dialect.name == "postgresql":
        found = connection.execute(text("SELECT relname FROM pg_class WHERE relispartition"))
        partitions = set(found.scalars())
    return set(inspect(connection).get_table_names()) - {"alembic_version"} - partitions


def _check(connection: Connection) -> None:
    """Raises when the database differs from the models, as migrations/env.py compares them."""
    command.check(alembic_config(connection))


async def test_upgrade_downgrade_upgrade_on_an_empty_database(tmp_path: Path) -> None:
    async with fresh_database_url(TEST_DATABASE_URL, tmp_path) as url:
        engine = create_engine(url)
        try:
            await run_alembic(engine, "upgrade", "head")
            async with engine.connect() as connection:
                assert await connection.run_sync(_tables) == set(Base.metadata.tables)
            await run_alembic(engine, "downgrade", "base")
            async with engine.connect() as connection:
                assert await connection.run_sync(_tables) == set()
            await run_alembic(engine, "upgrade", "head")
            async with engine.connect() as connection:
                await connection.run_sync(_check)
        finally:
            await engine.dispose()


def test_history_is_linear() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    root = Path(__file__).resolve().parents[2]
    script = ScriptDirectory.from_config(Config(str(root / "alembic.ini")))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1
