"""The machinery scenarios share: setting up users and chats over REST, opening sockets in the
load generators, and one measured send phase (send, wait for the deliveries, join, summarize)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from bench.client import HttpClient, init_data, request_json
from bench.cluster import Cluster, Reply, Worker
from bench.load import first_name
from bench.procinfo import cpu_usage, sample_cpu
from bench.stats import Summary, summarize
from core.settings import normalize_database_url
from models import ChatMember

Json = dict[str, Any]
T = TypeVar("T")


@dataclass
class Row:
    """One line of the results table."""

    metric: str
    value: float | None
    unit: str
    goal: str = ""
    met: bool | None = None  # None: information, no goal
    text: str | None = None  # shown instead of the value (e.g. "< 50")

    def as_dict(self) -> Json:
        return {
            "metric": self.metric,
            "value": self.value,
            "text": self.text,
            "unit": self.unit,
            "goal": self.goal,
            "met": self.met,
        }


@dataclass
class Outcome:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    details: Json = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # broken, not slow: lost, dup, errors
    seconds: float = 0.0
    error: str | None = None

    def as_dict(self) -> Json:
        return {
            "name": self.name,
            "title": self.title,
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "problems": self.problems,
            "rows": [row.as_dict() for row in self.rows],
            "details": self.details,
        }


async def bounded(items: Iterable[T], work: Callable[[T], Awaitable[Any]], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> Any:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


class Setup:
    """Users and chats, created over the public API (not measured)."""

    def __init__(self, http: HttpClient, cluster: Cluster) -> None:
        self.http = http
        self.bases = cluster.http_bases
        self.database_url = cluster.database.url
        self.user_ids: dict[int, int] = {}  # telegram id -> user id

    def headers(self, telegram_id: int) -> dict[str, str]:
        return {"X-Telegram-Init-Data": init_data(telegram_id, first_name(telegram_id))}

    async def call(
        self, telegram_id: int, method: str, path: str, body: object | None = None, api: int = 0
    ) -> Any:
        return await self.call_base(
            self.bases[api % len(self.bases)], telegram_id, method, path, body
        )

    async def call_base(
        self, base: str, telegram_id: int, method: str, path: str, body: object | None = None
    ) -> Any:
        """`call` on any API process's base URL."""
        return await request_json(
            self.http, method, base + path, headers=self.headers(telegram_id), body=body
        )

    async def users(self, telegram_ids: Sequence[int]) -> None:
        async def one(telegram_id: int) -> None:
            me = await self.call(telegram_id, "GET", "/api/v1/me", api=telegram_id)
            self.user_ids[telegram_id] = int(me["id"])

        await bounded(telegram_ids, one, 16)

    async def private_chats(self, pairs: Sequence[tuple[int, int]]) -> list[int]:
        async def one(pair: tuple[int, int]) -> int:
            body = {"chat_type": "private", "member_ids": [self.user_ids[pair[1]]]}
            chat = await self.call(pair[0], "POST", "/api/v1/chats", body, api=pair[0])
            return int(chat["id"])

        return await bounded(pairs, one, 16)

    async def group(self, owner: int, members: Sequence[int]) -> int:
        """A group of `owner` and `members`: 200 at creation (the API's limit per request),
        the rest written straight into the database. Through the API, each further member
        would cost a request answering with the whole member list (over a minute for 800)."""
        first, rest = members[:200], members[200:]
        body = {
            "chat_type": "group",
            "title": "Benchmark group",
            "member_ids": [self.user_ids[m] for m in first],
        }
        chat_id = int((await self.call(owner, "POST", "/api/v1/chats", body))["id"])
        if rest:
            engine = create_async_engine(normalize_database_url(self.database_url))
            try:
                async with engine.begin() as connection:
                    await connection.execute(
                        insert(ChatMember),
                        [{"chat_id": chat_id, "user_id": self.user_ids[m]} for m in rest],
                    )
            finally:
                await engine.dispose()
        return chat_id


