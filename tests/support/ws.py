"""A real WebSocket client for tests (the `websockets` library) with frame helpers."""

from __future__ import annotations

import asyncio
import json
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

    async def send(self, **frame: Any) -> None:
        await self.connection.send(json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> Frame:
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

    async def no_frame(self, type_: str, within: float = 0.3) -> None:
        """Assert that no frame of this type arrives within a short window."""
        try:
            frame = await self.wait_for(type_, timeout=within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {frame}")


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
