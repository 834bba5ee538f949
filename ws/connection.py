"""One client socket: a bounded send queue drained by its own writer task.

Nothing here waits on the client: the hub offers frames without blocking, a full queue drops
ephemeral frames first and then closes the socket with 4008 ("reconnect and resume"), and so
does a writer that could not hand the socket a frame for `send_timeout` (a client that stopped
reading, however little it is sent). The close frame goes out at once, past what the client
has not read (see webapp_api/socket_protocol.py, which resets a peer that does not take it). Chat
events are passed on in seq order per chat, once each: duplicates are dropped, and a gap holds
the chat's frames until the missing events arrive, either late through the broker (the hub waits
a short grace for that) or replayed by the hub from the database.

A new socket does not know where its client stands in any chat: until the client's `resume`
says so (or `resume_grace` passes without one), every chat event is held, neither passed on nor
taken as the chat's position. A chat the socket has no position in (not named by the resume,
joined later) starts at its lowest event held after the hub's gap grace.

A socket mostly sits idle, so it keeps little: a deque and, while its writer waits, one future.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence

from starlette.types import Send

from ws.protocol import CLOSE_TOO_SLOW

logger = logging.getLogger(__name__)


class Connection:
    __slots__ = (
        "_ephemeral_room",
        "_frames",
        "_held",
        "_left_chats",
        "_on_gap",
        "_queue_size",
        "_replays",
        "_resume_grace",
        "_room",
        "_send",
        "_send_timeout",
        "_sent_seq",
        "_settle_timer",
        "_settled",
        "_wakeup",
        "_writer",
        "close_code",
        "user_id",
    )

    def __init__(
        self,
        send: Send,
        user_id: int,
        *,
        queue_size: int,
        send_timeout: float,
        resume_grace: float,
        on_gap: Callable[[Connection, int], None],
    ) -> None:
        self._send = send  # the socket's ASGI send
        self.user_id = user_id
        self._frames: deque[str] = deque()
        self._queue_size = queue_size
        self._send_timeout = send_timeout
        self._ephemeral_room = queue_size // 2
        self._wakeup: asyncio.Future[None] | None = None  # the idle writer waits on it
        self._room: asyncio.Future[None] | None = None  # replays wait on it for room
        self._on_gap = on_gap
        self._left_chats: set[int] = set()
        self._sent_seq: dict[int, int] = {}
        self._held: dict[int, list[tuple[int, str]]] = {}
        self._replays: dict[int, int] = {}  # chat id -> replays running for it
        self._writer: asyncio.Task[None] | None = None
        self._resume_grace = resume_grace
        self._settled = False  # whether the client's positions are known (resume, or grace)
        self._settle_timer: asyncio.TimerHandle | None = None
        self.close_code: int | None = None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever(), name=f"ws-writer-{self.user_id}")
        self._settle_timer = asyncio.get_running_loop().call_later(self._resume_grace, self._settle)

    async def _write_forever(self) -> None:
        frames = self._frames
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not frames:
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    self._wakeup = None
                    continue
                frame = frames.popleft()
                self._made_room()
                async with asyncio.timeout(self._send_timeout):
                    await self._send({"type": "websocket.send", "text": frame})
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self._too_slow(f"took no frame for {self._send_timeout:g} s")
        except Exception:  # the peer went away; the reader side notices and cleans up
            return

    # -- what the hub and the endpoint offer -------------------------------------------------

    def send(self, frame: str) -> None:
        """A reply to this client (pong, ack, error): never dropped while the socket lives."""
        self._put(frame)

    def offer_ephemeral(self, frame: str) -> None:
        """Typing, presence, AI deltas: dropped when the client is falling behind."""
        if self.close_code is None and len(self._frames) < self._ephemeral_room:
            self._push(frame)

    def offer_event(self, chat_id: int, seq: int, frame: str) -> None:
        if chat_id in self._left_chats:
            return
        held = self._held.get(chat_id)
        if held is not None:
            held.append((seq, frame))
            if self._settled and chat_id not in self._replays:
                self.release(chat_id)  # a late event may close the gap by itself
            return
        last = self._sent_seq.get(chat_id)
        if not self._settled or last is None:
            # Where the client stands is not known yet: no event may set the position.
            self._held[chat_id] = [(seq, frame)]
            if self._settled:
                self._on_gap(self, chat_id)
            return
        if seq <= last:
            return
        if seq > last + 1:
            self._held[chat_id] = [(seq, frame)]
            self._on_gap(self, chat_id)
            return
        self._sent_seq[chat_id] = seq
        self._put(frame)

    def waits_for_gap(self, chat_id: int) -> bool:
        """Whether the chat's frames are held for a gap that no replay is filling yet."""
        return self._settled and chat_id in self._held and chat_id not in self._replays

    def gap_grace_over(self, chat_id: int) -> bool:
        """The hub's gap grace is over: a chat with no position starts at its lowest held
        event. Whether a gap remains that a replay must fill."""
        held = self._held.get(chat_id)
        if held and chat_id not in self._sent_seq and chat_id not in self._replays:
            self._sent_seq[chat_id] = min(held)[0] - 1
            self.release(chat_id)
        return self.waits_for_gap(chat_id)

    # -- the client's position -----------------------------------------------------------------

    def resume(self, positions: dict[int, int]) -> None:
        """The client's `resume`: each chat continues after its seq. The chats are held (their
        replays follow, `Hub.replay`) before anything else can run, and the socket is settled."""
        for chat_id, after_seq in positions.items():
            self.hold(chat_id, after_seq)
        self._settle()

    def _settle(self) -> None:
        """The positions are known: chats held with none start at their lowest event."""
        if self._settled:
            return
        self._settled = True
        if self._settle_timer is not None:
            self._settle_timer.cancel()
            self._settle_timer = None
        for chat_id in self._held:
            if chat_id not in self._sent_seq:
                self._on_gap(self, chat_id)

    def chats(self) -> list[int]:
        """The chats this socket has a position in."""
        return list(self._sent_seq)

    def position(self, chat_id: int) -> int | None:
        """The last seq of the chat this socket passed on (or its client said it had)."""
        return self._sent_seq.get(chat_id)

    def forget(self, chat_id: int) -> None:
        """Drop the chat's position and held frames (e.g. a resume of a chat the user is not
        in): its next event starts it afresh."""
        self._sent_seq.pop(chat_id, None)
        self._held.pop(chat_id, None)
        self._replays.pop(chat_id, None)

    # -- replay (resume, gap filling) ----------------------------------------------------------

    def hold(self, chat_id: int, after_seq: int | None = None) -> None:
        """A replay of the chat starts: live frames are held until it ends (`unhold`). Held
        frames never set the position: only `after_seq` (the client's word) or what was sent."""
        self._held.setdefault(chat_id, [])
        self._replays[chat_id] = self._replays.get(chat_id, 0) + 1
        if after_seq is not None:
            self._sent_seq[chat_id] = max(after_seq, self._sent_seq.get(chat_id, 0))

    def replay_position(self, chat_id: int) -> int | None:
        """The seq a replay continues after; None once the socket has no use for it (it left
        the chat or is closing)."""
        if self.close_code is not None or chat_id not in self._held:
            return None
        return self._sent_seq.get(chat_id, 0)

    async def replayed(self, chat_id: int, events: Sequence[tuple[int, str]]) -> None:
        """Replayed events, in seq order. A replay may be longer than the queue: it waits for
        room (the writer drains it), and a client that takes no frames for that long is too
        slow."""
        for seq, frame in events:
            if seq <= self._sent_seq.get(chat_id, 0):
                continue
            if not await self._wait_for_room() or self.replay_position(chat_id) is None:
                return
            # Checked again after waiting: another replay may have sent it meanwhile.
            if seq > self._sent_seq.get(chat_id, 0):
                self._sent_seq[chat_id] = seq
                self._push(frame)

    def unhold(self, chat_id: int, *, force: bool = False) -> bool:
        """End this replay if the held frames continue the sequence (or, with `force`, across
        a gap: the client can resume past it). False: a gap remains, the replay goes on."""
        running = self._replays.get(chat_id, 0)
        if running > 1:
            self._replays[chat_id] = running - 1  # the last replay running releases
            return True
        if not self.release(chat_id, force=force):
            return False
        self._replays.pop(chat_id, None)
        return True

    def release(self, chat_id: int, *, force: bool = False) -> bool:
        """Pass on the held frames that continue the sequence. Returns False when a gap remains
        (they stay held), unless `force` passes them on across the gap."""
        held = sorted(self._held.pop(chat_id, []))
        for index, (seq, frame) in enumerate(held):
            last = self._sent_seq.get(chat_id, 0)
            if seq <= last:
                continue
            if seq > last + 1 and not force:
                self._held[chat_id] = held[index:]
                return False
            self._sent_seq[chat_id] = seq
            # Held back by the server, not behind by the client's fault: not bounded here
            # (live frames that follow are, so a client that cannot take them is closed).
            self._put(frame, bounded=False)
        return True

    # -- join_chat / leave_chat ----------------------------------------------------------------

    def leave_chat(self, chat_id: int) -> None:
        # Forget the chat's position too: after join_chat it continues from the live edge
        # (a client that wants what it skipped sends `resume`).
        self._left_chats.add(chat_id)
        self.forget(chat_id)

    def join_chat(self, chat_id: int) -> None:
        self._left_chats.discard(chat_id)

    def receives(self, chat_id: int | None) -> bool:
        return chat_id is None or chat_id not in self._left_chats

    # -- the queue -----------------------------------------------------------------------------

    def _put(self, frame: str, *, bounded: bool = True) -> None:
        if self.close_code is not None:
            return
        if bounded and len(self._frames) >= self._queue_size:
            self._too_slow(f"{self._queue_size} frames waiting")
            return
        self._push(frame)

    def _too_slow(self, reason: str) -> None:
        logger.warning(
            "closing a socket of user %s with %s: it fell behind (%s)",
            self.user_id,
            CLOSE_TOO_SLOW,
            reason,
        )
        self.close(CLOSE_TOO_SLOW)

    def _push(self, frame: str) -> None:
        self._frames.append(frame)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _wait_for_room(self) -> bool:
        """Whether the queue has room; False when it will not get any (the socket is closing,
        or has no writer any more). A writer that makes no progress closes the socket within
        `send_timeout`, which wakes this."""
        while len(self._frames) >= self._queue_size:
            if self.close_code is not None or self._writer is None:
                return False
            if self._room is None:
                self._room = asyncio.get_running_loop().create_future()
            # Shared by every waiting replay: one giving up must not cancel it.
            await asyncio.shield(self._room)
        return self.close_code is None

    def _made_room(self) -> None:
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)

    # -- shutting down -------------------------------------------------------------------------

    def close(self, code: int) -> None:
        """Close from the server side without waiting here."""
        if self.close_code is not None:
            return
        self.close_code = code
        asyncio.get_running_loop().create_task(self._close(code))

    async def _close(self, code: int) -> None:
        await self.stop_writer()
        with contextlib.suppress(Exception):  # the peer may be gone already
            # Written at once; the server resets a peer that does not answer it in time.
            await self._send({"type": "websocket.close", "code": code})

    async def stop_writer(self) -> None:
        if self._settle_timer is not None:
            self._settle_timer.cancel()
            self._settle_timer = None
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
            self._made_room()  # waiting replays give up
