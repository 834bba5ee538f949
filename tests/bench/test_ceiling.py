"""The ceiling scenario's own logic: round trips counted from the bytes a client sends, and our
send rates as a fraction of the raw one-statement rate of the same run."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

from bench.ceiling import Trips, add_same_run_fractions, fraction_rows, round_trip_rows
from bench.measure import Outcome, Row
from bench.pg_proxy import counting_proxy


def _message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", 4 + len(body)) + body


STARTUP = struct.pack("!ii", 8 + 9, 196608) + b"user\0pg\0\0"
SSL_REQUEST = struct.pack("!ii", 8, 80877103)
# An extended-protocol statement (one round trip), a simple query (one), a statement's
# messages without their Sync (none yet), then its Sync (one).
STREAM = (
    _message(b"P", b"\0SELECT 1\0\0\0")
    + _message(b"B", b"\0\0\0\0\0\0\0\0")
    + _message(b"E", b"\0\0\0\0\0")
    + _message(b"S")
    + _message(b"Q", b"SELECT 2\0")
    + _message(b"P", b"\0SELECT 3\0\0\0")
    + _message(b"E", b"\0\0\0\0\0")
    + _message(b"S")
    + _message(b"X")  # Terminate: not a round trip
)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[int, asyncio.Queue[bytes]]]:
    """A stand-in for PostgreSQL: keeps what it receives."""
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            await received.put(data)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], received
    server.close()


async def _received(queue: asyncio.Queue[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += await asyncio.wait_for(queue.get(), 5)
    return data


async def test_the_proxy_counts_syncs_and_queries_however_the_bytes_arrive(
    upstream: tuple[int, asyncio.Queue[bytes]],
) -> None:
    port, received = upstream
    async with counting_proxy(f"postgresql://pg@127.0.0.1:{port}/db") as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", make_url(proxy.url).port)
        writer.write(SSL_REQUEST)
        assert await asyncio.wait_for(reader.readexactly(1), 5) == b"N"
        writer.write(STARTUP)
        # One byte at a time: messages split anywhere still count once each.
        for index in range(len(STREAM)):
            writer.write(STREAM[index : index + 1])
            await writer.drain()
        assert await _received(received, len(STARTUP) + len(STREAM)) == STARTUP + STREAM
        assert proxy.trips.count == 3
        writer.close()


def test_fractions_are_of_the_raw_one_statement_rate() -> None:
    ours = {"REST": {"steady": 500.0, "saturation": 800.0}}
    rows = fraction_rows(ours, 1000.0, quick=False)
    assert [(row.value, row.met) for row in rows] == [(50.0, True), (80.0, True)]
    slow = {"REST": {"steady": 100.0, "saturation": 499.0}}
    assert fraction_rows(slow, 1000.0, quick=False)[1].met is False
    # Quick runs judge no goal.
    assert {row.met for row in fraction_rows(ours, 1000.0, quick=True)} == {None}


def _outcomes(*, ceiling_error: str | None = None) -> list[Outcome]:
    throughput = Outcome("throughput", "Throughput", rows=[Row("highest", 500.0, "msg/s")])
    throughput.details["send_rates"] = {
        "REST": {"steady": 200.0, "saturation": 300.0},
        "WebSocket send_message": {"steady": 350.0, "saturation": 400.0},
    }
    ceiling = Outcome("ceiling", "Ceiling", error=ceiling_error)
    ceiling.details["raw"] = {"one": {"per_second": 1000.0}}
    return [throughput, ceiling]


def test_the_fractions_join_the_throughput_rows_when_both_ran() -> None:
    outcomes = _outcomes()
    add_same_run_fractions(outcomes, quick=True)
    fractions = {row.metric: row.value for row in outcomes[0].rows[1:]}
    assert fractions == {
        "REST highest steady rate / raw one-statement rate, same run": 20.0,
        "REST completed rate / raw one-statement rate, same run": 30.0,
        "WebSocket send_message highest steady rate / raw one-statement rate, same run": 35.0,
        "WebSocket send_message completed rate / raw one-statement rate, same run": 40.0,
    }


@pytest.mark.parametrize("which", ["only throughput", "ceiling failed"])
def test_no_fractions_without_both_scenarios(which: str) -> None:
    outcomes = _outcomes(ceiling_error="boom" if which == "ceiling failed" else None)
    if which == "only throughput":
        outcomes = outcomes[:1]
    add_same_run_fractions(outcomes, quick=True)
    assert [row.metric for row in outcomes[0].rows] == ["highest"]


def test_round_trips_are_per_request_and_only_sends_have_a_goal() -> None:
    trips = [Trips("REST send", 50, 50), Trips("socket send", 50, 450), Trips("GET /x", 4, 70)]
    rows = round_trip_rows(trips, quick=False)
    assert [(row.value, row.goal, row.met) for row in rows] == [
        (1.0, "1", True),
        (9.0, "1", False),
        (17.5, "", None),
    ]
