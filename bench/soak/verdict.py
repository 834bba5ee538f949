"""The truth (the database and the events route) against what the sends were told and what the
clients received, counted by phase.

Events expected / received / lost are counted in the phase their event was committed in (the
database's `created_at`); duplicated and out-of-order deliveries, 5xx answers and socket aborts
in the phase they happened in; sends in the phase they started in."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.soak.clients import Arrival, SoakClient, SocketLog
from bench.soak.plan import ChatPlan, Timeline
from bench.soak.sends import HttpLedger, SendRecord
from services.events import MAX_EVENTS_PAGE

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    type: str
    at: float  # committed (wall clock)


@dataclass
class ChatTruth:
    chat_id: int
    plan: ChatPlan
    events: dict[int, Event] = field(default_factory=dict)  # seq -> event, from the database
    route_seqs: list[int] = field(default_factory=list)  # as GET /events lists them
    route_last_seq: int = 0

    @property
    def last_seq(self) -> int:
        return max(self.events, default=0)


@dataclass(frozen=True)
class StoredMessage:
    id: int
    chat_id: int
    seq: int
    copies: int  # rows with this client_msg_id


def _timestamp(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


async def read_truth(
    database_url: str,
    http: HttpLedger,
    http_base: str,
    chats: Sequence[tuple[int, ChatPlan]],
    telegram_ids: Sequence[int],
    client_msg_id_prefix: str,
) -> tuple[dict[int, ChatTruth], dict[str, StoredMessage]]:
    truths = {chat_id: ChatTruth(chat_id, plan) for chat_id, plan in chats}
    for truth in truths.values():
        member = telegram_ids[truth.plan.members[0]]
        after = 0
        while True:
            url = f"{http_base}/api/v1/chats/{truth.chat_id}/events"
            status, body = await http.request(
                "GET", f"{url}?after_seq={after}&limit={MAX_EVENTS_PAGE}", member
            )
            if status != 200:
                raise RuntimeError(f"GET {url}: {status} {body[:200]!r}")
            page = _json(body)
            truth.route_seqs.extend(int(event["seq"]) for event in page["events"])
            truth.route_last_seq = int(page["last_seq"])
            if not page["has_more"] or not page["events"]:
                break
            after = truth.route_seqs[-1]
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT chat_id, seq, type, created_at FROM chat_events WHERE chat_id = ANY($1)",
            list(truths),
        )
        for row in rows:
            truths[row["chat_id"]].events[row["seq"]] = Event(
                row["seq"], row["type"], _timestamp(row["created_at"])
            )
        stored = {
            row["client_msg_id"]: StoredMessage(
                row["id"], row["chat_id"], row["seq"], row["copies"]
            )
            for row in await connection.fetch(
                "SELECT client_msg_id, min(id) AS id, min(chat_id) AS chat_id, min(seq) AS seq, "
                "count(*) AS copies FROM messages WHERE client_msg_id LIKE $1 "
                "GROUP BY client_msg_id",
                client_msg_id_prefix + "%",
            )
        }
    finally:
        await connection.close()
    return truths, stored


def _json(body: bytes) -> Json:
    value = json.loads(body)
    assert isinstance(value, dict)
    return value


# -- counting ---------------------------------------------------------------------------------


COLUMNS = (
    "sends",
    "confirmed",
    "retried",
    "resent",
    "db dup",
    "5xx",
    "expected",
    "received",
    "lost",
    "dup",
    "reorder",
    "aborts",
    "sockets",
)


@dataclass
class Verdict:
    rows: dict[str, Counter[str]]
    problems: list[str]
    anomalies: list[Json]  # every lost, duplicated or out-of-order delivery, with its context
    sockets: Json
    totals: Counter[str]

    @property
    def passed(self) -> bool:
        return not self.problems


def _ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def _text(ranges: list[tuple[int, int]]) -> str:
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


class Judge:
    def __init__(
        self,
        timeline: Timeline,
        truths: dict[int, ChatTruth],
        stored: dict[str, StoredMessage],
        records: list[SendRecord],
        clients: list[SoakClient],
        sockets: list[SocketLog],
        http: HttpLedger,
    ) -> None:
        self.timeline = timeline
        self.truths = truths
        self.stored = stored
        self.records = records
        self.clients = clients
        self.sockets = {log.id: log for log in sockets}
        self.http = http
        self.rows: dict[str, Counter[str]] = {name: Counter() for name in timeline.names()}
        self.problems: list[str] = []
        self.anomalies: list[Json] = []

    def _count(self, at: float, column: str, amount: int = 1) -> None:
        self.rows[self.timeline.phase_at(at)][column] += amount

    def judge(self) -> Verdict:
        self._truth()
        self._sends()
        for (phase, status), count in self.http.statuses.items():
            if status >= 500:
                self.rows[phase]["5xx"] += count
        for error in self.http.server_errors[:20]:
            self.problems.append(f"{error.status} in {error.phase}: {error.request}: {error.body}")
        for client in self.clients:
            self._deliveries(client)
        socket_summary = self._sockets()
        totals: Counter[str] = Counter()
        for row in self.rows.values():
            totals.update(row)
        for column, what in (
            ("lost", "events lost"),
            ("dup", "events delivered twice"),
            ("reorder", "events out of order"),
            ("5xx", "5xx answers"),
            ("db dup", "sends stored twice"),
        ):
            if totals[column]:
                self.problems.append(f"{totals[column]} {what}")
        unconfirmed = totals["sends"] - totals["confirmed"]
        if unconfirmed:
            self.problems.append(f"{unconfirmed} sends never confirmed")
        return Verdict(self.rows, self.problems, self.anomalies, socket_summary, totals)

    def _truth(self) -> None:
        for truth in self.truths.values():
            seqs = sorted(truth.events)
            if seqs != list(range(1, len(seqs) + 1)):
                self.problems.append(f"chat {truth.chat_id}: database seqs have gaps")
            if truth.route_seqs != seqs or truth.route_last_seq != truth.last_seq:
                self.problems.append(
                    f"chat {truth.chat_id}: the events route lists {len(truth.route_seqs)} "
                    f"events up to {truth.route_last_seq}, the database {len(seqs)}"
                )
            for event in truth.events.values():
                self._count(event.at, "expected", len(truth.plan.members))

    def _sends(self) -> None:
        for record in self.records:
            row = self.rows[record.phase]
            row["sends"] += 1
            row["retried"] += sum(not attempt.endswith(":ok") for attempt in record.attempts)
            row["resent"] += record.resend is not None
            stored = self.stored.get(record.plan.client_msg_id)
            if stored is not None and stored.copies > 1:
                row["db dup"] += 1
            if not record.confirmed:
                why = record.refused or "gave up"
                self.problems.append(f"send {record.plan.client_msg_id} unconfirmed ({why})")
                continue
            row["confirmed"] += 1
            if stored is None or (stored.id, stored.seq) != (record.message_id, record.seq):
                self.problems.append(
                    f"send {record.plan.client_msg_id} confirmed as message {record.message_id} "
                    f"seq {record.seq}, the database has {stored}"
                )
            if record.resend not in (None, "same"):
                self.problems.append(
                    f"send {record.plan.client_msg_id} sent again: {record.resend} "
                    f"(first confirmed as {record.message_id})"
                )
        sent = {record.plan.client_msg_id for record in self.records}
        for client_msg_id in self.stored.keys() - sent:
            self.problems.append(f"message {client_msg_id} stored but never sent")

    def _deliveries(self, client: SoakClient) -> None:
        by_chat: dict[int, list[Arrival]] = defaultdict(list)
        for arrival in client.arrivals:
            by_chat[arrival.chat_id].append(arrival)
        for chat_id in client.chat_ids:
            truth = self.truths[chat_id]
            seen: set[int] = set()
            highest = 0
            for arrival in by_chat.get(chat_id, []):
                if arrival.seq not in truth.events:
                    self._anomaly("phantom", client, chat_id, [arrival.seq], arrival)
                    self.problems.append(
                        f"user{client.index} got seq {arrival.seq} of chat {chat_id}, "
                        "which the database does not have"
                    )
                elif arrival.seq in seen:
                    self._count(arrival.at, "dup")
                    self._anomaly("duplicated", client, chat_id, [arrival.seq], arrival)
                elif arrival.seq < highest:
                    self._count(arrival.at, "reorder")
                    self._anomaly("out of order", client, chat_id, [arrival.seq], arrival)
                seen.add(arrival.seq)
                highest = max(highest, arrival.seq)
            for seq in seen & truth.events.keys():
                self._count(truth.events[seq].at, "received")
            missing = truth.events.keys() - seen
            for seq in missing:
                self._count(truth.events[seq].at, "lost")
            for first, last in _ranges(missing):
                after = next((a for a in by_chat.get(chat_id, []) if a.seq > last), None)
                self._anomaly("lost", client, chat_id, list(range(first, last + 1)), after)

    def _anomaly(
        self,
        kind: str,
        client: SoakClient,
        chat_id: int,
        seqs: list[int],
        arrival: Arrival | None,
    ) -> None:
        """`arrival`: the delivery it is about (for a loss: the first one after the gap)."""
        entry: Json = {
            "kind": kind,
            "user": client.index,
            "chat_id": chat_id,
            "chat": self.truths[chat_id].plan.kind,
            "seqs": _text(_ranges(seqs)),
            "phase": self.timeline.phase_at(
                self.truths[chat_id].events[seqs[0]].at
                if kind == "lost"
                else (arrival.at if arrival else 0.0)
            ),
        }
        if arrival is not None:
            log = self.sockets[arrival.socket]
            on_socket = [a.seq for a in log.arrivals if a.chat_id == chat_id]
            entry.update(
                {
                    "socket": log.id,
                    "api": log.api,
                    "resumed_from": log.resume_from.get(chat_id),
                    "resumed_to": (log.resumed or {}).get(chat_id),
                    "first_on_socket": on_socket[0] if on_socket else None,
                    "next_seq": arrival.seq,
                    "socket_opened_phase": self.timeline.phase_at(log.opened_at),
                }
            )
        self.anomalies.append(entry)

    def _sockets(self) -> Json:
        """Per socket and chat: from its resume position on, the chat's events once each and
        in order up to the last one it got."""
        broken: Counter[str] = Counter()
        for log in self.sockets.values():
            self._count(log.opened_at, "sockets")
            if log.aborted and log.closed_at is not None:
                self._count(log.closed_at, "aborts")
            kinds: set[str] = set()
            for chat_id, after in log.resume_from.items():
                seqs = [a.seq for a in log.arrivals if a.chat_id == chat_id]
                if not seqs:
                    continue
                if len(set(seqs)) != len(seqs):
                    kinds.add("duplicate")
                if seqs != sorted(seqs):
                    kinds.add("out of order")
                if set(range(after + 1, max(seqs) + 1)) - set(seqs):
                    kinds.add("gap")
            broken.update(kinds)
        close_codes = Counter(
            str(log.close_code) for log in self.sockets.values() if not log.aborted
        )
        return {
            "opened": len(self.sockets),
            "aborted": sum(log.aborted for log in self.sockets.values()),
            "with a gap": broken["gap"],
            "with a duplicate": broken["duplicate"],
            "out of order": broken["out of order"],
            "other close codes": dict(close_codes),
        }
