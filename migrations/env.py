"""Alembic environment (async).

The URL comes from the application settings. Tests hand in an open connection through
`config.attributes["connection"]` so that migrations can run inside a running event loop.
"""

from __future__ import annotations

import asyncio
import re
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from core.db import create_engine
from core.settings import get_settings
from migrations.sqlite import POSTGRES_FTS_OBJECTS, SQLITE_FTS_TABLES
from models import Base
from models.base import UTCDateTime

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations describe plain column types, not our Python-side decorators.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


# The partitions of the partitioned tables (migration 0010), and the copies PostgreSQL keeps of
# a foreign key to a partitioned table for each partition: the database's business, not the
# models'.
PARTITION = re.compile(r"(messages|chat_events)_p\d+")


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    return not (
        type_ == "table"
        and name is not None
        and (PARTITION.fullmatch(name) or SQLITE_FTS_TABLES.fullmatch(name))
    )


def for_dialect(dialect: str) -> Any:
    """A model's object declared for other dialects only (`ddl_if`) is not compared here."""

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if reflected and name in POSTGRES_FTS_OBJECTS:
            return False
        if reflected:
            return not (
                type_ == "foreign_key_constraint" and PARTITION.fullmatch(obj.referred_table.name)
            )
        condition = getattr(obj, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect)

    return include_object


def configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        include_name=include_name,
        include_object=for_dialect(connection.dialect.name),
        compare_type=True,
        compare_server_default=False,
    )


def run_migrations(connection: Connection) -> None:
    configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


def main() -> None:
    if context.is_offline_mode():
        context.configure(
            url=get_settings().database_url,
            target_metadata=target_metadata,
            render_item=render_item,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    asyncio.run(run_async_migrations(get_settings().database_url))


main()
