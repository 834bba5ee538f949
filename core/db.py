"""Database engine and the two ways to open a session.

- `unit_of_work(sessionmaker, broker)`: commits once on success, rolls back on any error, and
  publishes the events the services staged only after the commit. Every write goes through one.
- `read_session(sessionmaker)`: reads only; it never commits, and a flush in it is a bug that
  raises (a write there would be lost silently, its events with it).

Services take an `AsyncSession` and never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from core.broker import Broker
from core.outbox import discard_rolled_back, discard_staged, has_staged, publish_staged

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(
    database_url: str, *, echo: bool = False, pool_size: int = 10, max_overflow: int = 10
) -> AsyncEngine:
    """An engine; on a server database, at most `pool_size + max_overflow` connections (the
    server's `max_connections` is shared by every process)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(
            url, echo=echo, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow
        )

    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    )
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and write transactions that take the lock up front.

    pysqlite's own transaction handling begins lazily, so two transactions that read and then
    write deadlock instead of waiting for each other. Taking the write lock at BEGIN (IMMEDIATE)
    makes concurrent writers queue on the busy timeout, which is what PostgreSQL's row locks give
    us on the other backend.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # aiosqlite's adapter exposes the stdlib connection's isolation_level.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class UnitOfWorkSession(Session):
    """The sessions of our units of work: any rollback drops the events staged in what it
    rolled back, whoever called it."""


_BEGUN = "begun"


@event.listens_for(UnitOfWorkSession, "after_begin")
def _note_begun(session: Session, _transaction: SessionTransaction, _connection: Any) -> None:
    session.info[_BEGUN] = True


def has_begun(session: AsyncSession) -> bool:
    """Whether the session has used the database yet (a statement, a flush)."""
    return bool(session.info.get(_BEGUN))


@event.listens_for(UnitOfWorkSession, "after_soft_rollback")
def _drop_rolled_back_events(session: Session, transaction: SessionTransaction) -> None:
    discard_rolled_back(session, transaction)


def create_sessionmaker(
    engine: AsyncEngine, *, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """`info` reaches every session (e.g. "media_urls", how message views sign media links)."""
    return async_sessionmaker(
        engine,
        expire_on_commit=False,
        autoflush=False,
        info=info or {},
        sync_session_class=UnitOfWorkSession,
    )


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], broker: Broker
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error. Events the services staged
    are published to the broker after the commit, and dropped with a rollback."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            discard_staged(session)
            await session.rollback()
            raise
        await publish_staged(session, broker)


_READ_ONLY = "read_only"


class ReadOnlySessionError(RuntimeError):
    """Something wrote, or staged an event, in a read-only session."""


@asynccontextmanager
async def read_session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session for reads: rolled back at the end, whatever happened in it.

    On PostgreSQL its statements run in autocommit, without BEGIN and ROLLBACK around them (two
    round trips saved): at READ COMMITTED, PostgreSQL's isolation level and ours, each
    statement of a transaction sees its own snapshot anyway, so a transaction would add
    nothing to reads. SQLite's read transaction is kept (in-process, and a snapshot there)."""
    async with sessionmaker() as session:
        session.info[_READ_ONLY] = True
        if session.get_bind().dialect.name == "postgresql":
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session
        if has_staged(session):
            raise ReadOnlySessionError("an event was staged in a read-only session")


@event.listens_for(UnitOfWorkSession, "before_flush")
def _refuse_flushes_when_read_only(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(_READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise ReadOnlySessionError("a write was flushed in a read-only session")


@event.listens_for(UnitOfWorkSession, "do_orm_execute")
def _refuse_statements_when_read_only(state: ORMExecuteState) -> None:
    if state.session.info.get(_READ_ONLY) and (
        state.is_insert or state.is_update or state.is_delete
    ):
        raise ReadOnlySessionError("a write statement ran in a read-only session")


async def check_database(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure at all means "not ready"
        return False
    return True


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that supports `on_conflict_do_nothing/do_update` on the session's backend."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(table)
    return sqlite_insert(table)
