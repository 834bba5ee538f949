"""The eleven scenarios of the benchmark, and their sizes (full and quick)."""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench.capacity import capacity
from bench.ceiling import (
    count_round_trips,
    message_view,
    raw_rows,
    raw_sends,
    round_trip_rows,
)
from bench.client import BENCH_BOT_TOKEN, init_data, request_json
from bench.cluster import ClusterSpec, ServerProcess
from bench.context import Context, Sizes
from bench.load import first_name
from bench.measure import (
    Outcome,
    Phase,
    Row,
    Setup,
    broadcast,
    connect,
    send_phase,
    split_round_robin,
    wait_quiet,
)
from bench.polling import polling
from bench.procinfo import cpu_usage, sample_cpu

Json = dict[str, Any]


Scenario = Callable[[Context, Outcome], Awaitable[None]]


@dataclass(frozen=True)
class Definition:
    name: str
    title: str
    run: Scenario | None  # None: runs without servers
    spec: ClusterSpec = field(default_factory=ClusterSpec)


def _ms(value: float) -> float:
    return round(value, 2)


def _phase_problems(outcome: Outcome, phase: Phase) -> None:
    outcome.problems.extend(phase.broken)


async def _warm_up(
    ctx: Context,
    outcome: Outcome,
    plans: dict[int, list[list[int]]],
    members: dict[int, list[int]],
    transports: tuple[str, ...] = ("rest",),
    rate: float = 20.0,
) -> None:
    """A few seconds at a low rate before measuring: connection pools, prepared statements and
    compiled-query caches of a server that has been running a while are warm, and every chat
    has had an event on every socket (a socket holds a chat's first event for the gap grace,
    `WS_GAP_GRACE`, in case an earlier one is late: not what the measured phases are about)."""
    warm = []
    chats = sum(len(plan) for plan in plans.values())
    for transport in transports:
        phase = await send_phase(
            ctx.cluster,
            label=f"W{transport}",
            transport=transport,
            rate=rate,
            duration=max(1.0 if ctx.sizes.quick else 3.0, 1.2 * chats / rate),
            plans=plans,
            members=members,
            latency_of_recipients_only=True,
        )
        _phase_problems(outcome, phase)
        warm.append(phase.as_dict())
    outcome.details["warm_up"] = warm


# -- 1. send-to-deliver latency -------------------------------------------------------------------


async def _pairs(
    ctx: Context, users: int, setup: Setup | None = None
) -> tuple[list[tuple[int, int]], list[int]]:
    """`users` users in private chats of two; returns the pairs and their chat ids."""
    ids = [ctx.base_id + index for index in range(users)]
    setup = setup or Setup(ctx.http, ctx.cluster)
    await setup.users(ids)
    pairs = [(ids[index], ids[index + 1]) for index in range(0, len(ids) - 1, 2)]
    return pairs, await setup.private_chats(pairs)


async def _connect_pairs(ctx: Context, pairs: list[tuple[int, int]]) -> Json:
    """Both members connected, in the same load worker; the first on API 0, the second on the
    last API, so that half of the deliveries cross processes through Redis."""
    last_api = len(ctx.cluster.apis) - 1
    sockets: dict[int, list[list[int]]] = {}
    for index, (a, b) in enumerate(pairs):
        sockets.setdefault(index % ctx.workers, []).extend([[a, 0], [b, last_api]])
    connected = await connect(ctx.cluster, sockets)
    connected["frames_while_connecting"] = await wait_quiet(ctx.cluster)
    return connected


def _pair_plans(
    pairs: list[tuple[int, int]], chats: list[int], workers: int
) -> tuple[dict[int, list[list[int]]], dict[int, list[int]]]:
    plans: dict[int, list[list[int]]] = {}
    for worker, indexes in split_round_robin(range(len(pairs)), workers).items():
        firsts = [[pairs[i][0], chats[i]] for i in indexes]
        seconds = [[pairs[i][1], chats[i]] for i in indexes]
        plans[worker] = firsts + seconds
    members = {chat: list(pair) for pair, chat in zip(pairs, chats, strict=True)}
    return plans, members


