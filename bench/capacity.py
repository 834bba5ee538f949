"""Scenario 11: the capacity model's inputs, measured (docs/SCALING.md).

One cluster of four API processes; three steps in which 1, 2 and then 4 of them hold the sockets
and take the sends (the others sit idle: with routed fan-out they receive nothing). Each step
has its own users, each with one socket, spread round-robin over the step's processes, in
private chats and groups of `GROUP_SIZE`; a fixed number of REST sends, rotated over the step's
processes, at a modest rate.

Every process's `/metrics` is scraped before and after the send phase. Per process the bench
compares what Redis delivered to it with what its sockets needed, computed from what the bench
knows: for each message, one delivery per member with a socket on that process, unless the
message was published there (a local publish never goes through Redis). Beside them, what one
shared channel would have cost (every envelope the other processes published) and what one
channel per chat would (each message once per process holding any of its members).

The measured window holds only the messages: presence settles before it (`wait_quiet`), a
warm-up sends every chat's message through every process once, and the previous step's users
have gone offline (the presence grace) before the step starts; the bench sends no typing.
Presence is measured on its own while the sockets connect.

Also measured, for the model: API CPU per delivered message, resident memory per socket (the
one-process step), and the private redis-server's CPU per message sent to it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bench.cluster import Cluster
from bench.context import Context
from bench.measure import Outcome, Phase, Row, Setup, broadcast, connect, send_phase, wait_quiet
from core.settings import Settings

Json = dict[str, Any]

STEPS = (1, 2, 4)
GROUP_SIZE = 8
PRESENCE_GRACE = float(Settings.model_fields["ws_presence_grace"].default)
RECEIVED = "aimessenger_broker_messages_received_total"
PUBLISHED = "aimessenger_broker_envelopes_published_total"
SENT = "aimessenger_broker_messages_sent_total"
UNROUTED = "aimessenger_broker_messages_unrouted_total"


@dataclass
class Demand:
    """What each process's sockets needed from Redis in a send phase, and what the other ways
    of routing would have cost it."""

    needed: Counter[int] = field(default_factory=Counter)  # (message, member here) pairs
    per_chat: Counter[int] = field(default_factory=Counter)  # messages with a member here
    shared: Counter[int] = field(default_factory=Counter)  # messages published elsewhere
    local: Counter[int] = field(default_factory=Counter)  # deliveries published here


def demand(
    sends: Sequence[tuple[int, int]],
    members: dict[int, list[int]],
    process_of: dict[int, int],
    processes: int,
) -> Demand:
    """`sends`: (chat id, process that published it) of each message; `members`: each chat's
    users; `process_of`: the process each user's socket is on."""
    result = Demand()
    for chat_id, publisher in sends:
        here = Counter(process_of[member] for member in members[chat_id])
        for process in range(processes):
            if process == publisher:
                result.local[process] += here[process]
                continue
            result.shared[process] += 1
            result.needed[process] += here[process]
            result.per_chat[process] += int(here[process] > 0)
    return result


async def scrape(ctx: Context, cluster: Cluster) -> list[dict[str, float]]:
    """Every API process's samples, by name."""
    token = cluster.api_env["METRICS_TOKEN"]
    headers = {"Authorization": f"Bearer {token}"}

    async def one(base: str) -> dict[str, float]:
        status, body = await ctx.http.request("GET", base + "/metrics", headers=headers)
        if status != 200:
            raise RuntimeError(f"GET {base}/metrics: {status} {body[:200]!r}")
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
        }

    return list(await asyncio.gather(*(one(base) for base in cluster.http_bases)))


def _diff(before: list[dict[str, float]], after: list[dict[str, float]], name: str) -> list[int]:
    return [round(a[name] - b[name]) for b, a in zip(before, after, strict=True)]


async def redis_cpu_seconds(url: str) -> float:
    client = Redis.from_url(url)
    try:
        info = await client.info("cpu")
    finally:
        await client.aclose()
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def _chats(setup: Setup, ids: list[int]) -> tuple[list[list[int]], dict[int, list[int]]]:
    """Private chats of neighbours and groups of `GROUP_SIZE`; returns the send plan (private
    and group messages alternating, from each member in turn) and each chat's members."""
    pairs = [(ids[i], ids[i + 1]) for i in range(0, len(ids) - 1, 2)]
    privates = await setup.private_chats(pairs)
    groups = [ids[i : i + GROUP_SIZE] for i in range(0, len(ids) - GROUP_SIZE + 1, GROUP_SIZE)]
    group_ids = [await setup.group(group[0], group[1:]) for group in groups]
    members: dict[int, list[int]] = dict(zip(privates, map(list, pairs), strict=True))
    members.update(zip(group_ids, groups, strict=True))
    # Senders alternate between the members.
    private_plan = [
        [pair[n % 2], chat] for n, (chat, pair) in enumerate(zip(privates, pairs, strict=True))
    ]
    group_plan = [[members[chat][n % GROUP_SIZE], chat] for n, chat in enumerate(group_ids)]
    plan = [
        item
        for n in range(max(len(private_plan), len(group_plan)))
        for item in (private_plan[n % len(private_plan)], group_plan[n % len(group_plan)])
    ]
    # Sends rotate over the processes by their index: an odd plan lets every chat be sent to
    # through each of them in turn, instead of one chat always through the same one.
    return (plan + plan[:1] if len(plan) % 2 == 0 else plan), members


