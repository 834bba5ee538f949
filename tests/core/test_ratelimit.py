from __future__ import annotations

import uuid

import pytest

from core.ratelimit import MemoryRateLimiter, Rate, RedisRateLimiter
from core.redis_client import RedisTarget
from tests.support.server import bind_free_port

FIVE_A_MINUTE_THREE_AT_ONCE = Rate(count=5, period=60.0, burst=3)  # a token every 12 s


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_goes_through_then_the_wait_is_until_a_token_is_back() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    rate = FIVE_A_MINUTE_THREE_AT_ONCE
    assert [await limiter.take("k", rate) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await limiter.take("k", rate) == pytest.approx(12.0)
    clock.now += 11.9
    assert await limiter.take("k", rate) == pytest.approx(0.1)
    clock.now += 0.1
    assert await limiter.take("k", rate) == 0.0
    assert await limiter.take("k", rate) == pytest.approx(12.0)


async def test_a_refused_take_takes_nothing_and_an_idle_bucket_refills_only_to_the_burst() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    rate = FIVE_A_MINUTE_THREE_AT_ONCE
    for _ in range(3):
        await limiter.take("k", rate)
    for _ in range(5):
        assert await limiter.take("k", rate) > 0  # hammering does not push the wait out
    clock.now += 12.0
    assert await limiter.take("k", rate) == 0.0
    clock.now += 3600.0
    assert [await limiter.take("k", rate) for _ in range(4)][-1] > 0  # three, not 300


async def test_a_cost_takes_several_tokens_and_keys_are_separate() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    rate = FIVE_A_MINUTE_THREE_AT_ONCE
    assert await limiter.take("a", rate, cost=2) == 0.0
    assert await limiter.take("a", rate, cost=2) == pytest.approx(12.0)
    assert await limiter.take("a", rate, cost=1) == 0.0
    assert await limiter.take("b", rate, cost=3) == 0.0


async def test_redis_buckets_are_shared_by_every_limiter_of_a_prefix(
    redis_target: RedisTarget,
) -> None:
    prefix = f"test-rate-{uuid.uuid4().hex[:8]}"
    first, second = RedisRateLimiter(redis_target, prefix), RedisRateLimiter(redis_target, prefix)
    elsewhere = RedisRateLimiter(redis_target, f"{prefix}-other")
    rate = FIVE_A_MINUTE_THREE_AT_ONCE
    try:
        assert await first.take("k", rate) == 0.0
        assert await second.take("k", rate, cost=2) == 0.0
        assert 11.0 < await first.take("k", rate) <= 12.0
        assert 11.0 < await second.take("k", rate) <= 12.0
        assert await elsewhere.take("k", rate, cost=3) == 0.0
    finally:
        for limiter in (first, second, elsewhere):
            await limiter.close()


async def test_without_redis_each_process_still_limits_on_its_own() -> None:
    sock = bind_free_port()  # bound, never listening: connections are refused
    port = sock.getsockname()[1]
    limiter = RedisRateLimiter(RedisTarget((f"redis://127.0.0.1:{port}/0",)), "test-rate-down")
    try:
        rate = FIVE_A_MINUTE_THREE_AT_ONCE
        assert [await limiter.take("k", rate) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert await limiter.take("k", rate) > 11.0
    finally:
        await limiter.close()
        sock.close()