async def latency(ctx: Context, outcome: Outcome) -> None:
    sizes = ctx.sizes
    pairs, chats = await _pairs(ctx, sizes.latency_users)
    outcome.details["users"] = len(pairs) * 2
    outcome.details["chats"] = len(chats)
    outcome.details["connect"] = await _connect_pairs(ctx, pairs)
    plans, members = _pair_plans(pairs, chats, ctx.workers)
    await _warm_up(ctx, outcome, plans, members)
    phases = []
    for rate in sizes.latency_rates:
        phase = await send_phase(
            ctx.cluster,
            label=f"L{rate:g}",
            transport="rest",
            rate=rate,
            duration=sizes.latency_seconds,
            plans=plans,
            members=members,
            latency_of_recipients_only=True,
        )
        phases.append(phase.as_dict())
        _phase_problems(outcome, phase)
        at = f"@{rate:g}/s"
        for name in ("p50", "p95", "p99", "max"):
            row = Row(f"latency {name} {at}", _ms(getattr(phase.latency, name)), "ms")
            if name == "p99" and rate == 500:
                row.goal = "<= 30 ms"
                row.met = ctx.goal(phase.latency.p99 <= 30)
            outcome.rows.append(row)
        outcome.rows.append(Row(f"completed rate {at}", round(phase.achieved_rate, 1), "msg/s"))
        outcome.rows.append(
            Row(
                f"lost / duplicated {at}",
                phase.lost + phase.duplicated,
                "deliveries",
                "0",
                phase.lost + phase.duplicated == 0,
            )
        )
        if phase.skipped:
            outcome.rows.append(Row(f"sends skipped (backlog) {at}", phase.skipped, "msgs"))
    outcome.details["phases"] = phases
    await broadcast(ctx.cluster.workers, "disconnect")


# -- 2. group fan-out -----------------------------------------------------------------------------


async def fanout(ctx: Context, outcome: Outcome) -> None:
    sizes = ctx.sizes
    ids = [ctx.base_id + index for index in range(sizes.fanout_members)]
    setup = Setup(ctx.http, ctx.cluster)
    began = time.monotonic()
    await setup.users(ids)
    chat_id = await setup.group(ids[0], ids[1:])
    outcome.details["setup_seconds"] = round(time.monotonic() - began, 1)
    apis = len(ctx.cluster.apis)
    sockets: dict[int, list[list[int]]] = {}
    for index, telegram_id in enumerate(ids):
        sockets.setdefault(index % ctx.workers, []).append([telegram_id, index % apis])
    before = sample_cpu(ctx.cluster.pids())
    connected = await connect(ctx.cluster, sockets)
    connected["frames_while_connecting"] = await wait_quiet(ctx.cluster, quiet_for=1.5)
    connected["seconds_until_quiet"] = round(time.monotonic() - before.wall, 1)
    connected["cpu_pct"] = cpu_usage(before, sample_cpu(ctx.cluster.pids()))
    outcome.details["connect"] = connected
    statuses = connected["frames_while_connecting"].get("user_status", 0)
    outcome.rows.append(Row("user_status frames while members connect", statuses, "frames"))
    outcome.rows.append(
        Row("time until connected and quiet", connected["seconds_until_quiet"], "s")
    )
    members = {chat_id: ids}
    plans = {0: [[ids[0], chat_id]]}
    await _warm_up(ctx, outcome, plans, members, rate=2.0)
    paced = await send_phase(
        ctx.cluster,
        label="Fpaced",
        transport="rest",
        rate=sizes.fanout_rate,
        duration=sizes.fanout_messages / sizes.fanout_rate,
        plans=plans,
        members=members,
        latency_of_recipients_only=False,
        drain_timeout=60.0,
    )
    burst = await send_phase(
        ctx.cluster,
        label="Fburst",
        transport="rest",
        rate=1000.0,
        duration=sizes.fanout_messages / 1000.0,
        plans=plans,
        members=members,
        latency_of_recipients_only=False,
        max_in_flight=32,
        wait_when_full=True,
        drain_timeout=120.0,
    )
    for phase in (paced, burst):
        _phase_problems(outcome, phase)
    outcome.details["phases"] = [paced.as_dict(), burst.as_dict()]
    at = f"{sizes.fanout_messages} msgs @{sizes.fanout_rate:g}/s"
    for name in ("p50", "p99", "max"):
        row = Row(f"all members have it, {name} ({at})", _ms(getattr(paced.completion, name)), "ms")
        if name == "p99":
            row.goal = "<= 100 ms"
            row.met = ctx.goal(paced.completion.p99 <= 100)
        outcome.rows.append(row)
    outcome.rows.append(Row(f"per-socket delivery p99 ({at})", _ms(paced.latency.p99), "ms"))
    outcome.rows.append(
        Row(
            f"deliveries/s, {sizes.fanout_messages} msgs sent back to back",
            round(burst.deliveries_per_s),
            "deliveries/s",
        )
    )
    outcome.rows.append(
        Row("all members have it, p99 (back to back)", _ms(burst.completion.p99), "ms")
    )
    outcome.rows.append(
        Row(
            "event log reads by the servers while sending (gap replays, approx.)",
            paced.event_log_reads + burst.event_log_reads,
            "reads",
        )
    )
    lost = paced.lost + paced.duplicated + burst.lost + burst.duplicated
    outcome.rows.append(Row("lost / duplicated", lost, "deliveries", "0", lost == 0))
    await broadcast(ctx.cluster.workers, "disconnect")


