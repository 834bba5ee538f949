"""`python -m bench.raw_client`: the ceiling beside us, a raw asyncpg client sending messages.

It reads one JSON object on stdin (the database, the senders and their chats, the message view
to store, how many connections and for how long) and writes one JSON object on stdout: for each
form of a send, how many it completed per second and the CPU this process spent on each. Its
own process, so that the orchestrator's CPU is not counted as the client's.

Two forms of the same send, closed loop on N connections (each sends its next message as soon
as the last one is answered):

- `eight`: the transaction our server used to run per send, eight round trips: BEGIN; the user
  by telegram id; the membership; the chat's next seq; the message; the chat's last message;
  the event, returning the members; COMMIT.
- `one`: the one statement it runs now, `post_message(...)` in autocommit.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import uvloop

from bench.stats import summarize

Json = dict[str, Any]

USER_BY_TELEGRAM_ID = (
    "SELECT id, telegram_id, username, first_name, last_name, language_code, is_premium, "
    "photo_url, allows_write_to_pm, is_bot, is_admin, bio, notifications_enabled, created_at, "
    "updated_at FROM users WHERE telegram_id = $1"
)
MEMBERSHIP = (
    "SELECT c.type, c.ai_mode FROM chats c JOIN chat_members m ON m.chat_id = c.id "
    "WHERE c.id = $1 AND m.user_id = $2 AND c.is_active"
)
NEXT_SEQ = "UPDATE chats SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq"
INSERT_MESSAGE = (
    "INSERT INTO messages (chat_id, sender_id, seq, type, text, client_msg_id, created_at, "
    "updated_at) VALUES ($1, $2, $3, 'text', $4, $5, $6, $6) "
    "ON CONFLICT (chat_id, sender_id, client_msg_id) DO NOTHING RETURNING id"
)
LAST_MESSAGE = "UPDATE chats SET last_message_id = $2, last_activity_at = $3 WHERE id = $1"
INSERT_EVENT = (
    "INSERT INTO chat_events (chat_id, seq, type, payload, created_at) "
    "VALUES ($1, $2, 'new_message', $3::jsonb, $4) "
    "RETURNING (SELECT string_agg(user_id::text, ',') FROM chat_members WHERE chat_id = $1)"
)
POST_MESSAGE = (
    "SELECT outcome, message_id, message_seq, chat_id, chat_type, member_ids FROM post_message("
    "$1, $2, 'text', $3, NULL, $4, NULL, NULL, NULL, $5, $6::jsonb, NULL, NULL, true)"
)
FORMS = ("eight", "one")


@dataclass(frozen=True, slots=True)
class Sender:
    user_id: int
    telegram_id: int
    chat_id: int


class Client:
    """One connection's sends: its senders in turn, and a message view like the server's."""

    def __init__(self, connection: asyncpg.Connection, senders: list[Sender], view: Json) -> None:
        self.connection = connection
        self.senders = senders
        self.view = view
        self.sent = 0

    def _next(self, tag: str) -> tuple[Sender, str, str, datetime]:
        sender = self.senders[self.sent % len(self.senders)]
        self.sent += 1
        client_msg_id = f"{tag}-{self.sent}"
        return sender, client_msg_id, f"bm|{client_msg_id}|{time.time_ns()}", datetime.now(UTC)

    def _view(self, sender: Sender, text: str, client_msg_id: str, now: datetime) -> Json:
        return {
            **self.view,
            "chat_id": sender.chat_id,
            "text": text,
            "client_msg_id": client_msg_id,
            "created_at": now.isoformat(),
        }

    async def eight(self, tag: str) -> None:
        sender, client_msg_id, text, now = self._next(tag)
        connection = self.connection
        async with connection.transaction():
            user = await connection.fetchrow(USER_BY_TELEGRAM_ID, sender.telegram_id)
            assert user is not None
            chat = await connection.fetchrow(MEMBERSHIP, sender.chat_id, user["id"])
            if chat is None:
                raise RuntimeError(f"user {user['id']} is not in chat {sender.chat_id}")
            seq = await connection.fetchval(NEXT_SEQ, sender.chat_id)
            message_id = await connection.fetchval(
                INSERT_MESSAGE, sender.chat_id, user["id"], seq, text, client_msg_id, now
            )
            await connection.execute(LAST_MESSAGE, sender.chat_id, message_id, now)
            view = self._view(sender, text, client_msg_id, now)
            payload = json.dumps({"message": {**view, "id": message_id, "seq": seq}})
            await connection.fetchval(INSERT_EVENT, sender.chat_id, seq, payload, now)

    async def one(self, tag: str) -> None:
        sender, client_msg_id, text, now = self._next(tag)
        view = json.dumps(self._view(sender, text, client_msg_id, now))
        row = await self.connection.fetchrow(
            POST_MESSAGE, sender.chat_id, sender.user_id, text, client_msg_id, now, view
        )
        if row is None or row["outcome"] != "sent":
            raise RuntimeError(f"post_message: {None if row is None else row['outcome']}")


async def _closed_loop(clients: list[Client], form: str, seconds: float, tag: str) -> Json:
    """Every client sends back to back for `seconds`; what they completed, and at what cost."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def run(index: int, client: Client) -> int:
        send = getattr(client, form)
        done = 0
        while time.monotonic() < deadline:
            began = time.perf_counter()
            await send(f"{tag}{index}")
            latencies.append((time.perf_counter() - began) * 1000)
            done += 1
        return done

    cpu_before, started = time.process_time(), time.monotonic()
    sends = sum(await asyncio.gather(*(run(i, c) for i, c in enumerate(clients))))
    wall, cpu = time.monotonic() - started, time.process_time() - cpu_before
    return {
        "sends": sends,
        "seconds": round(wall, 3),
        "per_second": round(sends / wall, 1),
        "client_cpu_s": round(cpu, 4),
        "client_cpu_ms_per_send": round(cpu / max(sends, 1) * 1000, 3),
        "latency_ms": summarize(latencies).as_dict(),
    }


async def measure(config: Json) -> Json:
    senders = [Sender(*item) for item in config["senders"]]
    connections: int = config["connections"]
    pool = [await asyncpg.connect(config["database_url"], timeout=30) for _ in range(connections)]
    try:
        clients = [
            Client(connection, senders[index::connections] or senders, config["view"])
            for index, connection in enumerate(pool)
        ]
        results: Json = {"connections": connections}
        for form in FORMS:
            # Statements prepared and caches warm, as on a server that has been running.
            await _closed_loop(clients, form, config["warm_up_seconds"], f"w{form}")
            results[form] = await _closed_loop(clients, form, config["seconds"], f"m{form}")
        return results
    finally:
        await asyncio.gather(*(connection.close() for connection in pool))


def main() -> None:
    config = json.loads(sys.stdin.read())
    result = uvloop.run(measure(config))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
