"""The soak's sends: `POST /api/v1/chats/{id}/messages`, Aeon's `POST /api/v1/messages/` and
the socket's `send_message`, each with a `client_msg_id`. A send that failed (a process down,
a socket cut, no ack in time, a 5xx) is tried again with the same `client_msg_id`, over a
transport chosen again, until it is confirmed; some confirmed sends are sent again on purpose.
Either way the answer must name the message the first confirmation named."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.client import HttpClient, init_data
from bench.load import first_name
from bench.soak.clients import SendOutcome, SoakClient
from bench.soak.plan import TRANSPORTS, SendPlan, Timeline

GIVE_UP_AFTER = 120.0  # a send not confirmed by then counts as unconfirmed
# Answers that a retry cannot change: the send is refused, and the soak fails.
RETRYABLE_STATUSES = frozenset({408, 429})
# Socket `error` codes that say "try again later", as a 503 does over HTTP.
RETRYABLE_FRAME_CODES = frozenset({"ws_database_unavailable"})

Json = dict[str, Any]


@dataclass
class SendRecord:
    plan: SendPlan
    chat_id: int
    phase: str
    started: float
    attempts: list[str] = field(default_factory=list)  # "transport:outcome"
    message_id: int | None = None
    seq: int | None = None
    refused: str | None = None
    resend: str | None = None  # "same", "different <id>" or "unconfirmed"

    @property
    def confirmed(self) -> bool:
        return self.message_id is not None

    def as_dict(self) -> Json:
        return {
            "client_msg_id": self.plan.client_msg_id,
            "chat_id": self.chat_id,
            "sender": self.plan.sender,
            "phase": self.phase,
            "attempts": self.attempts,
            "message_id": self.message_id,
            "seq": self.seq,
            "refused": self.refused,
            "resend": self.resend,
        }


@dataclass(frozen=True)
class ServerError:
    at: float
    phase: str
    request: str
    status: int
    body: str


class HttpLedger:
    """Every HTTP answer of the soak, counted by phase and status; each 5xx kept whole."""

    def __init__(self, http: HttpClient, timeline: Timeline) -> None:
        self.http = http
        self.timeline = timeline
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.server_errors: list[ServerError] = []

    async def request(
        self, method: str, url: str, telegram_id: int, body: object | None = None
    ) -> tuple[int, bytes]:
        headers = {"X-Telegram-Init-Data": init_data(telegram_id, first_name(telegram_id))}
        status, content = await self.http.request(method, url, headers=headers, body=body)
        self.record(f"{method} {url}", status, content)
        return status, content

    def record(self, request: str, status: int, content: bytes) -> None:
        """An answer; the WebSocket handshakes the clients were refused are recorded too."""
        now = time.time()
        phase = self.timeline.phase_at(now)
        self.statuses[(phase, status)] += 1
        if status >= 500:
            text = content[:300].decode(errors="replace")
            self.server_errors.append(ServerError(now, phase, request, status, text))


class Sender:
    def __init__(
        self,
        http: HttpLedger,
        http_bases: list[str],
        clients: list[SoakClient],
        chat_ids: list[int],
        timeline: Timeline,
        seed: int,
    ) -> None:
        self._http = http
        self._bases = http_bases
        self._clients = clients
        self._chat_ids = chat_ids
        self._timeline = timeline
        self._seed = seed
        self.records: list[SendRecord] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, plans: Iterable[SendPlan], rate: float, until: asyncio.Event) -> None:
        """Start one send every 1/rate seconds until `until` is set."""
        started = time.monotonic()
        for plan in plans:
            delay = started + plan.number / rate - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(until.wait(), delay)
            if until.is_set():
                return
            record = SendRecord(
                plan,
                self._chat_ids[plan.chat],
                self._timeline.current,
                time.time(),
            )
            self.records.append(record)
            task = asyncio.create_task(self._deliver(record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the sends in flight (each gives up by GIVE_UP_AFTER)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _deliver(self, record: SendRecord) -> None:
        plan = record.plan
        # Retries draw from the send's own generator: a replay makes the same choices.
        rng = random.Random(f"{self._seed}:send:{plan.number}")
        outcome = await self._until_confirmed(record, plan.transport, rng)
        if outcome is None:
            return
        record.message_id, record.seq = outcome
        if plan.resend_transport is not None:
            again = await self._until_confirmed(record, plan.resend_transport, rng)
            if again is None:
                record.resend = "unconfirmed"
            elif again[0] == record.message_id:
                record.resend = "same"
            else:
                record.resend = f"different {again[0]}"

    async def _until_confirmed(
        self, record: SendRecord, transport: str, rng: random.Random
    ) -> tuple[int, int] | None:
        deadline = time.monotonic() + GIVE_UP_AFTER
        tries = 0
        while True:
            if transport == "ws" and not self._clients[record.plan.sender].reading:
                transport = "rest"  # the client that stopped reading sends over HTTP
            outcome, message_id, seq = await self._attempt(record, transport, rng)
            record.attempts.append(f"{transport}:{outcome}")
            if outcome == "ok" and message_id is not None and seq is not None:
                return message_id, seq
            if _refused(outcome):
                record.refused = f"{transport}:{outcome}"
                return None
            tries += 1
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(rng.uniform(0.2, 1.0) * min(2**tries, 8))
            transport = rng.choice(TRANSPORTS)

    async def _attempt(self, record: SendRecord, transport: str, rng: random.Random) -> SendOutcome:
        plan = record.plan
        client = self._clients[plan.sender]
        if transport == "ws":
            return await client.send_message(record.chat_id, plan.text, plan.client_msg_id)
        base = rng.choice(self._bases)
        if transport == "aeon":
            url = f"{base}/api/v1/messages/"
            body: Json = {"chat_id": record.chat_id, "message_type": "text"}
        else:
            url = f"{base}/api/v1/chats/{record.chat_id}/messages"
            body = {}
        body.update({"text": plan.text, "client_msg_id": plan.client_msg_id})
        try:
            status, content = await self._http.request("POST", url, client.telegram_id, body)
        except Exception as exc:  # a process down, a connection cut: try again
            return (type(exc).__name__, None, None)
        if status != 200:
            return (f"http_{status}", None, None)
        message = json.loads(content)
        return ("ok", int(message["id"]), int(message["seq"]))


def _refused(outcome: str) -> bool:
    """An answer no retry can change (a 4xx, a socket `error` frame but "try again later")."""
    if outcome.startswith("http_"):
        status = int(outcome.removeprefix("http_"))
        return 400 <= status < 500 and status not in RETRYABLE_STATUSES
    return outcome.startswith("ws_") and outcome not in RETRYABLE_FRAME_CODES
