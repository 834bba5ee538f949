"""`python -m bench.load`: one load generator process.

It reads commands on stdin, one JSON object a line (`{"id": n, "cmd": name, ...}`), runs them
concurrently and answers each with one JSON line on stdout (`{"id": n, "ok": true, "result":
{...}}` or `{"id": n, "ok": false, "error": "..."}`). Every answer carries the process's CPU time
and wall clock, so that the orchestrator can tell a saturated client from a slow server.

Benchmark messages carry their identity and send time in their text, `bm|<msg_id>|<time_ns>`:
every socket records when each one arrived, and the orchestrator joins what was sent with what
was received (latency, lost, duplicated). Frames are not decoded as JSON on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.client import HttpClient, HttpImpl, http_client, init_data
from bench.procinfo import raise_nofile_limit, self_rss_kib
from bench.stats import summarize

logger = logging.getLogger("bench.load")

# The marker in a message's text. Live frames are our compact JSON (`"text":"bm|...`); frames
# replayed from the event log carry the stored payload as PostgreSQL writes it (`"text": "bm|`).
_BENCH_TEXT = re.compile(r'"text":\s*"bm\|([^|"]+)\|')
_TYPE = re.compile(r'\{"type":"([a-z_]+)"')
_EVENT = re.compile(r'\{"type":"([a-z_]+)","chat_id":(\d+),"seq":(\d+)')
READ_LIMIT = 1 << 27  # one command line (a plan of thousands of sends) fits

Json = dict[str, Any]
Watch = Callable[[str, str, int], None]


def first_name(telegram_id: int) -> str:
    """Every request of a user carries the same profile, so the server never rewrites it."""
    return f"U{telegram_id}"


@dataclass(eq=False)
class Socket:
    telegram_id: int
    connection: ClientConnection
    api: int  # the index of the API process it is connected to
    user_id: int = 0
    reader: asyncio.Task[None] | None = None
    close_code: int | None = None
    acks: dict[str, asyncio.Future[tuple[int, str]]] = field(default_factory=dict)
    watch: Watch | None = None


@dataclass
class Config:
    http_bases: list[str]
    ws_bases: list[str]
    http_impl: HttpImpl = "aiohttp"
    index: int = 0


class LoadWorker:
    def __init__(self) -> None:
        self.config = Config([], [])
        self.http: HttpClient | None = None
        self.sockets: dict[int, Socket] = {}
        self.deliveries: list[tuple[str, int, int]] = []  # (msg_id, telegram_id, received ns)
        self.frame_types: Counter[str] = Counter()
        self.frames = 0
        self.closed: list[tuple[int, int | None]] = []
        self._headers: dict[int, dict[str, str]] = {}
        self.gc_pauses: list[float] = []  # ms, of this process's collections since collect
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """Time our own garbage collections: a pause here delays every arrival we record."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.append((time.perf_counter() - self._gc_started) * 1000)

    # -- frames ------------------------------------------------------------------------------

    def on_frame(self, socket: Socket, raw: str, now: int) -> None:
        self.frames += 1
        match = _TYPE.match(raw)
        type_ = match.group(1) if match else "?"
        self.frame_types[type_] += 1
        if type_ == "new_message":
            mark = _BENCH_TEXT.search(raw)
            if mark is not None:
                self.deliveries.append((mark.group(1), socket.telegram_id, now))
        elif (type_ == "ack" or type_ == "error") and socket.acks:
            frame = json.loads(raw)
            future = socket.acks.pop(str(frame.get("client_msg_id")), None)
            if future is not None and not future.done():
                future.set_result((now, "ok" if type_ == "ack" else str(frame.get("code"))))
        if socket.watch is not None:
            socket.watch(type_, raw, now)

    async def _read(self, socket: Socket) -> None:
        try:
            async for raw in socket.connection:
                now = time.time_ns()
                if isinstance(raw, str):
                    self.on_frame(socket, raw, now)
        except ConnectionClosed:
            pass
        finally:
            socket.close_code = socket.connection.close_code
            self.closed.append((socket.telegram_id, socket.close_code))
            for future in socket.acks.values():
                if not future.done():
                    future.set_result((time.time_ns(), "socket_closed"))

    # -- commands ----------------------------------------------------------------------------

    def headers(self, telegram_id: int) -> dict[str, str]:
        headers = self._headers.get(telegram_id)
        if headers is None:
            headers = {"X-Telegram-Init-Data": init_data(telegram_id, first_name(telegram_id))}
            self._headers[telegram_id] = headers
        return headers

    async def cmd_init(
        self, http_bases: list[str], ws_bases: list[str], http_impl: HttpImpl, index: int
    ) -> Json:
        self.config = Config(http_bases, ws_bases, http_impl, index)
        self.http = http_client(http_impl, max_connections=1024)
        return {"nofile": raise_nofile_limit()}

    async def open_socket(self, telegram_id: int, api: int) -> Socket:
        query = quote(init_data(telegram_id, first_name(telegram_id)))
        connection = await connect(
            f"{self.config.ws_bases[api]}/ws?init_data={query}",
            open_timeout=60,
            close_timeout=2,
            ping_interval=None,  # the server pings; the client answers
            compression=None,
            max_size=1 << 22,
            max_queue=4096,
            proxy=None,
        )
        hello = json.loads(await asyncio.wait_for(connection.recv(), 30))
        if hello.get("type") != "connection_established":
            await connection.close()
            raise RuntimeError(f"unexpected first frame {hello.get('type')}")
        socket = Socket(telegram_id, connection, api, user_id=int(hello["user_id"]))
        socket.reader = asyncio.create_task(self._read(socket))
        return socket

    async def cmd_connect(self, users: list[list[int]], concurrency: int = 64) -> Json:
        """Open one socket per [telegram_id, api index]."""
        gate = asyncio.Semaphore(concurrency)
        errors: Counter[str] = Counter()
        started = time.monotonic()
        handshake_ms: list[float] = []

        async def one(telegram_id: int, api: int) -> None:
            async with gate:
                began = time.monotonic()
                try:
                    socket = await self.open_socket(telegram_id, api)
                except Exception as exc:
                    errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
                    return
                handshake_ms.append((time.monotonic() - began) * 1000)
                # As a client with no stored seqs does: else the server holds its chats'
                # events until WS_RESUME_GRACE has passed without a resume.
                await socket.connection.send('{"type":"resume","chats":{}}')
                self.sockets[telegram_id] = socket

        await asyncio.gather(*(one(telegram_id, api) for telegram_id, api in users))
        # Long-lived sockets need not be traversed by every full collection.
        gc.collect()
        gc.freeze()
        return {
            "connected": len(handshake_ms),
            "failed": sum(errors.values()),
            "errors": dict(errors.most_common(5)),
            "seconds": round(time.monotonic() - started, 3),
            "handshake_ms": summarize(handshake_ms).as_dict(),
            "user_ids": {str(s.telegram_id): s.user_id for s in self.sockets.values()},
        }

    async def cmd_disconnect(self) -> Json:
        sockets = list(self.sockets.values())
        self.sockets.clear()

        async def close(socket: Socket) -> None:
            with contextlib.suppress(Exception):
                await socket.connection.close()
            if socket.reader is not None:
                with contextlib.suppress(Exception):
                    await socket.reader

        await asyncio.gather(*(close(socket) for socket in sockets))
        return {"closed": len(sockets)}

    async def cmd_send(
        self,
        transport: str,
        plan: list[list[int]],
        rate: float,
        duration: float,
        start_at_ns: int,
        prefix: str,
        max_in_flight: int = 256,
        give_up_after: float = 60.0,
        wait_when_full: bool = False,
        rest_apis: list[int] | None = None,
    ) -> Json:
        """Send `rate * duration` messages at a steady rate, cycling through `plan`
        ([sender telegram id, chat id], ...). REST sends alternate between the API processes;
        WebSocket sends use the sender's own socket. A send due while `max_in_flight` are
        still unanswered is skipped and counted: the offered rate stays honest and the time
        bounded when the server falls behind. With `wait_when_full` it waits instead (filling
        a chat as fast as the server goes). `rest_apis`: the API processes REST sends rotate
        over (default: all)."""
        assert self.http is not None
        count = max(1, round(rate * duration))
        interval = 1.0 / rate
        records: list[list[object]] = []
        lags: list[float] = []
        tasks: set[asyncio.Task[None]] = set()
        in_flight = 0
        skipped = 0
        apis = rest_apis or list(range(len(self.config.http_bases)))
        http = self.http

        async def via_rest(index: int, telegram_id: int, chat_id: int, msg_id: str) -> None:
            nonlocal in_flight
            api = apis[index % len(apis)]
            url = f"{self.config.http_bases[api]}/api/v1/chats/{chat_id}/messages"
            sent_ns = time.time_ns()
            body = {"text": f"bm|{msg_id}|{sent_ns}", "client_msg_id": msg_id}
            try:
                status, _ = await http.request(
                    "POST", url, headers=self.headers(telegram_id), body=body
                )
                outcome = "ok" if status == 200 else f"http_{status}"
            except Exception as exc:
                outcome = type(exc).__name__
            finally:
                in_flight -= 1
            records.append([msg_id, chat_id, telegram_id, sent_ns, outcome, time.time_ns(), api])

        async def via_socket(telegram_id: int, chat_id: int, msg_id: str) -> None:
            nonlocal in_flight
            socket = self.sockets[telegram_id]
            future: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
            socket.acks[msg_id] = future
            sent_ns = time.time_ns()
            frame = {
                "type": "send_message",
                "chat_id": chat_id,
                "text": f"bm|{msg_id}|{sent_ns}",
                "client_msg_id": msg_id,
            }
            try:
                await socket.connection.send(json.dumps(frame))
                answered_ns, outcome = await asyncio.wait_for(future, give_up_after)
            except Exception as exc:
                socket.acks.pop(msg_id, None)
                answered_ns, outcome = time.time_ns(), type(exc).__name__
            finally:
                in_flight -= 1
            records.append(
                [msg_id, chat_id, telegram_id, sent_ns, outcome, answered_ns, socket.api]
            )

        loop_start = time.monotonic() + max(0.0, (start_at_ns - time.time_ns()) / 1e9)
        for index in range(count):
            due = loop_start + index * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if wait_when_full:
                while in_flight >= max_in_flight:
                    await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
            lags.append(max(0.0, time.monotonic() - due) * 1000)
            if in_flight >= max_in_flight:
                skipped += 1
                continue
            telegram_id, chat_id = plan[index % len(plan)]
            msg_id = f"{prefix}w{self.config.index}-{index}"
            in_flight += 1
            if transport == "ws":
                task = asyncio.create_task(via_socket(telegram_id, chat_id, msg_id))
            else:
                task = asyncio.create_task(via_rest(index, telegram_id, chat_id, msg_id))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        sent_for = time.monotonic() - loop_start
        if tasks:
            await asyncio.wait(set(tasks))
        return {
            "records": records,
            "skipped": skipped,
            "count": count,
            "send_seconds": round(sent_for, 3),
            "lag_ms": summarize(lags).as_dict(),
        }

    async def cmd_count(self) -> Json:
        return {"deliveries": len(self.deliveries), "frames": self.frames}

    async def cmd_collect(self) -> Json:
        deliveries, self.deliveries = self.deliveries, []
        types, self.frame_types = self.frame_types, Counter()
        closed, self.closed = self.closed, []
        pauses, self.gc_pauses = self.gc_pauses, []
        return {
            "deliveries": deliveries,
            "frame_types": dict(types),
            "closed": closed,
            "gc_pause_max_ms": round(max(pauses, default=0.0), 2),
        }

    async def cmd_stat(self) -> Json:
        return {"sockets": len(self.sockets)}

    async def cmd_ai(
        self, telegram_id: int, chat_id: int, runs: int, api: int = 0, give_up_after: float = 60.0
    ) -> Json:
        """Ask the AI `runs` times, one after the other, and time its frames."""
        assert self.http is not None
        socket = self.sockets[telegram_id]
        results: list[Json] = []
        for run in range(runs):
            watch = AiWatch()
            socket.watch = watch.on_frame
            sent_ns = time.time_ns()
            status, body = await self.http.request(
                "POST",
                f"{self.config.http_bases[api]}/api/v1/chats/{chat_id}/messages",
                headers=self.headers(telegram_id),
                body={"text": f"Benchmark question {run}: please answer."},
            )
            if status != 200:
                raise RuntimeError(f"sending to the AI chat: {status} {body[:200]!r}")
            answered_ns = time.time_ns()
            try:
                await asyncio.wait_for(watch.finished, give_up_after)
            finally:
                socket.watch = None
            results.append(watch.result(sent_ns, answered_ns))
        return {"runs": results}

    async def cmd_resume(
        self,
        telegram_id: int,
        chat_id: int,
        after_seq: int,
        target_seq: int,
        runs: int,
        api: int = 0,
        give_up_after: float = 60.0,
    ) -> Json:
        """Connect fresh, `resume` from `after_seq`, and time the replay up to `target_seq`."""
        results: list[Json] = []
        for _ in range(runs):
            socket = await self.open_socket(telegram_id, api)
            watch = ResumeWatch(chat_id, after_seq, target_seq)
            socket.watch = watch.on_frame
            try:
                sent_ns = time.time_ns()
                frame = {"type": "resume", "chats": {str(chat_id): after_seq}}
                await socket.connection.send(json.dumps(frame))
                await asyncio.wait_for(watch.finished, give_up_after)
                results.append(watch.result(sent_ns))
            finally:
                socket.watch = None
                await socket.connection.close()
                if socket.reader is not None:
                    with contextlib.suppress(Exception):
                        await socket.reader
        self.closed.clear()
        return {"runs": results}


