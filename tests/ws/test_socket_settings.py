"""The socket's protocol settings, set and observed by a real client: WS_MAX_FRAME_BYTES and
WS_PER_MESSAGE_DEFLATE."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.exceptions import ConnectionClosed

from tests.conftest import make_settings
from tests.support.server import LiveServer, live_server
from tests.support.ws import ws_user
from webapp_api.app import create_app

ServerFactory = Callable[..., AbstractAsyncContextManager[LiveServer]]


@pytest.fixture
def start_server(database_url: str, tmp_dir: Path, engine: AsyncEngine) -> ServerFactory:
    @asynccontextmanager
    async def start(**overrides: object) -> AsyncIterator[LiveServer]:
        app = create_app(make_settings(database_url, tmp_dir, **overrides))
        async with live_server(app) as running:
            yield running

    return start


async def test_frames_are_bounded_by_ws_max_frame_bytes(start_server: ServerFactory) -> None:
    limit = 4096
    async with (
        start_server(ws_max_frame_bytes=limit) as server,
        ws_user(server, 3701, "Vera") as ws,
    ):
        await ws.send(type="ping", padding="x" * (limit - 100))
        assert (await ws.recv())["type"] == "pong"
        await ws.send(type="ping", padding="x" * limit)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


@pytest.mark.parametrize("deflate", [True, False])
async def test_per_message_deflate_is_negotiated_only_when_turned_on(
    start_server: ServerFactory, deflate: bool
) -> None:
    async with (
        start_server(ws_per_message_deflate=deflate) as server,
        ws_user(server, 3702, "Wim") as ws,
    ):
        response = ws.connection.response
        assert response is not None
        extensions = response.headers.get("Sec-WebSocket-Extensions", "")
        await ws.send(type="ping")
        assert (await ws.recv())["type"] == "pong"
    assert ("permessage-deflate" in extensions) is deflate
