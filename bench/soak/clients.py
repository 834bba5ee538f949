"""One simulated Mini App client per user, as the README's protocol asks clients to behave: one
socket, `resume` with its per-chat seqs right after `connection_established`, a reconnect (to
either API process) after any drop. It only records what it gets: it never fetches a gap itself,
so anything the server failed to deliver shows.

Its position in a chat is the highest seq it received. A stream that jumps from S to N therefore
loses S+1..N-1 for good, as it would for a real client that trusts the server's promise."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from bench.client import init_data
from bench.load import first_name

# A phone on a slow link, not a loopback socket with megabytes of buffers: a client that stops
# reading makes the server's queue for it fill within its pause.
RECEIVE_BUFFER = 16 * 1024
# Linux's TCP states (include/net/tcp_states.h) as /proc/net/tcp shows them.
TCP_STATES = {
    1: "established",
    4: "fin_wait1",
    5: "fin_wait2",
    6: "time_wait",
    7: "close",
    8: "close_wait",
    9: "last_ack",
    11: "closing",
}
OPEN_TIMEOUT = 10.0
ACK_TIMEOUT = 10.0

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Arrival:
    chat_id: int
    seq: int
    at: float
    socket: int


@dataclass(eq=False)
class SocketLog:
    """One socket of one client, from `connection_established` to its end."""

    id: int
    user: int
    api: int
    opened_at: float
    resume_from: dict[int, int]
    arrivals: list[Arrival] = field(default_factory=list)
    resumed: dict[int, int] | None = None  # what its `resumed` frame said
    resumed_at: float | None = None
    closed_at: float | None = None
    close_code: int | None = None
    aborted: bool = False  # by the soak: a TCP abort, no close frame
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def as_dict(self) -> Json:
        return {
            "id": self.id,
            "user": self.user,
            "api": self.api,
            "opened_at": self.opened_at,
            "resume_from": self.resume_from,
            "events": len(self.arrivals),
            "resumed": self.resumed,
            "resumed_at": self.resumed_at,
            "closed_at": self.closed_at,
            "close_code": self.close_code,
            "aborted": self.aborted,
        }


SendOutcome = tuple[str, int | None, int | None]  # outcome, message id, seq
StatusRecorder = Callable[[str, int, bytes], None]  # request, status, body


class SoakClient:
    def __init__(
        self,
        index: int,
        telegram_id: int,
        chat_ids: list[int],
        ws_bases: list[str],
        rng: random.Random,
        socket_ids: itertools.count[int],
        sockets: list[SocketLog],
        refused: StatusRecorder,
    ) -> None:
        self.index = index
        self.telegram_id = telegram_id
        self.chat_ids = chat_ids
        self.position = dict.fromkeys(chat_ids, 0)
        self.arrivals: list[Arrival] = []
        self.connect_failures = 0
        self._ws_bases = ws_bases
        self._rng = rng
        self._socket_ids = socket_ids
        self._sockets = sockets
        self._refused = refused
        self._connection: ClientConnection | None = None
        self._sock: socket.socket | None = None
        self.log: SocketLog | None = None
        self._reading = asyncio.Event()
        self._reading.set()
        self._acks: dict[str, asyncio.Future[SendOutcome]] = {}
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    # -- life --------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"soak-client-{self.index}")

    async def stop(self) -> None:
        self._stopping = True
        self._reading.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        api = self._rng.randrange(len(self._ws_bases))
        while not self._stopping:
            try:
                connection, log = await self._open(api)
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, ValueError) as exc:
                # That process is down (or still starting): try the other one.
                if isinstance(exc, InvalidStatus):
                    response = exc.response
                    self._refused("GET /ws", response.status_code, bytes(response.body or b""))
                self.connect_failures += 1
                api = (api + 1) % len(self._ws_bases)
                await asyncio.sleep(self._rng.uniform(0.1, 0.5))
                continue
            await self._read(connection, log)
            if not self._stopping:
                api = self._rng.randrange(len(self._ws_bases))
                await asyncio.sleep(self._rng.uniform(0.05, 0.5))

    async def _open(self, api: int) -> tuple[ClientConnection, SocketLog]:
        query = quote(init_data(self.telegram_id, first_name(self.telegram_id)))
        url = f"{self._ws_bases[api]}/ws?init_data={query}"
        address = urlsplit(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setblocking(False)
        try:
            loop = asyncio.get_running_loop()
            target = (address.hostname, address.port)
            await asyncio.wait_for(loop.sock_connect(sock, target), OPEN_TIMEOUT)
            connection = await connect(
                url,
                sock=sock,
                open_timeout=OPEN_TIMEOUT,
                close_timeout=2,
                ping_interval=None,  # the server pings; the client answers while it reads
                compression=None,
                max_size=1 << 22,
                max_queue=16,
                proxy=None,
            )
        except BaseException:
            sock.close()
            raise
        try:
            hello = json.loads(await asyncio.wait_for(connection.recv(), OPEN_TIMEOUT))
            if hello.get("type") != "connection_established":
                raise ValueError(f"unexpected first frame {hello.get('type')}")
            log = SocketLog(
                id=next(self._socket_ids),
                user=self.index,
                api=api,
                opened_at=time.time(),
                resume_from=dict(self.position),
            )
            resume = {"type": "resume", "chats": {str(c): s for c, s in self.position.items()}}
            await connection.send(json.dumps(resume))
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.close()
            raise
        self._sockets.append(log)
        self._connection, self.log, self._sock = connection, log, sock
        self.connected.set()
        return connection, log

    async def _read(self, connection: ClientConnection, log: SocketLog) -> None:
        try:
            while True:
                await self._reading.wait()
                raw = await connection.recv()
                if isinstance(raw, str):
                    self._on_frame(log, json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            self.connected.clear()
            self._connection = None
            log.closed_at = time.time()
            log.close_code = connection.close_code
            log.ended.set()
            for future in self._acks.values():
                if not future.done():
                    future.set_result(("socket_closed", None, None))

    def _on_frame(self, log: SocketLog, frame: Json) -> None:
        kind = frame.get("type")
        if kind in ("ack", "error") and "client_msg_id" in frame:
            future = self._acks.get(str(frame["client_msg_id"]))
            if future is not None and not future.done():
                if kind == "ack":
                    future.set_result(("ok", int(frame["message_id"]), int(frame["seq"])))
                else:
                    future.set_result((f"ws_{frame.get('code')}", None, None))
        elif kind == "resumed":
            log.resumed = {int(chat): int(seq) for chat, seq in frame["chats"].items()}
            log.resumed_at = time.time()
        elif isinstance(frame.get("seq"), int) and isinstance(frame.get("chat_id"), int):
            arrival = Arrival(frame["chat_id"], frame["seq"], time.time(), log.id)
            log.arrivals.append(arrival)
            self.arrivals.append(arrival)
            if arrival.seq > self.position.get(arrival.chat_id, 0):
                self.position[arrival.chat_id] = arrival.seq

    # -- what the faults and the sends do with it ----------------------------------------------

    @property
    def reading(self) -> bool:
        return self._reading.is_set()

    def abort(self) -> bool:
        """Cut the socket as a lost network does: no close frame, a TCP reset."""
        connection, log = self._connection, self.log
        if connection is None or log is None or not self.reading:
            return False
        log.aborted = True
        connection.transport.abort()
        return True

    def stop_reading(self) -> SocketLog | None:
        """Stop taking frames off the socket (its buffers fill); returns the socket."""
        self._reading.clear()
        return self.log if self._connection is not None else None

    def server_side_state(self) -> str | None:
        """The state of the server's end of this client's TCP connection, as the kernel has it:
        "established" while the server holds it, "fin_wait1" once the server closed it with
        data the client has not read still queued, "gone" once reset. None without a socket.

        The client cannot tell by itself: its own end stays established until it reads what
        was queued before the server's FIN or reset."""
        sock = self._sock
        if sock is None or sock.fileno() < 0:
            return None
        try:
            client_port = sock.getsockname()[1]
            server_port = sock.getpeername()[1]
        except OSError:  # the client's end learnt of the reset: no peer any more
            return "gone"
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            local, remote, state = line.split()[1:4]
            if (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)) == (
                server_port,
                client_port,
            ):
                code = int(state, 16)
                return TCP_STATES.get(code, f"state {code}")
        return "gone"

    def read_again(self) -> None:
        self._reading.set()

    async def send_message(self, chat_id: int, text: str, client_msg_id: str) -> SendOutcome:
        """`send_message` on this client's socket, and its `ack` or `error`."""
        connection = self._connection
        if connection is None or not self.reading:
            return ("no_socket", None, None)
        future: asyncio.Future[SendOutcome] = asyncio.get_running_loop().create_future()
        self._acks[client_msg_id] = future
        frame = {
            "type": "send_message",
            "chat_id": chat_id,
            "text": text,
            "client_msg_id": client_msg_id,
        }
        try:
            await connection.send(json.dumps(frame))
            return await asyncio.wait_for(future, ACK_TIMEOUT)
        except ConnectionClosed:
            return ("socket_closed", None, None)
        except TimeoutError:
            return ("ack_timeout", None, None)
        finally:
            self._acks.pop(client_msg_id, None)
