"""Scenario 8: a population of polling clients, as Aeon's React client polls (no WebSocket).

Each user polls its chat list every 30 s and its open chat's newest page every 5 s, for one
window, twice: once asking for the whole answer every time, once revalidating with
`If-None-Match` as a browser does by itself. Nothing changes in between, so the second window
is the cost of an unchanged poll. A third window sends the same number of `GET /api/v1/me`
revalidations: the floor of any authenticated request. Measured: CPU of the API processes and
of their PostgreSQL backends per poll, bytes per poll, latency.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field

import aiohttp
import asyncpg

from bench.cluster import Cluster
from bench.context import Context
from bench.measure import Outcome, Row, Setup, bounded
from bench.procinfo import process_cpu_seconds, sample_cpu
from bench.stats import summarize

logger = logging.getLogger("bench")

CHAT_LIST_EVERY = 30.0
OPEN_CHAT_EVERY = 5.0
GROUP_SIZE = 10
PAGE_QUERY = "?page=1&per_page=50"


@dataclass
class Window:
    """The polls of one window and what they cost."""

    label: str
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    body_bytes: int = 0
    api_cpu_s: float = 0.0
    db_cpu_s: float | None = None
    seconds: float = 0.0

    @property
    def polls(self) -> int:
        return len(self.latencies_ms)

    def per_poll_ms(self, seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / max(self.polls, 1) * 1000, 3)

    def as_dict(self) -> dict[str, object]:
        latency = summarize(self.latencies_ms)
        return {
            "label": self.label,
            "polls": self.polls,
            "seconds": round(self.seconds, 1),
            "statuses": self.statuses,
            "bytes_per_poll": round(self.body_bytes / max(self.polls, 1)),
            "api_cpu_ms_per_poll": self.per_poll_ms(self.api_cpu_s),
            "db_cpu_ms_per_poll": self.per_poll_ms(self.db_cpu_s),
            "latency_ms": {"p50": latency.p50, "p99": latency.p99, "max": latency.max},
        }


class Poller:
    """The users' requests, with or without the tags their last answers carried."""

    def __init__(self, cluster: Cluster, setup: Setup, open_chat: dict[int, int]) -> None:
        self.bases = cluster.http_bases
        self.setup = setup
        self.open_chat = open_chat
        self.tags: dict[tuple[int, str], str] = {}
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))

    def path(self, user: int, kind: str) -> str:
        if kind == "list":
            return "/api/v1/chats/"
        if kind == "me":
            return "/api/v1/me"
        return f"/api/v1/messages/chat/{self.open_chat[user]}{PAGE_QUERY}"

    async def poll(self, user: int, kind: str, window: Window, *, conditional: bool) -> None:
        path = self.path(user, kind)
        headers = self.setup.headers(user)
        tag = self.tags.get((user, path))
        if conditional and tag:
            headers["If-None-Match"] = tag
        started = time.perf_counter()
        url = self.bases[user % len(self.bases)] + path
        async with self.session.get(url, headers=headers) as response:
            body = await response.read()
        window.latencies_ms.append((time.perf_counter() - started) * 1000)
        window.statuses[response.status] = window.statuses.get(response.status, 0) + 1
        window.body_bytes += len(body)
        if response.status == 200 and "ETag" in response.headers:
            self.tags[(user, path)] = response.headers["ETag"]

    async def close(self) -> None:
        await self.session.close()


def _schedule(
    users: list[int], seconds: float, seed: int, *, only: str | None = None
) -> list[tuple[float, int, str]]:
    """Every user's polls in the window, each user at its own random phase (`only`: the same
    moments, all asking that instead)."""
    rng = random.Random(seed)
    plan: list[tuple[float, int, str]] = []
    for user in users:
        for kind, every in (("list", CHAT_LIST_EVERY), ("page", OPEN_CHAT_EVERY)):
            moment = rng.uniform(0, every)
            while moment < seconds:
                plan.append((moment, user, only or kind))
                moment += every
    return sorted(plan)


async def _backend_pids(database_url: str) -> list[int]:
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return [int(row["pid"]) for row in rows]


