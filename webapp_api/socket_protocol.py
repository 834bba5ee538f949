"""uvicorn's WebSocket protocol (websockets-sansio), keeping less for each open socket.

Thousands of sockets sit idle for hours. For each, uvicorn's protocol keeps an `asyncio.Queue`
of received messages (four deques, ~3.3 KiB), an `asyncio.Event` for write flow control
(~0.8 KiB), and the handshake's request and response with their headers (the request's path
carries initData, ~4.5 KiB) for the socket's life. This one keeps a list and, while its reader
waits, one future; makes the Event only while the transport is paused; and lets the handshake
go once it is answered (~8.7 KiB less per socket, measured with tracemalloc). uvicorn is
pinned; tests/ws/test_socket_protocol.py checks what is replaced here.

Close means close: the app's close frame is written at once, past the frames the peer has not
taken yet (flow control would queue it behind them for as long as the peer does not read), and
a peer that has not answered it within `close_timeout` is reset. One whose ping went unanswered
is reset at once: it is not reading, and its unread frames would keep a close from completing
(in the kernel's send buffer, where the app cannot see them) until it reads again. uvicorn's own
close only waits for the send buffer to drain, which a peer that stopped reading never allows.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 5.0
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class _Inbox:
    """What the protocol uses of `asyncio.Queue` (one reader): `put_nowait`, `get`, `empty`."""

    __slots__ = ("_messages", "_waiter")

    def __init__(self) -> None:
        self._messages: list[ASGIReceiveEvent] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, message: ASGIReceiveEvent) -> None:
        self._messages.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._messages

    async def get(self) -> ASGIReceiveEvent:
        while not self._messages:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._messages.pop(0)


class _Writable:
    """`asyncio.Event`'s `wait`, `set` and `clear` for write flow control; the Event exists
    only while the transport is paused."""

    __slots__ = ("_paused",)

    def __init__(self) -> None:
        self._paused: asyncio.Event | None = None

    def set(self) -> None:
        paused, self._paused = self._paused, None
        if paused is not None:
            paused.set()

    def clear(self) -> None:
        if self._paused is None:
            self._paused = asyncio.Event()

    async def wait(self) -> None:
        paused = self._paused
        if paused is not None:
            await paused.wait()


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        close_timeout: float = CLOSE_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Writable()  # type: ignore[assignment]
        self.close_timeout = close_timeout

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] != "websocket.close" or not self.handshake_complete:
            await super().send(message)
            return
        # Nothing else is sent after a close: let it past the flow control.
        self.writable.set()
        await super().send(message)
        self._reset_later()

    def keepalive_timeout(self) -> None:
        if self.close_sent or self.transport.is_closing():
            super().keepalive_timeout()
            return
        # A peer that answers no ping has stopped reading (or is gone). A close frame would wait
        # behind what it has not read, in the kernel's send buffer, where a plain close leaves
        # it until the peer reads again: reset at once, so it reconnects and resumes.
        self.pong_timer = None
        self.pending_ping_payload = None
        logger.warning(
            "WebSocket %s answered no ping within %.1f s: reset",
            self._peer(),
            self.config.ws_ping_timeout,
        )
        self._abort()

    def _reset_later(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(self.close_timeout, self._reset)

    def _reset(self) -> None:
        self.close_timer = None
        if self.disconnected:
            return
        sent = self.conn.close_sent
        logger.warning(
            "WebSocket %s did not take its close frame (code %s) within %.1f s: reset",
            self._peer(),
            sent.code if sent is not None else "-",
            self.close_timeout,
        )
        self._abort()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "-"

    def _abort(self) -> None:
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
        self.transport.abort()

    def start_keepalive(self) -> None:
        # Called once, right after the handshake response is written: the handshake is over.
        # The request stays referenced by the websockets parser, which keeps it for good.
        super().start_keepalive()
        self.request.headers.clear()
        self.request.path = ""
        del self.response


def with_close_timeout(seconds: float) -> Callable[..., LeanWebSocketProtocol]:
    """What uvicorn is given to make each socket's protocol: one whose closing peers are reset
    after `seconds`. A partial of the class, not a class made here: with several workers
    uvicorn pickles it for each worker process."""
    return functools.partial(LeanWebSocketProtocol, close_timeout=seconds)