async def event_log_reads(database_url: str) -> int:
    """How often the servers have read `chat_events` (PostgreSQL's table statistics, which lag
    by about a second). While messages are only sent, the one reader is the hub replaying a
    gap a socket saw (ws/hub.py `replay`); `resume` and `GET /events` read it too. The table
    is partitioned (docs/SCALING.md): its partitions are what is read."""
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        reads = await connection.fetchval(
            "SELECT sum(coalesce(idx_scan, 0) + coalesce(seq_scan, 0)) FROM pg_stat_user_tables "
            "WHERE relid IN (SELECT inhrelid FROM pg_inherits "
            "WHERE inhparent = 'chat_events'::regclass)"
        )
    finally:
        await connection.close()
    return int(reads or 0)


async def broadcast(
    workers: Sequence[Worker], cmd: str, per_worker: Sequence[Json] | None = None, **args: Any
) -> list[Reply]:
    calls = [
        worker.call(cmd, **{**args, **(per_worker[i] if per_worker else {})})
        for i, worker in enumerate(workers)
    ]
    return list(await asyncio.gather(*calls))


async def connect(cluster: Cluster, sockets: dict[int, list[list[int]]]) -> Json:
    """Open sockets: {worker index: [[telegram id, api index], ...]}. Raises when any fails."""
    started = time.monotonic()
    replies = await broadcast(
        cluster.workers,
        "connect",
        [{"users": sockets.get(i, []), "concurrency": 32} for i in range(len(cluster.workers))],
    )
    failed = sum(int(r.result["failed"]) for r in replies)
    if failed:
        errors = [r.result["errors"] for r in replies if r.result["failed"]]
        raise RuntimeError(f"{failed} sockets failed to connect: {errors}")
    return {
        "sockets": sum(int(r.result["connected"]) for r in replies),
        "seconds": round(time.monotonic() - started, 2),
        "handshake_ms_p99": max(float(r.result["handshake_ms"]["p99"]) for r in replies),
    }


async def wait_quiet(cluster: Cluster, quiet_for: float = 1.0, at_most: float = 120.0) -> Json:
    """Wait until no socket has received a frame for `quiet_for` seconds (presence storms after
    connecting settle); returns the frame types received meanwhile."""
    deadline = time.monotonic() + at_most
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        frames = sum(int(r.result["frames"]) for r in await broadcast(cluster.workers, "count"))
        if frames != last:
            last, since = frames, time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            break
        await asyncio.sleep(0.2)
    collected = await broadcast(cluster.workers, "collect")
    types: Counter[str] = Counter()
    for reply in collected:
        types.update(reply.result["frame_types"])
    return dict(types)