@dataclass(frozen=True)
class IdleRates:
    """CPU seconds per second that the processes holding sockets (together) and Redis spend
    with the sockets open and nothing sent."""

    api: float
    redis: float


async def _idle_cpu_rates(cluster: Cluster, processes: int, seconds: float = 2.0) -> IdleRates:
    apis = cluster.apis[:processes]
    redis_url = cluster.api_env["REDIS_URL"]
    api_before, redis_before = (
        sum(a.cpu_seconds() for a in apis),
        await redis_cpu_seconds(redis_url),
    )
    started = time.monotonic()
    await asyncio.sleep(seconds)
    api_after, redis_after = sum(a.cpu_seconds() for a in apis), await redis_cpu_seconds(redis_url)
    wall = time.monotonic() - started
    return IdleRates((api_after - api_before) / wall, (redis_after - redis_before) / wall)


@dataclass
class Step:
    processes: int
    sockets: int
    warm_up: Phase
    phase: Phase  # measured
    demand: Demand
    received: list[int]
    unrouted: list[int]
    published: list[int]
    sent: list[int]
    # Of the processes holding sockets and of Redis in the measured phase, less what they spend
    # idle over the same time (timers, pings, pollers).
    api_cpu_s: float
    redis_cpu_s: float
    idle: IdleRates
    presence_received: list[int]
    presence_frames: int
    rss_kib_per_socket: list[float]

    def as_dict(self) -> Json:
        return {
            "processes": self.processes,
            "sockets": self.sockets,
            "sends": self.phase.sent_ok,
            "deliveries": self.phase.delivered,
            "received": self.received,
            "needed": [self.demand.needed[p] for p in range(len(self.received))],
            "per_chat_channels": [self.demand.per_chat[p] for p in range(len(self.received))],
            "shared_channel": [self.demand.shared[p] for p in range(len(self.received))],
            "local_deliveries": [self.demand.local[p] for p in range(len(self.received))],
            "unrouted": self.unrouted,
            "published": self.published,
            "sent_to_redis": self.sent,
            "api_cpu_s": round(self.api_cpu_s, 3),
            "redis_cpu_s": round(self.redis_cpu_s, 3),
            "idle_cpu_per_s": {"api": round(self.idle.api, 4), "redis": round(self.idle.redis, 4)},
            "presence_received": self.presence_received,
            "presence_frames": self.presence_frames,
            "rss_kib_per_socket": self.rss_kib_per_socket,
            "warm_up": self.warm_up.as_dict(),
            "phase": self.phase.as_dict(),
        }


async def _step(ctx: Context, processes: int, base_id: int, offline_at: float) -> Step:
    cluster, sizes = ctx.cluster, ctx.sizes
    ids = [base_id + index for index in range(sizes.capacity_users)]
    setup = Setup(ctx.http, cluster)
    await setup.users(ids)
    plan, members = await _chats(setup, ids)
    # The previous step's users go offline a presence grace after their sockets closed: their
    # announcements must not fall in this step's windows.
    await asyncio.sleep(max(0.0, offline_at + PRESENCE_GRACE + 0.5 - time.monotonic()))
    process_of = {telegram_id: index % processes for index, telegram_id in enumerate(ids)}
    sockets: dict[int, list[list[int]]] = {}
    for index, telegram_id in enumerate(ids):
        sockets.setdefault(index % ctx.workers, []).append([telegram_id, process_of[telegram_id]])
    rss_before = [api.rss_kib() for api in cluster.apis]
    before_connect = await scrape(ctx, cluster)
    await connect(cluster, sockets)
    frames = await wait_quiet(cluster, quiet_for=1.0)
    after_connect = await scrape(ctx, cluster)
    rss_after = [api.rss_kib() for api in cluster.apis]
    held = Counter(process_of.values())
    rss_per_socket = [
        round((rss_after[p] - rss_before[p]) / held[p], 1) for p in range(processes) if held[p]
    ]
    # Before the warm-up: its HTTP connections are then idle for less than the server's
    # keep-alive timeout (5 s) before the measured sends reuse them.
    idle = await _idle_cpu_rates(cluster, processes)
    # Warm-up: every chat through every process once, so that each process has seen each
    # sender (its authentication cache) and each socket each chat (its first event is held for
    # the gap grace) before the measured window.
    warm = await send_phase(
        cluster,
        label=f"W{processes}",
        transport="rest",
        rate=2 * sizes.capacity_rate,
        duration=len(plan) * processes / (2 * sizes.capacity_rate),
        plans={0: plan},
        members=members,
        latency_of_recipients_only=True,
        rest_apis=list(range(processes)),
    )
    start = await scrape(ctx, cluster)
    redis_before = await redis_cpu_seconds(cluster.api_env["REDIS_URL"])
    redis_started = time.monotonic()
    phase = await send_phase(
        cluster,
        label=f"C{processes}",
        transport="rest",
        rate=sizes.capacity_rate,
        duration=sizes.capacity_messages / sizes.capacity_rate,
        plans={0: plan},
        members=members,
        latency_of_recipients_only=True,
        rest_apis=list(range(processes)),
    )
    after = await scrape(ctx, cluster)
    redis_cpu = await redis_cpu_seconds(cluster.api_env["REDIS_URL"]) - redis_before
    redis_wall = time.monotonic() - redis_started
    await broadcast(cluster.workers, "disconnect")
    active = {f"api{p}" for p in range(processes)}
    api_cpu = sum(s for name, s in phase.cpu_seconds.items() if name in active)
    return Step(
        processes=processes,
        warm_up=warm,
        sockets=len(ids),
        phase=phase,
        demand=demand(phase.sends, members, process_of, len(cluster.apis)),
        received=_diff(start, after, RECEIVED),
        unrouted=_diff(start, after, UNROUTED),
        published=_diff(start, after, PUBLISHED),
        sent=_diff(start, after, SENT),
        api_cpu_s=api_cpu - idle.api * phase.cpu_wall,
        redis_cpu_s=redis_cpu - idle.redis * redis_wall,
        idle=idle,
        presence_received=_diff(before_connect, after_connect, RECEIVED),
        presence_frames=int(frames.get("user_status", 0)),
        rss_kib_per_socket=rss_per_socket,
    )