class AiWatch:
    """The frames of one AI reply, as the asking client sees them."""

    def __init__(self) -> None:
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.started_ns: int | None = None
        self.first_delta_ns: int | None = None
        self.last_delta_ns: int | None = None
        self.done_ns: int | None = None
        self.persisted_ns: int | None = None
        self.deltas = 0
        self.chars = 0
        self.failure: str | None = None
        self._message_ids: set[int] = set()

    def on_frame(self, type_: str, raw: str, now: int) -> None:
        if self.finished.done():
            return
        if type_ == "ai_reply_started":
            self.started_ns = now
        elif type_ == "ai_reply_delta":
            frame = json.loads(raw)
            self.first_delta_ns = self.first_delta_ns or now
            self.last_delta_ns = now
            self.deltas += 1
            self.chars = max(self.chars, int(frame["offset"]) + len(frame["text"]))
        elif type_ == "ai_reply_done":
            self.done_ns = now
            self._message_ids = set(json.loads(raw)["message_ids"])
        elif type_ == "ai_reply_failed":
            self.failure = str(json.loads(raw).get("code"))
            self.finished.set_result(None)
        elif type_ == "new_message" and self.done_ns is not None:
            self._message_ids.discard(int(json.loads(raw)["message"]["id"]))
            if not self._message_ids:
                self.persisted_ns = now
                self.finished.set_result(None)

    def result(self, sent_ns: int, answered_ns: int) -> Json:
        return {
            "sent_ns": sent_ns,
            "answered_ns": answered_ns,
            "started_ns": self.started_ns,
            "first_delta_ns": self.first_delta_ns,
            "last_delta_ns": self.last_delta_ns,
            "done_ns": self.done_ns,
            "persisted_ns": self.persisted_ns,
            "deltas": self.deltas,
            "chars": self.chars,
            "failure": self.failure,
        }


