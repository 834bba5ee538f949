"""uvicorn's WebSocket protocol (websockets-sansio), keeping less for each open socket.

Thousands of sockets sit idle for hours. For each, uvicorn's protocol keeps an `asyncio.Queue`
of received messages (four deques, ~3.3 KiB), an `asyncio.Event` for write flow control
(~0.8 KiB), and the handshake's request and response with their headers (the request's path
carries initData, ~4.5 KiB) for the socket's life. This one keeps a list and, while its reader
waits, one future; makes the Event only while the transport is paused; and lets the handshake
go once it is answered (~8.7 KiB less per socket, measured with tracemalloc). uvicorn is
pinned; tests/ws/test_socket_protocol.py checks what is replaced here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn._types import ASGIReceiveEvent
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState


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
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Writable()  # type: ignore[assignment]

    def start_keepalive(self) -> None:
        # Called once, right after the handshake response is written: the handshake is over.
        # The request stays referenced by the websockets parser, which keeps it for good.
        super().start_keepalive()
        self.request.headers.clear()
        self.request.path = ""
        del self.response