STEADY_RATE_GOAL = 1000.0
API_CPU_PER_SEND_GOAL_MS = 1.0

# -- 3. throughput --------------------------------------------------------------------------------


def _passes(phase: Phase) -> bool:
    return (
        phase.latency.p99 < 100
        and not phase.broken
        and phase.skipped == 0
        and phase.achieved_rate >= 0.95 * phase.offered_rate
    )


def _cpu_per_send_rows(phase: Json, name: str, ctx: Context) -> list[Row]:
    """API CPU seconds in a send phase over the sends each API process answered."""
    rows = []
    for api, sends in sorted(phase["sends_by_api"].items()):
        per_send = phase["cpu_seconds"][api] / sends * 1000
        rows.append(
            Row(
                f"API CPU per send, {name}, {api} ({sends} sends at "
                f"{phase['offered_rate']:g}/s offered)",
                round(per_send, 3),
                "ms",
                f"<= {API_CPU_PER_SEND_GOAL_MS:g} ms",
                ctx.goal(per_send <= API_CPU_PER_SEND_GOAL_MS),
            )
        )
    return rows


async def throughput(ctx: Context, outcome: Outcome) -> None:
    sizes = ctx.sizes
    pairs, chats = await _pairs(ctx, sizes.throughput_users)
    outcome.details["connect"] = await _connect_pairs(ctx, pairs)
    plans, members = _pair_plans(pairs, chats, ctx.workers)
    await _warm_up(ctx, outcome, plans, members, ("rest", "ws"))
    ramps: dict[str, list[Json]] = {}
    send_rates: dict[str, Json] = {}
    for transport in ("rest", "ws"):
        best = 0.0
        ramps[transport] = []
        for rate in sizes.throughput_rates:
            phase = await send_phase(
                ctx.cluster,
                label=f"T{transport}{rate:g}",
                transport=transport,
                rate=rate,
                duration=sizes.throughput_seconds,
                plans=plans,
                members=members,
                latency_of_recipients_only=True,
                max_in_flight=max(64, int(rate / ctx.workers * 0.5)),
            )
            passed = _passes(phase)
            ramps[transport].append({**phase.as_dict(), "passed": passed})
            _phase_problems(outcome, phase)
            if not passed:
                break
            best = rate
        name = "REST" if transport == "rest" else "WebSocket send_message"
        outcome.rows.append(
            Row(
                f"highest steady rate with p99 < 100 ms, {name}",
                best,
                "msg/s",
                f">= {STEADY_RATE_GOAL:g} msg/s",
                ctx.goal(best >= STEADY_RATE_GOAL),
                text=None if best else f"< {sizes.throughput_rates[0]:g}",
            )
        )
        last = ramps[transport][-1]
        outcome.rows.append(
            Row(
                f"{name} at {last['offered_rate']:g}/s offered: completed, p99",
                last["achieved_rate"],
                f"msg/s, p99 {last['latency_ms']['p99']} ms",
            )
        )
        saturation = max(float(ramp["achieved_rate"]) for ramp in ramps[transport])
        send_rates[name] = {"steady": best, "saturation": saturation}
        # The steadiest busy phase: the highest rate that passed (else the first one).
        passing = [ramp for ramp in ramps[transport] if ramp["passed"]]
        steady = passing[-1] if passing else ramps[transport][0]
        outcome.rows += _cpu_per_send_rows(steady, name, ctx)
    outcome.details["ramps"] = ramps
    outcome.details["send_rates"] = send_rates
    await broadcast(ctx.cluster.workers, "disconnect")


