"""Service-level tests: the services called through their public functions, on the suite's
backend.

`session` here is a unit of work that never commits: the test runs inside a transaction begun
on one connection, the session joins it through a SAVEPOINT (so a service's own rollback of a
savepoint is real), and the whole transaction is rolled back at the end. Tests of races need
separate connections that commit (`sessionmaker`, from the root conftest), and mark themselves
`postgres`: SQLite's write lock serializes whole transactions, so nothing races there."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.db import UnitOfWorkSession


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
            autoflush=False,
            sync_session_class=UnitOfWorkSession,
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()