@dataclass
class Phase:
    """One measured send phase, joined and summarized."""

    label: str
    transport: str
    offered_rate: float
    count: int = 0
    sent_ok: int = 0
    skipped: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    latency: Summary = field(default_factory=lambda: summarize([]))
    completion: Summary = field(default_factory=lambda: summarize([]))
    response: Summary = field(default_factory=lambda: summarize([]))
    send_lag_p99_ms: float = 0.0
    achieved_rate: float = 0.0
    deliveries_per_s: float = 0.0
    closed_sockets: dict[str, int] = field(default_factory=dict)
    client_gc_pause_max_ms: float = 0.0
    event_log_reads: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # of each process, in the phase
    cpu_wall: float = 0.0  # the seconds those were counted over
    sends_by_api: dict[str, int] = field(default_factory=dict)  # answered ok, by API process
    sends: list[tuple[int, int]] = field(default_factory=list)  # (chat id, API index) of those
    load_cpu_pct: float = 0.0
    seconds: float = 0.0

    @property
    def broken(self) -> list[str]:
        problems = []
        if self.lost:
            problems.append(f"{self.label}: {self.lost} deliveries lost")
        if self.duplicated:
            problems.append(f"{self.label}: {self.duplicated} deliveries duplicated")
        if self.unexpected:
            problems.append(f"{self.label}: {self.unexpected} unexpected deliveries")
        if self.errors:
            problems.append(f"{self.label}: send errors {self.errors}")
        if self.closed_sockets:
            problems.append(f"{self.label}: sockets closed by the server {self.closed_sockets}")
        return problems

    def as_dict(self) -> Json:
        return {
            "label": self.label,
            "transport": self.transport,
            "offered_rate": self.offered_rate,
            "achieved_rate": round(self.achieved_rate, 1),
            "count": self.count,
            "sent_ok": self.sent_ok,
            "skipped_backlog": self.skipped,
            "errors": self.errors,
            "expected_deliveries": self.expected,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unexpected": self.unexpected,
            "latency_ms": self.latency.as_dict(),
            "completion_ms": self.completion.as_dict(),
            "response_ms": self.response.as_dict(),
            "send_lag_p99_ms": round(self.send_lag_p99_ms, 2),
            "deliveries_per_s": round(self.deliveries_per_s, 1),
            "closed_sockets": self.closed_sockets,
            "client_gc_pause_max_ms": self.client_gc_pause_max_ms,
            "event_log_reads": self.event_log_reads,
            "cpu_pct": self.cpu,
            "cpu_seconds": {name: round(value, 3) for name, value in self.cpu_seconds.items()},
            "sends_by_api": self.sends_by_api,
            "load_cpu_pct": self.load_cpu_pct,
            "seconds": round(self.seconds, 2),
        }


