"""Rate limits per key: GCRA, a token bucket kept as one timestamp per key.

A key's "theoretical arrival time" (TAT) is when its bucket would be full again. Taking `cost`
tokens moves it `cost * interval` later; the take is refused when that would put it more than
`burst * interval` ahead of now, and the caller learns how long until it would not be.

With Redis, the check and the update are one Lua script on Redis's own clock, so every process
shares each key's bucket (on a Redis Cluster, the script runs on the shard of its one key). If
Redis cannot be reached, each process limits on its own until it can again: limits keep holding
(per process) and requests keep being served.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from core.redis_client import REDIS_ERRORS, RedisClient, RedisTarget, tagged

logger = logging.getLogger(__name__)

MEMORY_KEYS_BEFORE_PRUNING = 10_000
TOLERANCE = 1e-6  # seconds: float rounding must not refuse the last token of a burst


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` tokens every `period` seconds, at most `burst` at once."""

    count: int
    period: float
    burst: int

    @property
    def interval(self) -> float:
        """Seconds for one token to come back."""
        return self.period / self.count


class RateLimiter(ABC):
    @abstractmethod
    async def take(self, key: str, rate: Rate, cost: int = 1) -> float:
        """Take `cost` tokens from the key's bucket: 0.0 when they were there (and are now
        taken); otherwise nothing is taken and the answer is the seconds until they would be."""

    async def close(self) -> None:
        """Release connections."""


class MemoryRateLimiter(RateLimiter):
    """One process's buckets."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}

    async def take(self, key: str, rate: Rate, cost: int = 1) -> float:
        now = self._clock()
        tat = max(self._tat.get(key, now), now)
        new_tat = tat + rate.interval * cost
        wait = new_tat - rate.interval * rate.burst - now
        if wait > TOLERANCE:
            return wait
        self._tat[key] = new_tat
        if len(self._tat) > MEMORY_KEYS_BEFORE_PRUNING:
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        return 0.0


# KEYS[1]: the bucket; ARGV: interval (ms), burst, cost. Returns the ms to wait (0: taken).
_GCRA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval * tonumber(ARGV[3])
local wait = new_tat - interval * tonumber(ARGV[2]) - now
if wait > 0.001 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now))
return 0
"""


class RedisRateLimiter(RateLimiter):
    """Buckets shared by every process, under `{<prefix>:rate:`."""

    def __init__(self, target: RedisTarget, prefix: str) -> None:
        self._redis: RedisClient = target.client(socket_timeout=2)
        self._script = self._redis.register_script(_GCRA)
        self._prefix = prefix
        self._fallback = MemoryRateLimiter()

    async def take(self, key: str, rate: Rate, cost: int = 1) -> float:
        try:
            waited = await self._script(
                keys=[tagged(self._prefix, "rate", key)],
                args=[rate.interval * 1000, rate.burst, cost],
            )
        except REDIS_ERRORS as exc:
            logger.warning("rate limits held per process while Redis is unreachable: %s", exc)
            return await self._fallback.take(key, rate, cost)
        return int(waited) / 1000

    async def close(self) -> None:
        await self._redis.aclose()


def create_rate_limiter(redis: RedisTarget | None, prefix: str = "aimessenger") -> RateLimiter:
    return RedisRateLimiter(redis, prefix) if redis is not None else MemoryRateLimiter()