def _cpu_of(pids: list[int]) -> dict[int, float] | None:
    """CPU seconds of the database backends; None when their processes are not visible here."""
    try:
        return {pid: process_cpu_seconds(pid) for pid in pids}
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return None


async def _window(
    ctx: Context,
    poller: Poller,
    users: list[int],
    label: str,
    *,
    conditional: bool,
    only: str | None = None,
) -> Window:
    window = Window(label)
    plan = _schedule(users, ctx.sizes.polling_seconds, seed=7, only=only)
    database_url = ctx.cluster.database.url
    backends_before = _cpu_of(await _backend_pids(database_url))
    api_pids = {f"api{index}": api.pid for index, api in enumerate(ctx.cluster.apis)}
    before = sample_cpu(api_pids)
    started = time.monotonic()
    tasks = []
    for moment, user, kind in plan:
        delay = started + moment - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(poller.poll(user, kind, window, conditional=conditional)))
    await asyncio.gather(*tasks)
    window.seconds = time.monotonic() - started
    logger.info("polling: %s, %d polls in %.1f s", label, window.polls, window.seconds)
    after = sample_cpu(api_pids)
    window.api_cpu_s = sum(after.processes[name] - before.processes[name] for name in api_pids)
    backends_after = _cpu_of(await _backend_pids(database_url))
    if backends_before is not None and backends_after is not None:
        window.db_cpu_s = sum(
            seconds - backends_before.get(pid, 0.0) for pid, seconds in backends_after.items()
        )
    return window


async def _population(ctx: Context) -> tuple[Setup, list[int], dict[int, int]]:
    """Users in groups of ten, each group with a page of history; a user's open chat is its
    group, and its list also holds a private chat with the next user."""
    sizes = ctx.sizes
    users = [ctx.base_id + index for index in range(sizes.polling_users)]
    setup = Setup(ctx.http, ctx.cluster)
    await setup.users(users)
    groups = [users[i : i + GROUP_SIZE] for i in range(0, len(users), GROUP_SIZE)]

    async def make_group(members: list[int]) -> int:
        return await setup.group(members[0], members[1:])

    chat_ids = await bounded(groups, make_group, 8)
    open_chat = {
        user: chat for members, chat in zip(groups, chat_ids, strict=True) for user in members
    }
    await setup.private_chats(list(zip(users[::2], users[1::2], strict=False)))

    async def history(item: tuple[int, int]) -> None:
        members, chat = groups[item[0]], chat_ids[item[0]]
        sender = members[item[1] % len(members)]
        body = {"chat_id": chat, "text": f"message {item[1]} of a polled chat"}
        await setup.call(sender, "POST", "/api/v1/messages/", body, api=sender)

    sends = [(g, n) for g in range(len(groups)) for n in range(sizes.polling_messages)]
    await bounded(sends, history, 16)
    return setup, users, open_chat


CHAT_LIST_GOAL_MS = 2.0


async def chat_list_cost(ctx: Context, setup: Setup) -> Window:
    """The chat list alone: one user with `chat_list_chats` private chats, each with a message,
    asks API process 0 for its whole list (no If-None-Match) `chat_list_requests` times, four at
    a time; that process's CPU per request."""
    sizes = ctx.sizes
    owner = ctx.base_id + 500_000
    others = [owner + 1 + index for index in range(sizes.chat_list_chats)]
    await setup.users([owner, *others])
    chats = await setup.private_chats([(owner, other) for other in others])

    async def send(item: tuple[int, int]) -> None:
        body = {"chat_id": item[1], "text": "the last message of a listed chat"}
        await setup.call(item[0], "POST", "/api/v1/messages/", body, api=item[0])

    await bounded(list(zip(others, chats, strict=True)), send, 16)
    api = ctx.cluster.apis[0]
    window = Window(f"chat list of {sizes.chat_list_chats} chats")
    async with aiohttp.ClientSession() as session:

        async def ask(_: int) -> None:
            started = time.perf_counter()
            url = api.base_url + "/api/v1/chats/"
            async with session.get(url, headers=setup.headers(owner)) as response:
                body = await response.read()
            window.latencies_ms.append((time.perf_counter() - started) * 1000)
            window.statuses[response.status] = window.statuses.get(response.status, 0) + 1
            window.body_bytes += len(body)

        await bounded(range(20), ask, 4)  # warm-up
        window.latencies_ms.clear()
        window.statuses.clear()
        window.body_bytes = 0
        before, started = api.cpu_seconds(), time.monotonic()
        await bounded(range(sizes.chat_list_requests), ask, 4)
        window.api_cpu_s = api.cpu_seconds() - before
        window.seconds = time.monotonic() - started
    return window


