"""The phases of a soak and the fault each brings, one after the other:

steady -> socket drops -> redis outage -> process kill -> slow consumer -> recovery

From "socket drops" on, a random client's socket is aborted every few seconds (TCP reset, no
close frame) until the load ends. Each fault phase goes on for a while after its fault ended,
so that what the fault broke shows in its own phase."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Mapping

from bench.cluster import ServerProcess
from bench.redis_cluster import LocalRedisCluster
from bench.soak.clients import SoakClient, SocketLog
from bench.soak.plan import SoakOptions, SoakRedis, Timeline
from bench.soak.verdict import ChatTruth

READY_PATH = "/health/ready"
SLOW_CONSUMER_POLL = 0.2


class Faults:
    def __init__(
        self,
        options: SoakOptions,
        timeline: Timeline,
        redis: SoakRedis,
        apis: list[ServerProcess],
        clients: list[SoakClient],
        slow_consumer: int,
    ) -> None:
        self.options = options
        self.timeline = timeline
        self.redis = redis
        self.apis = apis
        self.clients = clients
        self.slow_consumer = slow_consumer
        self._rng = options.rng("faults")
        self._drops: asyncio.Task[None] | None = None
        self.slow_socket: SocketLog | None = None  # the socket open when it stopped reading
        self._stopped_reading_at = 0.0
        # When (seconds after it stopped reading) and how the server ended its connection.
        self.server_ended: tuple[float, str] | None = None
        self._read_again_at = 0.0

    async def run(self) -> None:
        options = self.options
        started = time.monotonic()
        self.timeline.begin("steady")
        await asyncio.sleep(options.lead)
        self.timeline.begin("socket drops")
        self._drops = asyncio.create_task(self._drop_sockets(options.rng("drops")))
        await asyncio.sleep(options.lead)
        await self._redis_outage()
        await self._process_kill()
        await self._slow_consumer()
        self.timeline.begin("recovery")
        await asyncio.sleep(max(options.tail, options.duration - (time.monotonic() - started)))

    async def stop(self) -> None:
        if self._drops is not None:
            self._drops.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drops

    async def _drop_sockets(self, rng: random.Random) -> None:
        while True:
            await asyncio.sleep(rng.uniform(*self.options.drop_every))
            # A client that is reconnecting, or has stopped reading, is left alone this time;
            # the slow consumer during its whole phase, so that its socket ends the server's way.
            index = rng.randrange(len(self.clients))
            if index != self.slow_consumer or self.timeline.current != "slow consumer":
                self.clients[index].abort()

    async def _redis_outage(self) -> None:
        phase = self.timeline.begin("redis outage")
        redis = self.redis
        if isinstance(redis, LocalRedisCluster):
            # One node down: the cluster refuses every key until it is back and ok again.
            node = self._rng.choice(redis.nodes)
            async with redis.down(node):
                await asyncio.sleep(self.options.redis_outage)
                restarted = time.monotonic()
            phase.notes["node"] = node.address
        else:
            await redis.kill()
            await asyncio.sleep(self.options.redis_outage)
            restarted = time.monotonic()
            await redis.start()
        phase.notes["redis down (s)"] = round(self.options.redis_outage, 1)
        phase.notes["redis restart (s)"] = round(time.monotonic() - restarted, 2)
        await asyncio.sleep(self.options.tail)

    async def _process_kill(self) -> None:
        phase = self.timeline.begin("process kill")
        victim = self._rng.randrange(len(self.apis))
        await self.apis[victim].kill()
        killed = time.monotonic()
        await self.apis[victim].start(READY_PATH)
        phase.notes["killed"] = f"api{victim}"
        phase.notes["back in (s)"] = round(time.monotonic() - killed, 2)
        await asyncio.sleep(self.options.tail)

    async def _slow_consumer(self) -> None:
        phase = self.timeline.begin("slow consumer")
        client = self.clients[self.slow_consumer]
        phase.notes["slow consumer"] = f"user{client.index}"
        await client.connected.wait()
        log = self.slow_socket = client.stop_reading()
        self._stopped_reading_at = time.time()
        until = time.monotonic() + self.options.slow_pause
        while time.monotonic() < until:
            state = client.server_side_state()
            if self.server_ended is None and state not in (None, "established"):
                self.server_ended = (round(time.time() - self._stopped_reading_at, 1), state)
            await asyncio.sleep(SLOW_CONSUMER_POLL)
        self._read_again_at = time.time()
        client.read_again()
        if log is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(log.ended.wait(), self.options.tail)
        await asyncio.sleep(self.options.tail)

    def slow_consumer_summary(
        self, expected_close_codes: tuple[int, ...], truths: Mapping[int, ChatTruth]
    ) -> dict[str, object]:
        """How the slow consumer's socket ended, and how long the server went on sending to it
        after it stopped reading (the commit time of the last event it got)."""
        log = self.slow_socket
        summary: dict[str, object] = {
            "user": self.slow_consumer,
            "expected": list(expected_close_codes),
            "close_code": None if log is None else log.close_code,
            "server_ended_after_s": self.server_ended[0] if self.server_ended else None,
            "server_ended_how": self.server_ended[1] if self.server_ended else None,
        }
        if log is not None:
            read_at = self._read_again_at
            summary["socket"] = log.id
            summary["events_after_reading_again"] = sum(a.at >= read_at for a in log.arrivals)
            last = max(
                (
                    truths[a.chat_id].events[a.seq].at
                    for a in log.arrivals
                    if a.seq in truths[a.chat_id].events
                ),
                default=None,
            )
            if last is not None:
                summary["served_for_s"] = round(last - self._stopped_reading_at, 2)
            if log.closed_at is not None:
                summary["ended_after_reading_again_s"] = round(log.closed_at - read_at, 2)
        return summary
