"""Database engine and the two ways to open a session.

- `unit_of_work(sessionmaker, broker)`: commits once on success, rolls back on any error, and
  publishes the events the services staged only after the commit. Every write goes through one.
- `read_session(sessionmaker)`: reads only; it never commits, and a flush in it is a bug that
  raises (a write there would be lost silently, its events with it).

Both turn the database's refusals (no free connection in the pool, the server refusing
connections, a connection lost) into `ServiceUnavailable` with `retry_after`: every front door
renders that error as "try again later" (HTTP 503 with Retry-After, a socket `error` frame).

Services take an `AsyncSession` and never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event, exc, text
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
from core.errors import ServiceUnavailable
from core.outbox import discard_rolled_back, discard_staged, has_staged, publish_staged

SQLITE_BUSY_TIMEOUT_MS = 30_000
_READS_ONLY = "reads_only"  # a connection option: its SQLite transaction takes no write lock
# What a client is told to wait before it tries again when the database refuses.
RETRY_AFTER_SECONDS = 1


def create_engine(
    database_url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 10.0,
    pool_recycle: int = 1800,
) -> AsyncEngine:
    """An engine; on a server database, at most `pool_size + max_overflow` connections (the
    server's `max_connections` is shared by every process), waited for at most `pool_timeout`
    seconds, and replaced after `pool_recycle` seconds.

    No ping per checkout (it costs a round trip on every transaction): a connection that the
    server closed is known closed without asking it (`_replace_closed_connections`), and one
    lost silently is at most `pool_recycle` old; a statement that meets a dead connection
    invalidates the pool, and its request is answered 503 with Retry-After."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        engine = create_async_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_recycle=pool_recycle,
            # The most recently used connection first: a few stay hot (their statements
            # prepared) and the rest idle, instead of every request preparing on the next one.
            pool_use_lifo=True,
        )
        _replace_closed_connections(engine)
        return engine

    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    )
    _configure_sqlite(engine)
    return engine


def _replace_closed_connections(engine: AsyncEngine) -> None:
    """A pooled connection whose server end has gone (a restart, `pg_terminate_backend`, an
    idle timeout) is replaced at checkout, before anything is sent on it: asyncpg already knows
    it is closed, so this costs no round trip. The pool tries once more with a new one."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, _record: Any, proxy: Any) -> None:
        if proxy.driver_connection.is_closed():
            raise exc.DisconnectionError("the server closed this pooled connection")


def database_unavailable(error: BaseException) -> ServiceUnavailable | None:
    """The error as "the database cannot take this now, try again", or None if it is not one:
    the pool had no connection free in time, the server refused the connection (too many
    clients, starting up or shutting down, not listening), the connection was lost, or
    SQLite's write lock stayed taken beyond its busy timeout."""
    refused = isinstance(error, (exc.TimeoutError, ConnectionError))
    if isinstance(error, exc.DBAPIError):
        sqlstate = str(getattr(error.orig, "sqlstate", None) or "")
        refused = (
            error.connection_invalidated
            or sqlstate.startswith(("08", "53", "57P"))
            or "database is locked" in str(error.orig)
        )
    if not refused:
        return None
    return ServiceUnavailable(
        "The database is overloaded; try again shortly",
        code="database_unavailable",
        retry_after=RETRY_AFTER_SECONDS,
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and write transactions that take the lock up front.

    pysqlite's own transaction handling begins lazily, so two transactions that read and then
    write deadlock instead of waiting for each other. Taking the write lock at BEGIN (IMMEDIATE)
    makes concurrent writers queue on the busy timeout, which is what PostgreSQL's row locks give
    us on the other backend. A read session's transaction takes no lock (`_READS_ONLY`): in WAL
    it reads a snapshot beside the writer, also beside its own request's unit of work.
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
        reads_only = connection.get_execution_options().get(_READS_ONLY, False)
        connection.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")


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
        with _refusals_as_unavailable():
            try:
                yield session
                await session.commit()
            except BaseException:
                discard_staged(session)
                await session.rollback()
                raise
        await publish_staged(session, broker)


@contextmanager
def _refusals_as_unavailable() -> Iterator[None]:
    """The database's refusals raised as `ServiceUnavailable` (`database_unavailable`)."""
    try:
        yield
    except Exception as error:
        unavailable = database_unavailable(error)
        if unavailable is not None:
            raise unavailable from error
        raise


_READ_ONLY = "read_only"
_OPTIONED_ENGINES: WeakKeyDictionary[AsyncEngine, dict[str, AsyncEngine]] = WeakKeyDictionary()


def _engine_with(engine: AsyncEngine, name: str, **options: Any) -> AsyncEngine:
    """`engine` with these execution options, on the same pool: made once per engine."""
    made = _OPTIONED_ENGINES.setdefault(engine, {})
    if name not in made:
        made[name] = engine.execution_options(**options)
    return made[name]


def autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """`engine` whose statements commit one by one, with no BEGIN or COMMIT around them."""
    return _engine_with(engine, "autocommit", isolation_level="AUTOCOMMIT")


def _reading(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, AsyncEngine]:
    """The bind of a read session: the sessionmaker's engine with the options of reads (the
    same pool), or nothing to change for a session of a test's connection."""
    engine = sessionmaker.kw.get("bind")
    if not isinstance(engine, AsyncEngine):
        return {}
    if engine.dialect.name == "postgresql":
        return {"bind": autocommit_engine(engine)}
    return {"bind": _engine_with(engine, "reads_only", **{_READS_ONLY: True})}


# The execution option of a statement that writes though it is not an INSERT, UPDATE or DELETE
# (a function that writes): a read-only session refuses it too.
WRITES = "writes"


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
    nothing to reads. On SQLite it is a deferred transaction (a snapshot, and no write lock)."""
    async with sessionmaker(**_reading(sessionmaker)) as session:
        session.info[_READ_ONLY] = True
        with _refusals_as_unavailable():
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
        state.is_insert
        or state.is_update
        or state.is_delete
        or state.execution_options.get(WRITES, False)
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