async def polling(ctx: Context, outcome: Outcome) -> None:
    sizes = ctx.sizes
    began = time.monotonic()
    setup, users, open_chat = await _population(ctx)
    logger.info("polling: %d users set up in %.0f s", len(users), time.monotonic() - began)
    poller = Poller(ctx.cluster, setup, open_chat)
    try:
        # One round of every poll first: the servers warm up and the clients hold tags.
        warm = Window("warm-up")
        await bounded(
            [(user, kind) for user in users for kind in ("list", "page", "me")],
            lambda item: poller.poll(item[0], item[1], warm, conditional=False),
            64,
        )
        full = await _window(ctx, poller, users, "full answers", conditional=False)
        revalidated = await _window(ctx, poller, users, "If-None-Match", conditional=True)
        # The floor: the same requests as cheap as an authenticated request gets (GET /me's
        # 304 runs no query beyond authentication).
        floor = await _window(ctx, poller, users, "GET /me 304", conditional=True, only="me")
    finally:
        await poller.close()
    chat_list = await chat_list_cost(ctx, setup)
    for window in (full, revalidated, floor, chat_list):
        unexpected = set(window.statuses) - {200, 304}
        if unexpected:
            outcome.problems.append(f"{window.label}: statuses {window.statuses}")
    outcome.details.update(
        {
            "users": len(users),
            "chats_per_user": 2,
            "messages_per_open_chat": sizes.polling_messages,
            "window_seconds": sizes.polling_seconds,
            "windows": [w.as_dict() for w in (full, revalidated, floor, chat_list)],
        }
    )
    at = f"{len(users)} users, {full.polls / sizes.polling_seconds:.0f} polls/s offered"
    not_modified = revalidated.statuses.get(304, 0) / max(revalidated.polls, 1) * 100
    for window, name in ((full, "full answers"), (revalidated, "If-None-Match")):
        outcome.rows += [
            Row(f"API CPU per poll, {name} ({at})", window.per_poll_ms(window.api_cpu_s), "ms"),
            Row(f"database CPU per poll, {name}", window.per_poll_ms(window.db_cpu_s), "ms"),
            Row(
                f"bytes per poll, {name}", round(window.body_bytes / max(window.polls, 1)), "bytes"
            ),
            Row(f"poll latency p99, {name}", round(summarize(window.latencies_ms).p99, 2), "ms"),
        ]
    outcome.rows += [
        Row("polls answered 304 with If-None-Match (nothing changed)", round(not_modified, 1), "%"),
        Row("the floor: API CPU per authenticated GET /me answered 304",
            floor.per_poll_ms(floor.api_cpu_s), "ms"),
        Row("the floor: database CPU per GET /me answered 304",
            floor.per_poll_ms(floor.db_cpu_s), "ms"),
    ]  # fmt: skip
    list_cpu = chat_list.per_poll_ms(chat_list.api_cpu_s) or 0.0
    outcome.rows += [
        Row(f"API CPU per GET /api/v1/chats/ of a user with {sizes.chat_list_chats} chats "
            f"({chat_list.polls} requests, 4 at a time, one process)", list_cpu, "ms",
            f"<= {CHAT_LIST_GOAL_MS:g} ms", ctx.goal(list_cpu <= CHAT_LIST_GOAL_MS)),
        Row(f"GET /api/v1/chats/ of {sizes.chat_list_chats} chats: latency p99, bytes",
            round(summarize(chat_list.latencies_ms).p99, 2),
            f"ms, {chat_list.body_bytes // max(chat_list.polls, 1):,} bytes"),
    ]  # fmt: skip