# -- 3b. the ceiling beside us ------------------------------------------------------------------


async def ceiling(ctx: Context, outcome: Outcome) -> None:
    """The same kind of users and private chats as the throughput scenario; a raw asyncpg client
    sends in both forms on this database, then one more API process's round trips are counted."""
    sizes = ctx.sizes
    setup = Setup(ctx.http, ctx.cluster)
    pairs, chats = await _pairs(ctx, sizes.throughput_users, setup)
    first, chat = pairs[0][0], chats[0]
    # One send through the API: the view the server stores is the one the raw client sends.
    await setup.call(first, "POST", f"/api/v1/chats/{chat}/messages", {"text": "bm|view|0"})
    view = await message_view(ctx.cluster.database.url, chat)
    senders = [
        (setup.user_ids[telegram_id], telegram_id, chat_id)
        for pair, chat_id in zip(pairs, chats, strict=True)
        for telegram_id in pair
    ]
    raw = await raw_sends(
        ctx.cluster.database.url,
        senders,
        view,
        connections=sizes.ceiling_connections,
        seconds=sizes.ceiling_seconds,
        warm_up_seconds=sizes.ceiling_warm_up_seconds,
    )
    outcome.details["raw"] = raw
    outcome.details["raw_client"] = "its own process (bench.raw_client)"
    outcome.rows += raw_rows(raw)
    trips = await count_round_trips(ctx.cluster, setup, first, chat, sizes.round_trip_requests)
    outcome.details["round_trips"] = [
        {"what": t.what, "requests": t.requests, "round_trips": t.round_trips} for t in trips
    ]
    outcome.rows += round_trip_rows(trips, sizes.quick)


# -- 4. idle connections --------------------------------------------------------------------------


async def connections(ctx: Context, outcome: Outcome) -> None:
    sizes = ctx.sizes
    api = ctx.cluster.apis[0]
    # Warm up: the first sockets fill caches (compiled queries, pools) that sockets do not own.
    warm = [ctx.base_id + 900_000 + index for index in range(50)]
    await connect(ctx.cluster, {0: [[telegram_id, 0] for telegram_id in warm]})
    await broadcast(ctx.cluster.workers, "disconnect")
    await asyncio.sleep(2.0)
    rss_before = api.rss_kib()
    ids = [ctx.base_id + index for index in range(sizes.sockets)]
    plan = {
        worker: [[telegram_id, 0] for telegram_id in chunk]
        for worker, chunk in split_round_robin(ids, ctx.workers).items()
    }
    before = sample_cpu(ctx.cluster.pids())
    connected = await connect(ctx.cluster, plan)
    connect_cpu = cpu_usage(before, sample_cpu(ctx.cluster.pids()))
    await wait_quiet(ctx.cluster, quiet_for=1.0)
    await asyncio.sleep(3.0)
    rss_after = api.rss_kib()
    per_socket = (rss_after - rss_before) / sizes.sockets
    await broadcast(ctx.cluster.workers, "disconnect")
    await asyncio.sleep(2.0)
    rss_closed = api.rss_kib()
    outcome.details.update(
        {
            "connect": connected,
            "connect_cpu_pct": connect_cpu,
            "rss_kib_before": rss_before,
            "rss_kib_with_sockets": rss_after,
            "rss_kib_after_closing": rss_closed,
        }
    )
    outcome.rows += [
        Row("idle authenticated sockets on one process", connected["sockets"], "sockets"),
        Row(
            "resident memory per socket",
            round(per_socket, 1),
            "KiB",
            "<= 20 KiB",
            ctx.goal(per_socket <= 20),
        ),
        Row("process RSS before / with sockets", round(rss_after / 1024, 1), "MiB",
            f"(before: {rss_before / 1024:.1f} MiB)"),
        Row("connect rate (handshake + initData auth)",
            round(connected["sockets"] / connected["seconds"]), "sockets/s"),
    ]  # fmt: skip


