"""Two real API processes sharing PostgreSQL and Redis (or a Redis Cluster), for the tests that
cross processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.redis_cluster import LocalRedisCluster
from tests.conftest import TEST_REDIS_URL, TEST_SECRET_KEY
from tests.support.processes import (
    ApiPair,
    Cluster,
    two_api_processes,
    two_api_processes_on_redis_cluster,
)
from tests.support.telegram import TEST_BOT_TOKEN

ClusterFactory = Callable[..., AbstractAsyncContextManager[Cluster]]
PairFactory = Callable[..., AbstractAsyncContextManager[ApiPair]]
ADMIN_TELEGRAM_ID = 900001


def _defaults(database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "BOT_TOKEN": TEST_BOT_TOKEN,
        "ADMIN_TELEGRAM_IDS": str(ADMIN_TELEGRAM_ID),
        # As in the suite's settings: tests send fast from few users.
        "SEND_BURST": "100000",
        "CHAT_CREATE_BURST": "100000",
        "INVITE_BURST": "100000",
        # As in the suite's settings: the processes outlive tables emptied behind their backs.
        "AUTH_CACHE_TTL": "0",
    }


def _cluster(database_url: str, cwd: Path, **env: str) -> AbstractAsyncContextManager[Cluster]:
    assert TEST_REDIS_URL
    return two_api_processes(TEST_REDIS_URL, cwd, **{**_defaults(database_url), **env})


@pytest.fixture
def start_cluster(database_url: str, engine: AsyncEngine, tmp_path: Path) -> ClusterFactory:
    """Starts two processes on the migrated test database (`engine` migrates it and cleans
    up), configured with the test defaults plus the given environment variables."""

    def start(**env: str) -> AbstractAsyncContextManager[Cluster]:
        return _cluster(database_url, tmp_path, **env)

    return start


@pytest.fixture
async def cluster(start_cluster: ClusterFactory) -> AsyncIterator[Cluster]:
    async with start_cluster() as running:
        yield running


@pytest.fixture(scope="module")
async def shared_cluster(
    database_url: str, engine: AsyncEngine, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    """Two processes with the default test configuration, shared by a module's tests (which
    must not depend on what an earlier test left in the processes' memory)."""
    async with _cluster(database_url, tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture
def start_on_redis_cluster(
    database_url: str, engine: AsyncEngine, tmp_path: Path, redis_cluster: LocalRedisCluster
) -> PairFactory:
    """As `start_cluster`, with the two processes on the local Redis Cluster
    (REDIS_CLUSTER_URLS) instead of Redis."""

    def start(**env: str) -> AbstractAsyncContextManager[ApiPair]:
        return two_api_processes_on_redis_cluster(
            redis_cluster.env_value, tmp_path, **{**_defaults(database_url), **env}
        )

    return start
