"""Where this deployment's Redis is, and clients for it: one server (REDIS_URL) or a Redis
Cluster (REDIS_CLUSTER_URLS). Presence and rate limits get their clients here, so that the two
modes differ in one place.

Keys and Redis Cluster: a key's shard is chosen by the hash of its hash tag, the part in braces.
`tagged` wraps each key whole in one tag. Nothing here reads or writes two keys in one command
or script (a rate bucket's script touches its bucket, a presence update its user's hash), so no
two keys need to share a shard, and a tag per key spreads users evenly over the shards. The
braces are still ours, not the caller's: a rate key or a claim is a name callers choose, and
braces inside it would otherwise make Redis hash only that part and pile unrelated keys on one
shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import urlsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

RedisClient: TypeAlias = Redis | RedisCluster

# What a call to Redis raises when Redis cannot answer: callers that degrade without Redis
# catch these, around calls to Redis only. A cluster client that cannot reach any node raises
# RedisClusterException, which is not a RedisError; and while a node dies under concurrent
# commands, redis-py's cluster client writes to a connection it has just torn down, which fails
# with uvloop's RuntimeError ("the handler is closed") or an AttributeError (no writer any more):
# the soak on a cluster met both as 500s before they were counted here.
REDIS_ERRORS = (RedisError, RedisClusterException, OSError, RuntimeError, AttributeError)

CONNECT_TIMEOUT = 2.0
# A cluster client retries a failed command after rediscovering which node serves its slot:
# once is enough to follow a node that restarted. Its default (ten times, with a pause while the
# cluster is down) would hold every request for seconds before the caller's fallback.
CLUSTER_RETRIES = 1


def tagged(prefix: str, kind: str, name: str) -> str:
    """`{<prefix>:<kind>:<name>}`: a key that is its own hash tag (see the module's note)."""
    return f"{{{prefix}:{kind}:{name}}}"


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """One Redis server (`urls` holds its URL) or the nodes of a Redis Cluster, any of which
    tells the client where the others are."""

    urls: tuple[str, ...]
    cluster: bool = False

    def client(self, *, socket_timeout: float) -> RedisClient:
        """A client that waits `socket_timeout` seconds for an answer. One server's client does
        not retry; a cluster's retries as CLUSTER_RETRIES says."""
        if not self.cluster:
            return Redis.from_url(
                self.urls[0], socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=socket_timeout
            )
        # The first URL carries the credentials and TLS of all (the settings check they agree).
        first, *others = self.urls
        return RedisCluster.from_url(
            first,
            startup_nodes=[_node(url) for url in others],
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=socket_timeout,
            retry=Retry(NoBackoff(), retries=CLUSTER_RETRIES),
        )


def _node(url: str) -> ClusterNode:
    parts = urlsplit(url)
    return ClusterNode(parts.hostname or "127.0.0.1", parts.port or 6379)
