"""The ceiling beside us: the same sends straight from asyncpg, on the same database in the same
run (`bench.raw_client`, in its own process); database round trips of our requests, counted on
the wire (`bench.pg_proxy`); and our send rates as a fraction of the raw one."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
from websockets.asyncio.client import ClientConnection, connect

from bench.client import init_data
from bench.cluster import ROOT, Cluster, ServerProcess
from bench.load import first_name
from bench.measure import Outcome, Row, Setup
from bench.pg_proxy import CountingProxy, counting_proxy

Json = dict[str, Any]

RAW_FORMS = {"eight": "8-statement transaction", "one": "one statement, post_message"}
FRACTION_GOAL_PCT = 50.0
PAGE_QUERY = "?page=1&per_page=50"


async def message_view(database_url: str, chat_id: int) -> Json:
    """The view of the chat's last message as the server stored it in its event, without its id
    and seq: the `p_view` the raw client sends, as large and as nested as the server's."""
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        payload = await connection.fetchval(
            "SELECT payload FROM chat_events WHERE chat_id = $1 AND type = 'new_message' "
            "ORDER BY seq DESC LIMIT 1",
            chat_id,
        )
    finally:
        await connection.close()
    if payload is None:
        raise RuntimeError("no message was sent through the API to copy its view")
    view: Json = json.loads(payload)["message"]
    view.pop("id", None)
    view.pop("seq", None)
    return view


