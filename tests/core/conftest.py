from __future__ import annotations

import pytest

from bench.redis_cluster import LocalRedisCluster
from core.redis_client import RedisTarget
from tests.conftest import TEST_REDIS_URL


@pytest.fixture(
    params=[
        pytest.param("single", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis_cluster),
    ]
)
def redis_target(request: pytest.FixtureRequest) -> RedisTarget:
    """TEST_REDIS_URL's server, then a local Redis Cluster: the test runs on both."""
    if request.param == "cluster":
        cluster: LocalRedisCluster = request.getfixturevalue("redis_cluster")
        return RedisTarget(tuple(cluster.urls), cluster=True)
    assert TEST_REDIS_URL
    return RedisTarget((TEST_REDIS_URL,))