# -- 5. resume ------------------------------------------------------------------------------------


async def resume(ctx: Context, outcome: Outcome) -> None:
    sizes = ctx.sizes
    a, b = ctx.base_id, ctx.base_id + 1
    setup = Setup(ctx.http, ctx.cluster)
    await setup.users([a, b])
    (chat_id,) = await setup.private_chats([(a, b)])
    after_seq = int((await setup.call(b, "GET", f"/api/v1/chats/{chat_id}"))["last_seq"])
    # b is away while a sends: those are the events b missed.
    await connect(ctx.cluster, {0: [[a, 0]]})
    phase = await send_phase(
        ctx.cluster,
        label="R",
        transport="rest",
        rate=250.0,
        duration=sizes.resume_events / 250.0,
        plans={0: [[a, chat_id]]},
        members={chat_id: [a]},
        latency_of_recipients_only=False,
        max_in_flight=16,
        wait_when_full=True,
        drain_timeout=60.0,
    )
    _phase_problems(outcome, phase)
    await broadcast(ctx.cluster.workers, "disconnect")
    target_seq = int((await setup.call(b, "GET", f"/api/v1/chats/{chat_id}"))["last_seq"])
    missed = target_seq - after_seq
    reply = await ctx.cluster.workers[-1].call(
        "resume",
        telegram_id=b,
        chat_id=chat_id,
        after_seq=after_seq,
        target_seq=target_seq,
        runs=sizes.resume_runs,
        api=len(ctx.cluster.apis) - 1,
    )
    runs: list[Json] = reply.result["runs"]
    for run in runs:
        if run["events"] != missed or run["out_of_order"]:
            outcome.problems.append(
                f"resume replayed {run['events']} events ({run['out_of_order']} out of order), "
                f"expected {missed}"
            )
    to_last = [float(run["to_last_event_ms"]) for run in runs]
    median = statistics.median(to_last)
    outcome.details.update({"missed_events": missed, "runs": runs})
    outcome.rows += [
        Row(
            f"resume -> last of {missed} missed events, median of {len(runs)}",
            _ms(median),
            "ms",
            "<= 100 ms",
            ctx.goal(median <= 100),
        ),
        Row("resume -> last replayed event, max", _ms(max(to_last)), "ms"),
        Row("resume -> `resumed` frame, median",
            _ms(statistics.median(float(run["to_resumed_ms"]) for run in runs)), "ms"),
    ]  # fmt: skip


# -- 6. AI streaming ------------------------------------------------------------------------------


async def _ai_runs(
    ctx: Context, telegram_id: int, chat_id: int, tokens: int, delay: float, runs: int
) -> list[Json]:
    fake = ctx.cluster.fake_llm
    assert fake is not None
    await request_json(
        ctx.http, "POST", fake.base_url + "/config", body={"tokens": tokens, "delay": delay}
    )
    await request_json(ctx.http, "POST", fake.base_url + "/reset", body={})
    reply = await ctx.cluster.workers[0].call(
        "ai", telegram_id=telegram_id, chat_id=chat_id, runs=runs, api=0
    )
    provider = await request_json(ctx.http, "GET", fake.base_url + "/stats")
    assert isinstance(provider, list)
    client: list[Json] = reply.result["runs"]
    if len(provider) != len(client):
        raise RuntimeError(f"{len(client)} replies but {len(provider)} requests to the fake LLM")
    joined = []
    for seen, made in zip(client, provider, strict=True):
        if seen["failure"] or seen["first_delta_ns"] is None:
            raise RuntimeError(f"the AI reply failed: {seen['failure']}")
        provider_ms = (made["last_token_ns"] - made["received_ns"]) / 1e6
        client_ms = (seen["last_delta_ns"] - seen["sent_ns"]) / 1e6
        joined.append(
            {
                "send_response_ms": (seen["answered_ns"] - seen["sent_ns"]) / 1e6,
                "first_delta_added_ms": (seen["first_delta_ns"] - made["first_token_ns"]) / 1e6,
                "end_lag_ms": (seen["last_delta_ns"] - made["last_token_ns"]) / 1e6,
                "before_provider_ms": (made["received_ns"] - seen["sent_ns"]) / 1e6,
                "provider_ms": provider_ms,
                "client_ms": client_ms,
                "added_pct": (client_ms - provider_ms) / provider_ms * 100,
                "persisted_after_ms": (seen["persisted_ns"] - made["done_ns"]) / 1e6,
                "deltas": seen["deltas"],
                "chars": seen["chars"],
            }
        )
    return joined


