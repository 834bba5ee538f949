"""The connection hub of one API process.

The hub subscribes to the broker's route of each user with a socket here (and only those), and
hands what arrives to that user's sockets. A user's route is live before their socket's
`connection_established` goes out, so whatever the client's `resume` does not find in the
database yet reaches the socket live. When the broker restores routes it had lost, their
sockets are resumed from the database. Presence and typing are ephemeral: they travel the
same way but are never stored.

Sockets close when their credentials end: a revocation (a session ended, a user banned) is an
envelope for the hubs of every process, and a socket signed in with an access token closes when
that token expires.

A socket that sees a chat's seq jump holds that chat's frames. Usually the missing event is only
late (published by another process, still in Redis while a local one overtook it), so the hub
waits `gap_grace` before it reads the database, and then reads once for all the process's
sockets of that chat whose gap is still open. A socket with no position in a chat yet holds its
first events for the same grace, so that a late earlier one still comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from datetime import UTC, datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Send

from core.broker import Broker, Unsubscribe
from core.db import read_session, unit_of_work
from core.envelope import Envelope, encode_envelope, encode_frame, routed_user, user_route
from core.presence import MemoryPresence, PresenceStore
from services import audience, frames
from services.auth import REVOCATION_SERVICE, Revocation
from services.events import encoded_events_after
from ws.connection import Connection
from ws.protocol import CLOSE_GOING_AWAY, CLOSE_SESSION_ENDED, CLOSE_TOKEN_EXPIRED

logger = logging.getLogger(__name__)

REPLAY_PAGE = 500
REPLAY_MAX_ROUNDS = 20
TYPING_MIN_INTERVAL_SECONDS = 2.0


class Hub:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: Broker,
        *,
        queue_size: int,
        send_timeout: float,
        presence_grace: float,
        typing_ttl: float,
        gap_grace: float,
        resume_grace: float,
        presence_max_group_size: int,
        presence_store: PresenceStore | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._broker = broker
        self._presence_store = presence_store or MemoryPresence()
        self.queue_size = queue_size
        self._send_timeout = send_timeout
        self._presence_grace = presence_grace
        self._typing_ttl = typing_ttl
        self._gap_grace = gap_grace
        self._resume_grace = resume_grace
        self._presence_max_group_size = presence_max_group_size
        self._by_user: dict[int, set[Connection]] = defaultdict(set)
        self._going_offline: dict[int, asyncio.TimerHandle] = {}
        self._typing_expiry: dict[tuple[int, int], asyncio.TimerHandle] = {}
        self._typing_sent_at: dict[tuple[int, int], float] = {}
        self._gaps: dict[int, set[Connection]] = {}  # chat id -> sockets waiting out a gap
        self._by_session: dict[str, set[Connection]] = {}  # sockets signed in with a token
        self._session_of: dict[Connection, str] = {}
        self._token_expiry: dict[Connection, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._routes: dict[int, asyncio.Future[Unsubscribe]] = {}  # user id -> its route
        self._stop_listening = (
            broker.add_listener(self._on_process_envelope),
            broker.on_restored(self._routes_restored),
        )

    def connections_of(self, user_id: int) -> list[Connection]:
        return list(self._by_user.get(user_id, ()))

    @property
    def chats_with_gaps(self) -> int:
        """Chats whose gaps this process is waiting out or replaying."""
        return len(self._gaps)

    async def close(self) -> None:
        for stop in self._stop_listening:
            stop()
        for handle in (
            *self._going_offline.values(),
            *self._typing_expiry.values(),
            *self._token_expiry.values(),
        ):
            handle.cancel()
        for connections in list(self._by_user.values()):
            for connection in list(connections):
                connection.close(CLOSE_GOING_AWAY)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _spawn(self, coroutine: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("hub task failed", exc_info=task.exception())

    # -- delivery ----------------------------------------------------------------------------

    def _on_process_envelope(self, envelope: Envelope) -> None:
        if envelope.service == REVOCATION_SERVICE:
            self._revoke(Revocation.of_frame(envelope.frame))

    def _deliver(self, user_id: int, envelope: Envelope) -> None:
        """An envelope on the user's route: to each of their sockets here."""
        frame: str | None = None
        for connection in self._by_user.get(user_id, ()):
            if not connection.receives(envelope.chat_id):
                continue
            frame = frame or envelope.frame.decode()
            if envelope.seq is None or envelope.chat_id is None:
                connection.offer_ephemeral(frame)
            else:
                connection.offer_event(envelope.chat_id, envelope.seq, frame)

    async def _route(self, user_id: int) -> None:
        """Subscribe to the user's route unless that is done or under way; returns once the
        route is live."""
        route = self._routes.get(user_id)
        if route is None:
            route = self._routes[user_id] = asyncio.ensure_future(
                self._broker.subscribe(user_route(user_id), partial(self._deliver, user_id))
            )
        await asyncio.shield(route)

    async def _unroute(self, user_id: int) -> None:
        route = self._routes.pop(user_id, None)
        if route is not None:
            unsubscribe = await route
            await unsubscribe()

    def _routes_restored(self, routes: set[str]) -> None:
        """The broker lost these routes for a while: their sockets may have missed events, and
        continue from the database (each chat replayed once for all of them)."""
        by_chat: dict[int, list[Connection]] = defaultdict(list)
        for route in routes:
            user_id = routed_user(route)
            for connection in self._by_user.get(user_id, ()) if user_id is not None else ():
                for chat_id in connection.chats():
                    connection.hold(chat_id)
                    by_chat[chat_id].append(connection)
        for chat_id, connections in by_chat.items():
            self._spawn(self._replay(connections, chat_id), "resume-restored")

    async def publish_ephemeral(
        self, user_ids: set[int], frame: dict[str, object], *, chat_id: int | None = None
    ) -> None:
        if user_ids:
            await self._broker.publish(
                encode_envelope(user_ids, encode_frame(frame), chat_id=chat_id)
            )

    # -- connections and presence --------------------------------------------------------------

    def new_connection(self, send: Send, user_id: int) -> Connection:
        """A connection writing to the socket's ASGI `send`."""
        return Connection(
            send,
            user_id,
            queue_size=self.queue_size,
            send_timeout=self._send_timeout,
            resume_grace=self._resume_grace,
            on_gap=self._gap_seen,
        )

    async def register(self, connection: Connection) -> None:
        user_id = connection.user_id
        first = not self._by_user.get(user_id)
        self._by_user[user_id].add(connection)
        # Routed and counted as online before the client can see connection_established and
        # act on it (its writer starts last).
        await self._route(user_id)
        await self._presence_store.connected(user_id)
        connection.start()
        pending_offline = self._going_offline.pop(user_id, None)
        if pending_offline is not None:
            pending_offline.cancel()  # a quick reconnect: nobody saw them leave
        elif first:
            await self._announce(user_id, is_online=True)

    async def unregister(self, connection: Connection) -> None:
        user_id = connection.user_id
        connections = self._by_user.get(user_id)
        if connections is not None and connection in connections:
            await self._presence_store.disconnected(user_id)
            connections.discard(connection)
            if not connections:
                del self._by_user[user_id]
                self._going_offline[user_id] = asyncio.get_running_loop().call_later(
                    self._presence_grace, self._went_offline, user_id
                )
                await self._unroute(user_id)
        self._forget_credentials(connection)
        await connection.stop_writer()
        for waiting in self._gaps.values():
            waiting.discard(connection)
        for key in [key for key in self._typing_expiry if key[0] == user_id]:
            if not self._by_user.get(user_id):
                self._typing_expiry.pop(key).cancel()
                self._spawn(self._send_typing(user_id, key[1], False), "typing-stop")

    # -- credentials -----------------------------------------------------------------------------

    def watch_credentials(
        self, connection: Connection, *, session_id: str | None, expires_at: datetime | None
    ) -> None:
        """Close the socket with 4003 when its session ends (on whichever process it is ended)
        and with 4002 when the access token it was opened with expires."""
        if session_id is not None:
            self._by_session.setdefault(session_id, set()).add(connection)
            self._session_of[connection] = session_id
        if expires_at is not None:
            delay = max(0.0, (expires_at - datetime.now(UTC)).total_seconds())
            self._token_expiry[connection] = asyncio.get_running_loop().call_later(
                delay, connection.close, CLOSE_TOKEN_EXPIRED
            )

    def _forget_credentials(self, connection: Connection) -> None:
        expiry = self._token_expiry.pop(connection, None)
        if expiry is not None:
            expiry.cancel()
        session_id = self._session_of.pop(connection, None)
        if session_id is not None:
            connections = self._by_session[session_id]
            connections.discard(connection)
            if not connections:
                del self._by_session[session_id]

    def _revoke(self, revocation: Revocation) -> None:
        closing = [
            *(c for sid in revocation.session_ids for c in self._by_session.get(sid, ())),
            *(c for uid in revocation.user_ids for c in self._by_user.get(uid, ())),
        ]
        for connection in closing:
            connection.close(CLOSE_SESSION_ENDED)

    def _went_offline(self, user_id: int) -> None:
        self._going_offline.pop(user_id, None)
        if not self._by_user.get(user_id):
            self._spawn(self._announce(user_id, is_online=False), "presence-offline")

    async def _announce(self, user_id: int, *, is_online: bool) -> None:
        now = datetime.now(UTC)
        async with unit_of_work(self._sessionmaker, self._broker) as session:
            if not is_online:
                await audience.touch_last_seen(session, user_id, now)
            peers = await audience.peers_of(
                session, user_id, max_group_size=self._presence_max_group_size
            )
        await self.publish_ephemeral(
            peers, frames.user_status(user_id, is_online=is_online, last_seen_at=now)
        )

    # -- typing ----------------------------------------------------------------------------------

    async def typing(self, user_id: int, chat_id: int, is_typing: bool) -> None:
        """Forward a typing state, at most every couple of seconds; it expires by itself."""
        key = (user_id, chat_id)
        expiry = self._typing_expiry.pop(key, None)
        if expiry is not None:
            expiry.cancel()
        if is_typing:
            self._typing_expiry[key] = asyncio.get_running_loop().call_later(
                self._typing_ttl, self._typing_expired, key
            )
            now = time.monotonic()
            if expiry is not None and now - self._typing_sent_at.get(key, 0) < (
                TYPING_MIN_INTERVAL_SECONDS
            ):
                return
            self._typing_sent_at[key] = now
        elif expiry is None:
            return  # not typing: nothing to stop
        await self._send_typing(user_id, chat_id, is_typing)

    def _typing_expired(self, key: tuple[int, int]) -> None:
        self._typing_expiry.pop(key, None)
        self._spawn(self._send_typing(key[0], key[1], False), "typing-expired")

    async def _send_typing(self, user_id: int, chat_id: int, is_typing: bool) -> None:
        async with read_session(self._sessionmaker) as session:
            members = await audience.chat_member_ids(session, chat_id)
        members.discard(user_id)
        expires_in = self._typing_ttl if is_typing else 0
        await self.publish_ephemeral(
            members,
            frames.typing(chat_id, user_id, is_typing=is_typing, expires_in=expires_in),
            chat_id=chat_id,
        )

    # -- replay ----------------------------------------------------------------------------------

    async def replay(self, connection: Connection, chat_id: int) -> None:
        """Send the chat's events after the socket's position from the database, then continue
        live. The chat is held already (`Connection.resume`), so live frames wait and the seam
        has neither a gap nor a duplicate."""
        await self._replay([connection], chat_id)

    async def _replay(self, connections: list[Connection], chat_id: int) -> None:
        """Replay to sockets that hold the chat (`Connection.hold`): each page is read once,
        from the lowest position any of them needs, and each skips what it already has."""
        pending = connections
        try:
            for _ in range(REPLAY_MAX_ROUNDS):
                positions = {
                    c: position
                    for c in pending
                    if (position := c.replay_position(chat_id)) is not None
                }
                pending = list(positions)
                if not pending:
                    return
                start = min(positions.values())
                async with read_session(self._sessionmaker) as session:
                    events = await encoded_events_after(session, chat_id, start, REPLAY_PAGE)
                last_page = len(events) < REPLAY_PAGE
                # Concurrently: a socket waiting for room in its queue delays no other.
                done = await asyncio.gather(
                    *(_replay_page(c, chat_id, events, last_page=last_page) for c in pending)
                )
                pending = [c for c, finished in zip(pending, done, strict=True) if not finished]
        finally:
            # Whatever is still held goes out in order; the client can resume past a gap.
            for connection in pending:
                connection.unhold(chat_id, force=True)

    def _gap_seen(self, connection: Connection, chat_id: int) -> None:
        waiting = self._gaps.get(chat_id)
        if waiting is None:
            waiting = self._gaps[chat_id] = set()
            self._spawn(self._fill_gaps(chat_id), "gap-fill")
        waiting.add(connection)

    async def _fill_gaps(self, chat_id: int) -> None:
        """Give late events `gap_grace` to arrive through the broker, then replay to the
        sockets whose gap is still open; gaps seen meanwhile get their own grace next round."""
        try:
            while self._gaps[chat_id]:
                await asyncio.sleep(self._gap_grace)
                waiting, self._gaps[chat_id] = self._gaps[chat_id], set()
                gapped = [c for c in waiting if c.gap_grace_over(chat_id)]
                for connection in gapped:
                    connection.hold(chat_id)
                await self._replay(gapped, chat_id)
        finally:
            # Empty unless the replay failed: then nothing may stay held for good.
            for connection in self._gaps.pop(chat_id):
                if connection.waits_for_gap(chat_id):
                    connection.release(chat_id, force=True)


async def _replay_page(
    connection: Connection, chat_id: int, events: list[tuple[int, str]], *, last_page: bool
) -> bool:
    """Whether the socket continues live after this page."""
    await connection.replayed(chat_id, events)
    return last_page and connection.unhold(chat_id)