class ResumeWatch:
    """The replayed events of one chat after a `resume`, and the `resumed` frame."""

    def __init__(self, chat_id: int, after_seq: int, target_seq: int) -> None:
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.chat_id = chat_id
        self.expected = after_seq + 1
        self.target_seq = target_seq
        self.events = 0
        self.out_of_order = 0
        self.last_event_ns: int | None = None
        self.resumed_ns: int | None = None

    def on_frame(self, type_: str, raw: str, now: int) -> None:
        event = _EVENT.match(raw)
        if event is not None and int(event.group(2)) == self.chat_id:
            seq = int(event.group(3))
            self.events += 1
            if seq != self.expected:
                self.out_of_order += 1
            self.expected = seq + 1
            if seq >= self.target_seq:
                self.last_event_ns = now
        elif type_ == "resumed":
            self.resumed_ns = now
        if self.last_event_ns and self.resumed_ns and not self.finished.done():
            self.finished.set_result(None)

    def result(self, sent_ns: int) -> Json:
        assert self.last_event_ns is not None
        assert self.resumed_ns is not None
        return {
            "to_last_event_ms": (self.last_event_ns - sent_ns) / 1e6,
            "to_resumed_ms": (self.resumed_ns - sent_ns) / 1e6,
            "events": self.events,
            "out_of_order": self.out_of_order,
        }


