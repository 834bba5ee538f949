"""How many PostgreSQL connections one API process may hold: every process of a deployment
counts against the server's `max_connections`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from tests.conftest import make_settings
from webapp_api.context import AppContext


@pytest.mark.postgres
async def test_an_api_process_pools_connections_as_configured(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, database_pool_size=2, database_max_overflow=1)
    context = await AppContext.open(settings)
    try:
        pool = context.engine.pool
        assert isinstance(pool, AsyncAdaptedQueuePool)
        assert (pool.size(), pool._max_overflow) == (2, 1)
        async with context.engine.connect(), context.engine.connect(), context.engine.connect():
            assert pool.checkedout() == 3
    finally:
        await context.close()