def _rows(step: Step) -> list[Row]:
    k = step.processes
    used = range(k)
    needed = [step.demand.needed[p] for p in used]
    received = step.received[:k]
    at = f"{k} process{'es' if k > 1 else ''}"

    def per_process(values: list[int]) -> str:
        return " / ".join(f"{value:,}" for value in values)

    if k == 1:
        rows = [Row(f"{at}: Redis messages received", sum(received), "(nothing crosses)")]
    else:
        ratio = sum(received) / max(sum(needed), 1)
        shared = [step.demand.shared[p] for p in used]
        per_chat = [step.demand.per_chat[p] for p in used]
        rows = [
            Row(
                f"{at}: Redis messages received / needed",
                round(ratio, 2),
                f"(per process: received {per_process(received)}; needed {per_process(needed)})",
                "≈ 1",
                0.9 <= ratio <= 1.1,
            ),
            Row(
                f"{at}: one shared channel / needed",
                round(sum(shared) / max(sum(needed), 1), 2),
                f"(per process {per_process(shared)})",
            ),
            Row(
                f"{at}: one channel per chat / needed",
                round(sum(per_chat) / max(sum(needed), 1), 2),
                f"(per process {per_process(per_chat)})",
            ),
        ]
    sends, deliveries = step.phase.sent_ok, step.phase.delivered
    rows += [
        Row(
            f"{at}: API CPU per send ({sends} sends, {deliveries:,} deliveries)",
            round(step.api_cpu_s / max(sends, 1) * 1000, 3),
            f"ms ({step.api_cpu_s / max(deliveries, 1) * 1000:.3f} ms per delivery)",
        ),
        Row(
            f"{at}: Redis CPU per send ({sum(step.sent):,} messages sent to Redis)",
            round(step.redis_cpu_s / max(sends, 1) * 1e6),
            f"µs ({step.redis_cpu_s / max(sum(step.sent), 1) * 1e6:.1f} µs per message)",
        ),
    ]
    idle = step.received[k:]
    if idle:
        rows.append(Row(f"{at}: received by the {len(idle)} idle processes", sum(idle), "msgs"))
    rows.append(
        Row(
            f"{at}: presence while {step.sockets} sockets connect: received from Redis",
            sum(step.presence_received),
            f"msgs ({step.presence_frames:,} user_status frames at the clients)",
        )
    )
    return rows


async def capacity(ctx: Context, outcome: Outcome) -> None:
    steps: list[Step] = []
    offline_at = 0.0
    for index, processes in enumerate(STEPS):
        if processes > len(ctx.cluster.apis):
            raise RuntimeError(f"the capacity scenario needs {processes} API processes")
        step = await _step(ctx, processes, ctx.base_id + index * 100_000, offline_at)
        offline_at = time.monotonic()
        outcome.problems.extend([*step.warm_up.broken, *step.phase.broken])
        steps.append(step)
        outcome.rows += _rows(step)
    one = steps[0]
    outcome.rows.append(
        Row(
            f"resident memory per socket ({one.sockets} sockets on one process)",
            one.rss_kib_per_socket[0],
            "KiB",
        )
    )
    outcome.details.update(
        {
            "users_per_step": ctx.sizes.capacity_users,
            "group_size": GROUP_SIZE,
            "steps": [step.as_dict() for step in steps],
        }
    )
