"""A real local Redis Cluster for the tests: `bench.redis_cluster` starts and stops it, so the
benchmarks and the soak run the very same cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.redis_cluster import LocalRedisCluster, running_redis_cluster


@pytest.fixture(scope="session")
async def redis_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[LocalRedisCluster]:
    """Three primaries on loopback ports, shared by the session (tests keep apart by their
    REDIS_PREFIX): `urls` (`env_value` for REDIS_CLUSTER_URLS), `nodes`, `restart(node)`, and
    `down(node)` to do something while a node is away. Tests that use it are marked
    `redis_cluster`."""
    async with running_redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster
