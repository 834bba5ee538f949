"""One soak run: a fresh database, a private Redis (or Redis Cluster), two API processes; the
users, their chats and their clients; the load and the faults; then the settling, the truth and
the verdict."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.client import http_client
from bench.cluster import (
    DEFAULT_POSTGRES_URL,
    Cluster,
    ClusterSpec,
    Redis,
    SetupError,
    check_postgres,
    running_cluster,
)
from bench.measure import Setup
from bench.procinfo import machine_cpu_seconds, machine_info
from bench.redis_cluster import running_redis_cluster
from bench.run import background_busy, redis_version
from bench.soak.clients import SoakClient, SocketLog
from bench.soak.faults import Faults
from bench.soak.plan import (
    ChatPlan,
    SoakOptions,
    SoakRedis,
    Timeline,
    chat_plans,
    send_plans,
)
from bench.soak.sends import HttpLedger, Sender
from bench.soak.verdict import Judge, read_truth
from ws.protocol import CLOSE_TOO_SLOW

BASE_TELEGRAM_ID = 7_100_000_000
CONNECT_TIMEOUT = 120.0
SETTLE_TIMEOUT = 60.0
# Two processes of a deployment that shares PostgreSQL's 100 connections with others.
# The README: 4008; or a reset (an abnormal closure, 1006) for a client still not reading when
# the server gives up waiting for the close handshake.
SLOW_CONSUMER_CLOSE_CODES = (CLOSE_TOO_SLOW, 1006)
API_SETTINGS = {"DATABASE_POOL_SIZE": "4", "DATABASE_MAX_OVERFLOW": "4"}

Json = dict[str, Any]


class Soak:
    def __init__(self, options: SoakOptions, out: Path) -> None:
        self.options = options
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.out = out
        self.log_dir = out / "logs" / f"soak-{self.stamp}"
        self.admin_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_POSTGRES_URL
        self.timeline = Timeline()
        self.sockets: list[SocketLog] = []

    async def run(self) -> Json:
        started_at = datetime.now(UTC)
        started = time.monotonic()
        machine: Json = machine_info()
        machine["postgresql"] = await check_postgres(self.admin_url)
        machine["redis"] = redis_version()
        load: Json = {"busy_before_pct": await background_busy()}
        busy, total = machine_cpu_seconds()
        async with (
            self._redis() as redis,
            running_cluster(
                ClusterSpec(apis=2, workers=0),
                workers=0,
                admin_url=self.admin_url,
                redis=redis,
                log_dir=self.log_dir,
                label="soak",
                http_impl="aiohttp",
                ws_send_queue=self.options.ws_send_queue,
                api_settings=API_SETTINGS,
            ) as cluster,
        ):
            load["average_at_start"] = [round(value, 2) for value in os.getloadavg()]
            results = await self._soak(cluster, redis)
        busy_after, total_after = machine_cpu_seconds()
        load["busy_during_pct"] = round((busy_after - busy) / max(total_after - total, 1e-9) * 100)
        load["average_at_end"] = [round(value, 2) for value in os.getloadavg()]
        return {
            "started_at": started_at.isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - started, 1),
            "options": asdict(self.options),
            "machine": machine,
            "load": load,
            "logs": str(self.log_dir),
            **results,
        }

    @asynccontextmanager
    async def _redis(self) -> AsyncIterator[SoakRedis]:
        """A private Redis (or Redis Cluster): the soak kills it."""
        if self.options.redis_cluster:
            async with running_redis_cluster(self.log_dir / "redis-cluster") as nodes:
                yield nodes
            return
        (self.log_dir / "redis").mkdir(parents=True, exist_ok=True)
        redis = Redis(self.log_dir / "redis", None)
        await redis.start()
        try:
            if not redis.private:
                raise SetupError(
                    "the soak kills and restarts its own Redis: put redis-server on PATH"
                )
            yield redis
        finally:
            await redis.stop()

    async def _soak(self, cluster: Cluster, redis: SoakRedis) -> Json:
        options = self.options
        http = http_client("aiohttp", max_connections=64, timeout=15.0)
        ledger = HttpLedger(http, self.timeline)
        self.timeline.begin("setup")
        try:
            telegram_ids = [BASE_TELEGRAM_ID + index for index in range(options.users)]
            plans = chat_plans(options)
            chat_ids = await _create_chats(Setup(http, cluster), telegram_ids, plans)
            clients = self._clients(cluster, telegram_ids, plans, chat_ids, ledger)
            for client in clients:
                client.start()
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await asyncio.gather(*(client.connected.wait() for client in clients))
            slow = options.rng("slow consumer").choice(plans[-options.groups].members)
            faults = Faults(options, self.timeline, redis, cluster.apis, clients, slow)
            sender = Sender(
                ledger, cluster.http_bases, clients, chat_ids, self.timeline, options.seed
            )
            stop = asyncio.Event()
            sends = send_plans(options, plans)
            sending = asyncio.create_task(sender.run(sends, options.rate, stop))
            try:
                await faults.run()
            finally:
                stop.set()
                await sending
                await faults.stop()
            settle = self.timeline.begin("settle")
            await sender.drain()
            behind = await _settle(clients, chat_ids, cluster.database.url)
            settle.notes["clients behind"] = len(behind)
            for client in clients:
                await client.stop()
            truths, stored = await read_truth(
                cluster.database.url,
                ledger,
                cluster.http_bases[0],
                list(zip(chat_ids, plans, strict=True)),
                telegram_ids,
                f"soak-{options.seed}-",
            )
            self.timeline.end()
            records = sender.records
            verdict = Judge(
                self.timeline, truths, stored, records, clients, self.sockets, ledger
            ).judge()
        finally:
            await http.close()
        slow_consumer = faults.slow_consumer_summary(SLOW_CONSUMER_CLOSE_CODES, truths)
        problems = list(verdict.problems)
        if slow_consumer["server_ended_after_s"] is None:
            problems.append(
                "the server did not end the connection of the client that stopped reading "
                f"within its {options.slow_pause:g} s pause"
            )
        if slow_consumer["close_code"] not in SLOW_CONSUMER_CLOSE_CODES:
            problems.append(
                f"the slow consumer's socket ended with {slow_consumer['close_code']}, not one "
                f"of {SLOW_CONSUMER_CLOSE_CODES}"
            )
        problems += [
            f"user{client.index} at seq {client.position[chat]} of chat {chat} "
            f"(last {last}) {SETTLE_TIMEOUT:.0f} s after the load ended"
            for client, chat, last in behind
        ]
        return {
            "passed": not problems,
            "chats": {
                "private": sum(plan.kind == "private" for plan in plans),
                "group": options.groups,
            },
            "phases": [
                {
                    "name": phase.name,
                    "seconds": round(phase.seconds, 1),
                    "counts": dict(verdict.rows[phase.name]),
                    "notes": phase.notes,
                }
                for phase in self.timeline.phases
            ],
            "totals": dict(verdict.totals),
            "problems": problems,
            "anomalies": verdict.anomalies,
            "sockets": {
                **verdict.sockets,
                "failed attempts": sum(client.connect_failures for client in clients),
            },
            "slow_consumer": slow_consumer,
            "sends": [record.as_dict() for record in records],
            "socket_logs": [log.as_dict() for log in self.sockets],
        }

    def _clients(
        self,
        cluster: Cluster,
        telegram_ids: list[int],
        plans: list[ChatPlan],
        chat_ids: list[int],
        ledger: HttpLedger,
    ) -> list[SoakClient]:
        socket_ids = itertools.count(1)
        return [
            SoakClient(
                index,
                telegram_id,
                [chat_ids[plan.index] for plan in plans if index in plan.members],
                [api.ws_url for api in cluster.apis],
                self.options.rng(f"client {index}"),
                socket_ids,
                self.sockets,
                ledger.record,
            )
            for index, telegram_id in enumerate(telegram_ids)
        ]


async def _create_chats(setup: Setup, telegram_ids: list[int], plans: list[ChatPlan]) -> list[int]:
    await setup.users(telegram_ids)
    chat_ids: list[int] = []
    for plan in plans:
        members = [telegram_ids[member] for member in plan.members]
        if plan.kind == "private":
            chat_ids += await setup.private_chats([(members[0], members[1])])
        else:
            chat_ids.append(await setup.group(members[0], members[1:]))
    return chat_ids


async def _settle(
    clients: list[SoakClient], chat_ids: list[int], database_url: str
) -> list[tuple[SoakClient, int, int]]:
    """Wait until every client has every chat's last event; the ones still behind after
    SETTLE_TIMEOUT: (client, chat id, last seq)."""
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await connection.fetch("SELECT id, last_seq FROM chats WHERE id = ANY($1)", chat_ids)
    finally:
        await connection.close()
    last = {row["id"]: row["last_seq"] for row in rows}
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        behind = [
            (client, chat, last[chat])
            for client in clients
            for chat in client.chat_ids
            if client.position[chat] < last[chat]
        ]
        if not behind or time.monotonic() > deadline:
            return behind
        await asyncio.sleep(0.2)
