"""A real WebSocket client for tests (the `websockets` library) with frame helpers."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect

from tests.support.server import LiveServer
from tests.support.telegram import init_data_for

Frame = dict[str, Any]


class WsClient:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._unread: deque[Frame] = deque()

    async def send(self, **frame: Any) -> None:
        await self.connection.send(json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> Frame:
        if self._unread:
            return self._unread.popleft()
        raw = await asyncio.wait_for(self.connection.recv(), timeout)
        frame: Frame = json.loads(raw)
        return frame

    async def wait_for(
        self, type_: str, predicate: Callable[[Frame], bool] = lambda _f: True, timeout: float = 5.0
    ) -> Frame:
        """The next frame of this type that matches, skipping others."""

        async def find() -> Frame:
            while True:
                frame = await self.recv(timeout)
                if frame["type"] == type_ and predicate(frame):
                    return frame

        return await asyncio.wait_for(find(), timeout)

    async def collect(self, count: int, type_: str, timeout: float = 10.0) -> list[Frame]:
        frames: list[Frame] = []

        async def gather() -> None:
            while len(frames) < count:
                frame = await self.recv(timeout)
                if frame["type"] == type_:
                    frames.append(frame)

        await asyncio.wait_for(gather(), timeout)
        return frames

    async def none_before(
        self,
        type_: str,
        marker: Callable[[Frame], bool],
        *,
        where: Callable[[Frame], bool] = lambda _f: True,
        timeout: float = 10.0,
    ) -> None:
        """Asserts that no frame of this type (and `where`) comes before the marker: a frame
        that must follow any such one (a later event of the same chat; for an ephemeral frame,
        which is never held back, any later event). An absence proven in order, never by
        waiting. What it reads stays unread for the test."""
        frames: list[Frame] = []
        async with asyncio.timeout(timeout):
            while not marker(frame := await self.recv(timeout)):
                frames.append(frame)
        self._unread.extendleft(reversed([*frames, frame]))
        unexpected = [f for f in frames if f["type"] == type_ and where(f)]
        assert not unexpected, unexpected


def new_message(message_id: int) -> Callable[[Frame], bool]:
    """A marker: the new_message frame of this message."""
    return lambda frame: frame["type"] == "new_message" and frame["message"]["id"] == message_id


def ws_url_for(server: LiveServer, telegram_id: int, first_name: str = "Test", **kw: Any) -> str:
    return f"{server.ws_url}/ws?init_data={quote(init_data_for(telegram_id, first_name, **kw))}"


@asynccontextmanager
async def ws_connect(url: str, **options: Any) -> AsyncIterator[WsClient]:
    async with connect(url, open_timeout=5, close_timeout=2, **options) as connection:
        yield WsClient(connection)


@asynccontextmanager
async def ws_user(
    server: LiveServer, telegram_id: int, first_name: str = "Test", **kw: Any
) -> AsyncIterator[WsClient]:
    """A connected, authenticated socket, past its connection_established frame."""
    async with ws_connect(ws_url_for(server, telegram_id, first_name, **kw)) as client:
        hello = await client.recv()
        assert hello["type"] == "connection_established"
        yield client