Handler = Callable[..., Awaitable[Json]]


async def _serve(worker: LoadWorker) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: set[asyncio.Task[None]] = set()
    stop = asyncio.Event()

    def answer(message: Json) -> None:
        message["cpu_s"] = time.process_time()
        message["wall_s"] = time.monotonic()
        message["rss_kib"] = self_rss_kib()
        sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    async def handle(request: Json) -> None:
        request_id = request.pop("id")
        name = request.pop("cmd")
        if name == "exit":
            stop.set()
            answer({"id": request_id, "ok": True, "result": {}})
            return
        handler: Handler | None = getattr(worker, f"cmd_{name}", None)
        try:
            if handler is None:
                raise ValueError(f"unknown command {name!r}")
            result = await handler(**request)
        except Exception as exc:
            logger.exception("command %s failed", name)
            answer({"id": request_id, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
            return
        answer({"id": request_id, "ok": True, "result": result})

    async def read_commands() -> None:
        while line := await reader.readline():
            task = asyncio.create_task(handle(json.loads(line)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        stop.set()

    commands = asyncio.create_task(read_commands())
    await stop.wait()
    commands.cancel()
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(commands, *tasks, return_exceptions=True)
    await worker.cmd_disconnect()
    if worker.http is not None:
        await worker.http.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    raise_nofile_limit()
    uvloop.run(_serve(LoadWorker()))


if __name__ == "__main__":
    main()