async def raw_sends(
    database_url: str,
    senders: Sequence[tuple[int, int, int]],
    view: Json,
    *,
    connections: int,
    seconds: float,
    warm_up_seconds: float,
) -> Json:
    """`python -m bench.raw_client` on ([user id, telegram id, chat id], ...): both forms."""
    config = {
        "database_url": database_url,
        "senders": [list(sender) for sender in senders],
        "view": view,
        "connections": connections,
        "seconds": seconds,
        "warm_up_seconds": warm_up_seconds,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.raw_client",
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await process.communicate(json.dumps(config).encode())
    if process.returncode != 0:
        raise RuntimeError(f"bench.raw_client failed ({process.returncode}): {stderr[-800:]!r}")
    result: Json = json.loads(stdout)
    return result


def raw_rows(result: Json) -> list[Row]:
    """The raw client's rates and CPU per send, of each form, and their ratios."""
    eight, one = result["eight"], result["one"]
    at = f"{result['connections']} connections, closed loop, own process"
    rows = []
    for form, name in RAW_FORMS.items():
        rows += [
            Row(f"raw asyncpg, {name} ({at})", result[form]["per_second"], "msg/s"),
            Row(f"raw asyncpg, {name}: client CPU per send",
                result[form]["client_cpu_ms_per_send"], "ms"),
            Row(f"raw asyncpg, {name}: latency p99",
                round(result[form]["latency_ms"]["p99"], 2), "ms"),
        ]  # fmt: skip
    rows += [
        Row("raw one statement / 8-statement transaction: rate",
            _ratio(one["per_second"], eight["per_second"]), "x"),
        Row("raw 8-statement transaction / one statement: client CPU per send",
            _ratio(eight["client_cpu_ms_per_send"], one["client_cpu_ms_per_send"]), "x"),
    ]  # fmt: skip
    return rows


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator > 0 else None


# -- round trips, counted -------------------------------------------------------------------------


class Frames:
    """A socket of the orchestrator's own: sends `send_message` and waits for its ack."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, chat_id: int, text: str, client_msg_id: str) -> None:
        frame = {
            "type": "send_message",
            "chat_id": chat_id,
            "text": text,
            "client_msg_id": client_msg_id,
        }
        await self.connection.send(json.dumps(frame))
        while True:
            answer = json.loads(await asyncio.wait_for(self.connection.recv(), 30))
            if answer.get("client_msg_id") == client_msg_id and answer["type"] in ("ack", "error"):
                if answer["type"] == "error":
                    raise RuntimeError(f"send_message answered {answer}")
                return


@dataclass(frozen=True)
class Trips:
    """What one kind of request costs in round trips: the total over `requests`."""

    what: str
    requests: int
    round_trips: int

    @property
    def per_request(self) -> float:
        return round(self.round_trips / self.requests, 2)


async def _counted(
    proxy: CountingProxy, what: str, requests: int, request: Callable[[int], Awaitable[object]]
) -> Trips:
    """`request(n)` for n < requests, one after the other; what reached PostgreSQL meanwhile,
    including what the server did after answering (deliveries) until it settled."""
    before = proxy.trips.count
    for index in range(requests):
        await request(index)
    await asyncio.sleep(0.5)
    return Trips(what, requests, proxy.trips.count - before)


async def count_round_trips(
    cluster: Cluster, setup: Setup, sender: int, chat_id: int, requests: int
) -> list[Trips]:
    """One more API process, configured as the others but talking to PostgreSQL through the
    counting proxy; `sender` (telegram id, a member of `chat_id`) sends over REST and over its
    socket, lists its chats and reads the chat's newest page, each `requests` times after as
    many to warm up (pooled connections, prepared statements, caches). Its AI runner is off:
    it polls for jobs (six round trips a second) whatever the requests; the other processes
    run the AI's jobs."""
    async with counting_proxy(cluster.database.url) as proxy:
        api = ServerProcess(
            "API process (through the counting proxy)",
            [sys.executable, "-m", "webapp_api"],
            {**cluster.api_env, "DATABASE_URL": proxy.url, "AI_RUNNER_ENABLED": "false"},
            cluster.log_dir / "round-trips-api.log",
        )
        await api.start("/health/ready")
        try:
            return await _count_on(api, proxy, setup, sender, chat_id, requests)
        finally:
            await api.stop()


async def _count_on(
    api: ServerProcess, proxy: CountingProxy, setup: Setup, sender: int, chat_id: int, n: int
) -> list[Trips]:
    async def call(method: str, path: str, body: object | None = None) -> None:
        await setup.call_base(api.base_url, sender, method, path, body)

    query = quote(init_data(sender, first_name(sender)))
    async with connect(f"{api.ws_url}/ws?init_data={query}", proxy=None) as connection:
        hello = json.loads(await asyncio.wait_for(connection.recv(), 30))
        if hello.get("type") != "connection_established":
            raise RuntimeError(f"unexpected first frame {hello.get('type')}")
        await connection.send('{"type":"resume","chats":{}}')
        frames = Frames(connection)
        kinds: dict[str, Callable[[str], Callable[[int], Awaitable[object]]]] = {
            "REST send": lambda tag: lambda i: call(
                "POST", f"/api/v1/chats/{chat_id}/messages",
                {"text": f"{tag} REST {i}", "client_msg_id": f"{tag}r{i}"},
            ),
            "socket send": lambda tag: lambda i: frames.send(
                chat_id, f"{tag} socket {i}", f"{tag}s{i}"
            ),
            "GET /api/v1/chats/": lambda tag: lambda i: call("GET", "/api/v1/chats/"),
            "history page": lambda tag: lambda i: call(
                "GET", f"/api/v1/messages/chat/{chat_id}{PAGE_QUERY}"
            ),
        }  # fmt: skip
        for make in kinds.values():
            await _counted(proxy, "warm-up", n, make("rt-warm"))
        return [await _counted(proxy, what, n, make("rt")) for what, make in kinds.items()]


def round_trip_rows(trips: list[Trips], quick: bool) -> list[Row]:
    rows = []
    for counted in trips:
        row = Row(
            f"database round trips per {counted.what} (PostgreSQL, counted over "
            f"{counted.requests})",
            counted.per_request,
            "round trips",
        )
        if counted.what.endswith("send"):
            row.goal = "1"
            row.met = None if quick else counted.per_request <= 1
        rows.append(row)
    return rows


# -- our rates as a fraction of the raw one -------------------------------------------------------


def fraction_rows(ours: Json, raw_one_per_second: float, quick: bool) -> list[Row]:
    """`ours`: {"REST" | "WebSocket send_message": {"steady": msg/s, "saturation": msg/s}}
    (the throughput scenario's details); one row per rate, in % of the raw one-statement rate
    of the same run."""
    rows = []
    for transport, rates in ours.items():
        for kind, label in (("steady", "highest steady rate"), ("saturation", "completed rate")):
            pct = round(rates[kind] / raw_one_per_second * 100, 1) if raw_one_per_second else 0.0
            rows.append(
                Row(
                    f"{transport} {label} / raw one-statement rate, same run",
                    pct,
                    "%",
                    f">= {FRACTION_GOAL_PCT:g} %",
                    None if quick else pct >= FRACTION_GOAL_PCT,
                )
            )
    return rows


def add_same_run_fractions(outcomes: Sequence[Outcome], quick: bool) -> None:
    """The throughput scenario's rates against the ceiling scenario's, when both ran (and
    completed) in this run; else nothing."""
    by_name = {outcome.name: outcome for outcome in outcomes if outcome.error is None}
    throughput, ceiling = by_name.get("throughput"), by_name.get("ceiling")
    if throughput is None or ceiling is None:
        return
    raw = float(ceiling.details["raw"]["one"]["per_second"])
    throughput.rows += fraction_rows(throughput.details["send_rates"], raw, quick)