async def ai_streaming(ctx: Context, outcome: Outcome) -> None:
    sizes = ctx.sizes
    user = ctx.base_id
    setup = Setup(ctx.http, ctx.cluster)
    await setup.users([user])
    chat_id = int((await setup.call(user, "POST", "/api/v1/chats/ai"))["id"])
    await connect(ctx.cluster, {0: [[user, 0]]})
    await wait_quiet(ctx.cluster, quiet_for=0.5)
    # One reply first: connections to the vendor, SDK imports and caches warm up.
    await _ai_runs(ctx, user, chat_id, 10, 0.0, 1)
    fast = await _ai_runs(ctx, user, chat_id, sizes.ai_tokens, 0.0, sizes.ai_runs)
    expected_chars = 4 * sizes.ai_tokens
    for run in fast:
        if run["chars"] != expected_chars:
            outcome.problems.append(f"AI text has {run['chars']} characters, not {expected_chars}")

    def median(runs: list[Json], key: str) -> float:
        return round(statistics.median(float(run[key]) for run in runs), 2)

    first = median(fast, "first_delta_added_ms")
    added = median(fast, "added_pct")
    at = f"{sizes.ai_tokens} tokens, no delay, median of {len(fast)}"
    outcome.rows += [
        Row(f"first delta at client - first token at provider ({at})", first, "ms",
            "<= 10 ms", ctx.goal(first <= 10)),
        Row(f"added in total: (client - provider) / provider ({at})", added, "%",
            "<= 5 %", ctx.goal(added <= 5)),
        Row("first delta added, worst run", round(max(r["first_delta_added_ms"] for r in fast), 2),
            "ms"),
        Row("provider: request -> last token", median(fast, "provider_ms"), "ms"),
        Row("client: send -> last delta", median(fast, "client_ms"), "ms"),
        Row("of which before the provider is asked", median(fast, "before_provider_ms"), "ms"),
        Row("of which the REST send of the question", median(fast, "send_response_ms"), "ms"),
        Row("last delta at client - last token at provider", median(fast, "end_lag_ms"), "ms"),
        Row("ai_reply_delta frames per reply", median(fast, "deltas"), "frames"),
    ]  # fmt: skip
    outcome.details["fast"] = fast
    if sizes.ai_paced_runs:
        paced = await _ai_runs(
            ctx, user, chat_id, sizes.ai_tokens, sizes.ai_paced_delay, sizes.ai_paced_runs
        )
        outcome.details["paced"] = paced
        rate = round(1 / sizes.ai_paced_delay)
        outcome.rows += [
            Row(f"paced ~{rate} tokens/s: first delta added",
                median(paced, "first_delta_added_ms"), "ms"),
            Row(f"paced ~{rate} tokens/s: added in total", median(paced, "added_pct"), "%"),
        ]  # fmt: skip
    await broadcast(ctx.cluster.workers, "disconnect")


# -- 7. initData validation -----------------------------------------------------------------------


def _rate(function: Callable[[str], object], inputs: list[str], count: int) -> float:
    for raw in inputs[:200]:
        function(raw)
    gc.collect()
    started = time.perf_counter()
    size = len(inputs)
    for index in range(count):
        function(inputs[index % size])
    return count / (time.perf_counter() - started)


