"""The server's WebSocket protocol: uvicorn's, keeping less for each open socket."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import connect

from tests.support.server import serve
from webapp_api.socket_protocol import LeanWebSocketProtocol


async def test_an_open_socket_keeps_no_handshake_and_passes_frames_in_order() -> None:
    kept: list[tuple[str, dict[str, str], bool]] = []

    async def echo(_scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        protocol: LeanWebSocketProtocol = send.__self__  # type: ignore[attr-defined]
        request = protocol.request
        kept.append((request.path, dict(request.headers), hasattr(protocol, "response")))
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})

    async with (
        serve(echo, ws=LeanWebSocketProtocol) as server,
        connect(f"{server.ws_url}/ws?init_data=secret", additional_headers={"X-A": "b"}) as ws,
    ):
        for text in ("one", "two", "three"):
            await ws.send(text)
        assert [await ws.recv() for _ in range(3)] == ["one", "two", "three"]
    assert kept == [("", {}, False)]
