"""One client socket: a bounded send queue drained by its own writer task.

Nothing here waits on the client: the hub offers frames without blocking, a full queue drops
ephemeral frames first and then closes the socket with 4008 ("reconnect and resume"). Chat
events are passed on in seq order per chat, once each: duplicates are dropped, and a gap (a
doorbell Redis lost) holds the chat's frames while the hub replays the missing events from the
database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from starlette.websockets import WebSocket, WebSocketState

from ws.protocol import CLOSE_TOO_SLOW

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 5.0
REPLAY_ROOM_TIMEOUT = 10.0


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        user_id: int,
        *,
        queue_size: int,
        on_gap: Callable[[Connection, int], None],
    ) -> None:
        self.websocket = websocket
        self.user_id = user_id
        self._queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self._ephemeral_room = queue_size // 2
        self._on_gap = on_gap
        self._left_chats: set[int] = set()
        self._sent_seq: dict[int, int] = {}
        self._held: dict[int, list[tuple[int, str]]] = {}
        self._writer: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.closed = asyncio.Event()

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever(), name=f"ws-writer-{self.user_id}")

    async def _write_forever(self) -> None:
        try:
            while True:
                await self.websocket.send_text(await self._queue.get())
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer went away; the reader side notices and cleans up
            self.closed.set()

    # -- what the hub and the endpoint offer -------------------------------------------------

    def send(self, frame: str) -> None:
        """A reply to this client (pong, ack, error): never dropped while the socket lives."""
        self._put(frame)

    def offer_ephemeral(self, frame: str) -> None:
        """Typing, presence, AI deltas: dropped when the client is falling behind."""
        if self.close_code is None and self._queue.qsize() < self._ephemeral_room:
            self._queue.put_nowait(frame)

    def offer_event(self, chat_id: int, seq: int, frame: str) -> None:
        if chat_id in self._left_chats:
            return
        held = self._held.get(chat_id)
        if held is not None:
            held.append((seq, frame))
            return
        last = self._sent_seq.get(chat_id)
        if last is not None and seq <= last:
            return
        if last is not None and seq > last + 1:
            self._held[chat_id] = [(seq, frame)]
            self._on_gap(self, chat_id)
            return
        self._sent_seq[chat_id] = seq
        self._put(frame)

    # -- replay (resume, gap filling) ----------------------------------------------------------

    def hold(self, chat_id: int, after_seq: int | None = None) -> int:
        """Start holding the chat's live frames for a replay; returns the seq to replay after."""
        self._held.setdefault(chat_id, [])
        if after_seq is not None:
            self._sent_seq[chat_id] = max(after_seq, self._sent_seq.get(chat_id, 0))
        return self._sent_seq.get(chat_id, 0)

    async def replayed(self, chat_id: int, seq: int, frame: str) -> None:
        """A replayed event. A replay may be longer than the queue: it waits for room (the
        writer drains it), and a client that takes no frames for that long is too slow."""
        if chat_id in self._left_chats or seq <= self._sent_seq.get(chat_id, 0):
            return
        if self.close_code is not None:
            return
        self._sent_seq[chat_id] = seq
        try:
            await asyncio.wait_for(self._queue.put(frame), REPLAY_ROOM_TIMEOUT)
        except TimeoutError:
            self.close(CLOSE_TOO_SLOW)

    def release(self, chat_id: int, *, force: bool = False) -> bool:
        """Pass on the held frames that continue the sequence. Returns False when a gap remains
        (the caller replays again), unless `force` passes them on across the gap."""
        held = sorted(self._held.pop(chat_id, []))
        for index, (seq, frame) in enumerate(held):
            last = self._sent_seq.get(chat_id, 0)
            if seq <= last:
                continue
            if seq > last + 1 and not force:
                self._held[chat_id] = held[index:]
                return False
            self._sent_seq[chat_id] = seq
            self._put(frame)
        return True

    # -- join_chat / leave_chat ----------------------------------------------------------------

    def leave_chat(self, chat_id: int) -> None:
        # Forget the chat's position too: after join_chat it continues from the live edge
        # (a client that wants what it skipped sends `resume`).
        self._left_chats.add(chat_id)
        self._sent_seq.pop(chat_id, None)
        self._held.pop(chat_id, None)

    def join_chat(self, chat_id: int) -> None:
        self._left_chats.discard(chat_id)

    def receives(self, chat_id: int | None) -> bool:
        return chat_id is None or chat_id not in self._left_chats

    # -- shutting down -------------------------------------------------------------------------

    def _put(self, frame: str) -> None:
        if self.close_code is not None:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            logger.info("closing a socket of user %s that fell behind", self.user_id)
            self.close(CLOSE_TOO_SLOW)

    def close(self, code: int) -> None:
        """Close from the server side without waiting here."""
        if self.close_code is not None:
            return
        self.close_code = code
        asyncio.get_running_loop().create_task(self._close(code))

    async def _close(self, code: int) -> None:
        await self.stop_writer()
        if self.websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.websocket.close(code), CLOSE_TIMEOUT_SECONDS)
        self.closed.set()

    async def stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