def validation(sizes: Sizes, outcome: Outcome) -> None:
    from aiogram.utils.web_app import check_webapp_signature, safe_parse_webapp_init_data

    from core.telegram_auth import validate_init_data

    inputs = [
        init_data(10_000_000 + index, first_name(10_000_000 + index)) for index in range(1000)
    ]
    token = BENCH_BOT_TOKEN
    if not all(check_webapp_signature(token, raw) for raw in inputs):
        outcome.problems.append("aiogram refused initData we signed")
    for raw in inputs:
        validate_init_data(raw, bot_token=token)  # raises if refused

    def ours(raw: str) -> object:
        return validate_init_data(raw, bot_token=token)

    def aiogram_check(raw: str) -> object:
        return check_webapp_signature(token, raw)

    def aiogram_parse(raw: str) -> object:
        return safe_parse_webapp_init_data(token, raw)

    count = sizes.validations
    results = {
        "ours": _rate(ours, inputs, count),
        "aiogram_check": _rate(aiogram_check, inputs, count),
        "aiogram_parse": _rate(aiogram_parse, inputs, count),
    }
    outcome.details.update({"validations_per_run": count, "per_second": results})
    outcome.rows += [
        Row("core.telegram_auth.validate_init_data (check + parse + freshness)",
            round(results["ours"]), "validations/s"),
        Row("aiogram check_webapp_signature (check only)",
            round(results["aiogram_check"]), "validations/s"),
        Row("aiogram safe_parse_webapp_init_data (check + parse)",
            round(results["aiogram_parse"]), "validations/s"),
    ]  # fmt: skip


# -- 8. start-up ----------------------------------------------------------------------------------

STARTUP_GOAL_SECONDS = 2.0


async def startup(ctx: Context, outcome: Outcome) -> None:
    """From spawning `python -m webapp_api` (production settings, PostgreSQL and Redis, the bot
    off) to its first 200 on /api/v1/health, polled every 10 ms; one process at a time."""
    seconds: list[float] = []
    load: list[float] = []
    for index in range(ctx.sizes.startup_runs):
        api = ServerProcess(
            f"API process (start-up {index})",
            [sys.executable, "-m", "webapp_api"],
            ctx.cluster.api_env,
            ctx.cluster.log_dir / f"startup-api{index}.log",
        )
        load.append(os.getloadavg()[0])
        started = time.monotonic()
        try:
            await api.start("/api/v1/health", poll_every=0.01)
            seconds.append(time.monotonic() - started)
        finally:
            await api.stop()
    median = statistics.median(seconds)
    outcome.details.update(
        {"seconds": [round(value, 3) for value in seconds], "load_average_1m": load}
    )
    outcome.rows += [
        Row("spawn to first 200 on /api/v1/health, median", round(median, 2), "s",
            f"<= {STARTUP_GOAL_SECONDS:g} s", ctx.goal(median <= STARTUP_GOAL_SECONDS)),
        Row("spawn to first 200 on /api/v1/health, slowest", round(max(seconds), 2), "s"),
        Row("machine load average (1 min) at the spawns, median",
            round(statistics.median(load), 2), ""),
    ]  # fmt: skip


SCENARIOS: tuple[Definition, ...] = (
    Definition("latency", "Send-to-deliver latency (REST, private chats)", latency),
    Definition("fanout", "Group fan-out", fanout),
    Definition("throughput", "Throughput (REST and WebSocket send_message)", throughput),
    Definition(
        "ceiling",
        "The ceiling beside us (raw asyncpg) and round trips",
        ceiling,
        ClusterSpec(apis=1, workers=0),
    ),
    Definition("connections", "Idle connections on one process", connections, ClusterSpec(apis=1)),
    Definition("resume", "Resume after missed events", resume),
    Definition("ai", "AI streaming relay", ai_streaming, ClusterSpec(fake_llm=True, workers=1)),
    Definition("initdata", "initData validation", None, ClusterSpec(apis=0, workers=0)),
    Definition("startup", "API process start-up", startup, ClusterSpec(apis=0, workers=0)),
    Definition("polling", "Polling clients (conditional reads)", polling, ClusterSpec(workers=0)),
    Definition(
        "capacity",
        "Capacity model: routed fan-out on 1, 2 and 4 API processes",
        capacity,
        ClusterSpec(apis=4),
    ),
)