async def send_phase(
    cluster: Cluster,
    *,
    label: str,
    transport: str,
    rate: float,
    duration: float,
    plans: dict[int, list[list[int]]],
    members: dict[int, list[int]],
    latency_of_recipients_only: bool,
    max_in_flight: int = 200,
    wait_when_full: bool = False,
    rest_apis: list[int] | None = None,
    drain_timeout: float = 20.0,
) -> Phase:
    """Send at `rate` msg/s in total for `duration` s, split over the workers that have a plan
    ({worker index: [[sender telegram id, chat id], ...]}); `members` ({chat id: [telegram
    id, ...]}) says who must receive each message. Latency is measured from the send call to
    each receiving socket; with `latency_of_recipients_only` the sender's own socket is
    counted for lost/duplicated but not in the latency."""
    workers = [w for w in cluster.workers if plans.get(w.index)]
    phase = Phase(label, transport, rate)
    await broadcast(cluster.workers, "collect")  # forget anything left over
    reads_before = await event_log_reads(cluster.database.url)
    before = sample_cpu(cluster.pids())
    started = time.monotonic()
    start_at_ns = time.time_ns() + 300_000_000
    share = rate / len(workers)
    replies = await asyncio.gather(
        *(
            worker.call(
                "send",
                transport=transport,
                plan=plans[worker.index],
                rate=share,
                duration=duration,
                start_at_ns=start_at_ns,
                prefix=label,
                max_in_flight=max_in_flight,
                wait_when_full=wait_when_full,
                rest_apis=rest_apis,
                give_up_after=60.0,
            )
            for worker in workers
        )
    )
    records: list[list[Any]] = [record for reply in replies for record in reply.result["records"]]
    phase.count = sum(int(reply.result["count"]) for reply in replies)
    phase.skipped = sum(int(reply.result["skipped"]) for reply in replies)
    phase.send_lag_p99_ms = max(float(reply.result["lag_ms"]["p99"]) for reply in replies)
    ok = [record for record in records if record[4] == "ok"]
    phase.sent_ok = len(ok)
    phase.sends_by_api = dict(Counter(f"api{record[6]}" for record in ok))
    phase.sends = [(int(record[1]), int(record[6])) for record in ok]
    phase.errors = dict(Counter(str(record[4]) for record in records if record[4] != "ok"))
    phase.expected = sum(len(members[int(record[1])]) for record in ok)

    # Wait for the deliveries: all expected, or no progress for a while, or the deadline.
    deadline = time.monotonic() + drain_timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        got = sum(int(r.result["deliveries"]) for r in await broadcast(cluster.workers, "count"))
        if got >= phase.expected:
            await asyncio.sleep(0.2)  # a duplicate would arrive about now
            break
        if got != last:
            last, since = got, time.monotonic()
        elif time.monotonic() - since > 5.0:
            break
        await asyncio.sleep(0.05)
    collected = await broadcast(cluster.workers, "collect")
    after = sample_cpu(cluster.pids())
    phase.client_gc_pause_max_ms = max(float(r.result["gc_pause_max_ms"]) for r in collected)
    await asyncio.sleep(1.1)  # backends report their table statistics at most once a second
    phase.event_log_reads = await event_log_reads(cluster.database.url) - reads_before
    phase.seconds = time.monotonic() - started
    phase.cpu = cpu_usage(before, after)
    phase.cpu_wall = after.wall - before.wall
    phase.cpu_seconds = {
        name: seconds - before.processes.get(name, 0.0) for name, seconds in after.processes.items()
    }
    phase.load_cpu_pct = round(
        sum(value for name, value in phase.cpu.items() if name.startswith("load")), 1
    )

    sent = {str(record[0]): record for record in ok}
    failed_ids = {str(record[0]) for record in records if record[4] != "ok"}
    received: Counter[tuple[str, int]] = Counter()
    latencies: list[float] = []
    last_arrival: dict[str, int] = {}
    first_send = min((int(record[3]) for record in ok), default=0)
    last_receive = 0
    for reply in collected:
        for msg_id, telegram_id, received_ns in reply.result["deliveries"]:
            key = (msg_id, int(telegram_id))
            received[key] += 1
            record = sent.get(msg_id)
            if record is None:
                if msg_id not in failed_ids:
                    continue  # not of this phase
                phase.unexpected += 1  # a failed send that was delivered after all
                continue
            if received[key] > 1 or int(telegram_id) not in members[int(record[1])]:
                continue
            last_receive = max(last_receive, received_ns)
            last_arrival[msg_id] = max(last_arrival.get(msg_id, 0), received_ns)
            if latency_of_recipients_only and int(telegram_id) == int(record[2]):
                continue
            latencies.append((received_ns - int(record[3])) / 1e6)
        for _telegram_id, code in reply.result["closed"]:
            phase.closed_sockets[str(code)] = phase.closed_sockets.get(str(code), 0) + 1
    phase.duplicated = sum(count - 1 for count in received.values() if count > 1)
    complete: list[float] = []
    for msg_id, record in sent.items():
        chat_members = members[int(record[1])]
        missing = sum(1 for member in chat_members if (msg_id, member) not in received)
        phase.lost += missing
        phase.delivered += len(chat_members) - missing
        if not missing:
            complete.append((last_arrival[msg_id] - int(record[3])) / 1e6)
    phase.latency = summarize(latencies)
    phase.completion = summarize(complete)
    phase.response = summarize((int(r[5]) - int(r[3])) / 1e6 for r in ok)
    # What the server completed per second: sends answered over the time they took in all.
    last_answer = max((int(record[5]) for record in ok), default=0)
    if len(ok) > 1 and last_answer > first_send:
        phase.achieved_rate = len(ok) / ((last_answer - first_send) / 1e9)
    if last_receive > first_send:
        phase.deliveries_per_s = phase.delivered / ((last_receive - first_send) / 1e9)
    return phase


def split_round_robin(items: Sequence[T], parts: int) -> dict[int, list[T]]:
    out: dict[int, list[T]] = defaultdict(list)
    for index, item in enumerate(items):
        out[index % parts].append(item)
    return dict(out)
