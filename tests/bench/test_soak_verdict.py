"""The soak's judge: what it counts as lost, duplicated and out of order, and where."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator

import pytest

from bench.client import http_client
from bench.soak.clients import Arrival, SoakClient, SocketLog
from bench.soak.plan import ChatPlan, Phase, Timeline
from bench.soak.sends import HttpLedger
from bench.soak.verdict import ChatTruth, Event, Judge, Verdict

CHAT = 7


@pytest.fixture
def timeline() -> Timeline:
    timeline = Timeline()
    timeline.phases = [Phase("setup", 100.0, 200.0), Phase("steady", 200.0, 300.0)]
    timeline.phases.append(Phase("drops", 300.0, 400.0))
    return timeline


@pytest.fixture
async def ledger(timeline: Timeline) -> AsyncIterator[HttpLedger]:
    http = http_client("httpx")
    yield HttpLedger(http, timeline)
    await http.close()


def _truth(last_seq: int) -> ChatTruth:
    """Events 1..last_seq, one a second from t=250 (the steady phase) on."""
    truth = ChatTruth(CHAT, ChatPlan(0, "private", (0,)))
    truth.events = {seq: Event(seq, "new_message", 250.0 + seq) for seq in range(1, last_seq + 1)}
    truth.route_seqs = list(truth.events)
    truth.route_last_seq = last_seq
    return truth


def _ignore(request: str, status: int, body: bytes) -> None:
    """No WebSocket handshake is refused here."""


def _client(sockets: list[SocketLog], *deliveries: tuple[int, list[int]]) -> SoakClient:
    """A client whose sockets, one after the other, resumed from a position and then got
    `seqs`, one a second from t=350 (the drops phase) on."""
    client = SoakClient(0, 1, [CHAT], [], random.Random(0), itertools.count(1), sockets, _ignore)
    at = itertools.count(350)
    for socket_id, (resumed_from, seqs) in enumerate(deliveries, start=1):
        log = SocketLog(socket_id, 0, 0, 340.0, {CHAT: resumed_from})
        for seq in seqs:
            arrival = Arrival(CHAT, seq, float(next(at)), socket_id)
            log.arrivals.append(arrival)
            client.arrivals.append(arrival)
        sockets.append(log)
    return client


def _judge(
    timeline: Timeline, ledger: HttpLedger, last_seq: int, *deliveries: tuple[int, list[int]]
) -> Verdict:
    sockets: list[SocketLog] = []
    client = _client(sockets, *deliveries)
    truths = {CHAT: _truth(last_seq)}
    return Judge(timeline, truths, {}, [], [client], sockets, ledger).judge()


async def test_every_event_once_in_order_across_resumes_passes(
    timeline: Timeline, ledger: HttpLedger
) -> None:
    verdict = _judge(timeline, ledger, 6, (0, [1, 2, 3]), (3, [4, 5, 6]))

    assert verdict.passed, verdict.problems
    assert (verdict.rows["steady"]["expected"], verdict.rows["steady"]["received"]) == (6, 6)
    assert verdict.sockets["with a gap"] == 0


async def test_a_live_event_before_the_replay_loses_what_lies_between(
    timeline: Timeline, ledger: HttpLedger
) -> None:
    verdict = _judge(timeline, ledger, 8, (0, [1, 2, 3]), (3, [7, 8]))

    assert not verdict.passed
    assert verdict.rows["steady"]["lost"] == 3  # counted where the events were committed
    (lost,) = verdict.anomalies
    assert lost["kind"] == "lost"
    assert lost["seqs"] == "4-6"
    assert (lost["socket"], lost["resumed_from"], lost["first_on_socket"]) == (2, 3, 7)
    assert verdict.sockets["with a gap"] == 1


async def test_duplicates_and_reorders_count_where_they_arrived(
    timeline: Timeline, ledger: HttpLedger
) -> None:
    verdict = _judge(timeline, ledger, 4, (0, [1, 3, 2, 3]), (3, [4]))

    assert not verdict.passed
    assert verdict.rows["drops"]["dup"] == 1
    assert verdict.rows["drops"]["reorder"] == 1
    assert verdict.rows["steady"]["lost"] == 0
    assert [a["kind"] for a in verdict.anomalies] == ["out of order", "duplicated"]


async def test_an_event_the_database_does_not_have_fails_the_run(
    timeline: Timeline, ledger: HttpLedger
) -> None:
    verdict = _judge(timeline, ledger, 2, (0, [1, 2, 3]))

    assert not verdict.passed
    assert verdict.anomalies[0]["kind"] == "phantom"
