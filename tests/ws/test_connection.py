"""Connecting, authenticating, and the frames every client may send."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Message, Receive, Scope, Send
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.logging import RedactingFilter
from core.settings import Settings
from tests.conftest import make_settings
from tests.support.api import sign_up
from tests.support.server import LiveServer, live_server
from tests.support.telegram import init_data_for
from tests.support.ws import ws_connect, ws_url_for, ws_user
from webapp_api.app import create_app
from webapp_api.middleware import RequestIdMiddleware


async def test_init_data_in_the_query_string_connects_and_creates_the_user(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    async with ws_connect(ws_url_for(server, 31, "Zoe", username="zoe")) as ws:
        hello = await ws.recv()
    assert hello["type"] == "connection_established"
    assert "server_time" in hello
    me = await client.get("/api/v1/me", headers={"X-Telegram-Init-Data": init_data_for(31, "Zoe")})
    assert me.json()["id"] == hello["user_id"]


async def test_session_token_in_the_query_string_connects(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    tokens = (
        await client.post("/api/v1/auth/telegram", json={"init_data": init_data_for(32, "Yan")})
    ).json()
    async with ws_connect(f"{server.ws_url}/ws?token={tokens['access_token']}") as ws:
        hello = await ws.recv()
    assert hello == {**hello, "type": "connection_established", "user_id": tokens["user"]["id"]}


@pytest.mark.parametrize(
    "query",
    [
        "init_data=" + quote("user=%7B%7D&auth_date=1&hash=00"),
        "init_data=" + quote(init_data_for(1, "Old", auth_date=1)),
        "token=not-a-token",
    ],
)
async def test_bad_credentials_refuse_the_handshake(server: LiveServer, query: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(f"{server.ws_url}/ws?{query}"):
            pass
    assert refused.value.response.status_code == 403


async def test_auth_by_first_frame(server: LiveServer) -> None:
    async with ws_connect(f"{server.ws_url}/ws") as ws:
        await ws.send(type="auth", init_data=init_data_for(33, "Xia"))
        hello = await ws.recv()
        assert hello["type"] == "connection_established"
        await ws.send(type="ping")
        assert (await ws.recv())["type"] == "pong"


@pytest.mark.parametrize(
    "first",
    [
        {"type": "auth", "init_data": "hash=abc"},
        {"type": "auth"},
        {"type": "ping"},
        "not json",
    ],
)
async def test_a_bad_first_frame_closes_with_4001(server: LiveServer, first: object) -> None:
    async with ws_connect(f"{server.ws_url}/ws") as ws:
        await ws.connection.send(first if isinstance(first, str) else json.dumps(first))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4001


async def test_no_auth_frame_in_time_closes_with_4001(database_url: str, tmp_dir: Path) -> None:
    settings = make_settings(database_url, tmp_dir, ws_auth_timeout=0.2)
    async with live_server(create_app(settings)) as quick, ws_connect(f"{quick.ws_url}/ws") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4001


async def test_bad_frames_get_an_error_and_the_connection_stays(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    stranger = await sign_up(client, 34, "Wes")
    owner = await sign_up(client, 35, "Val")
    group = await owner.create_group("secret")
    async with ws_user(server, 34, "Wes") as ws:
        await ws.connection.send("{not json")
        assert (await ws.recv())["code"] == "malformed_frame"
        await ws.send(type="dance")
        assert (await ws.recv())["code"] == "unknown_type"
        await ws.send(type="typing")
        assert (await ws.recv())["code"] == "invalid_frame"
        await ws.send(type="typing", chat_id=group["id"], is_typing=True)
        error = await ws.recv()
        assert (error["code"], error["chat_id"]) == ("chat_not_found", group["id"])
        await ws.send(type="send_message", chat_id=group["id"], text="x", client_msg_id="m1")
        error = await ws.recv()
        assert (error["type"], error["code"], error["client_msg_id"]) == (
            "error",
            "chat_not_found",
            "m1",
        )
        await ws.send(type="auth", init_data="x")
        assert (await ws.recv())["code"] == "already_authenticated"
        await ws.send(type="ping")
        assert (await ws.recv())["type"] == "pong"
    assert stranger.id != owner.id


async def test_a_frame_over_the_limit_closes_with_1009(
    server: LiveServer, settings: Settings
) -> None:
    async with ws_user(server, 36, "Uma") as ws:
        await ws.send(type="ping", padding="x" * settings.ws_max_frame_bytes)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_a_dead_peer_is_closed_by_the_server_pings(
    database_url: str, tmp_dir: Path, engine: AsyncEngine
) -> None:
    """A peer that stops answering pings is dropped after interval + timeout."""
    settings = make_settings(
        database_url, tmp_dir, ws_ping_interval=0.1, ws_ping_timeout=0.1, ws_close_timeout=0.2
    )
    app = create_app(settings)
    async with live_server(app) as quick:
        # A raw TCP peer that completes the handshake and then never answers anything.
        reader, writer = await asyncio.open_connection(quick.host, quick.port)
        path = f"/ws?init_data={quote(init_data_for(37, 'Tom'))}"
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {quick.host}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        assert b"101" in await reader.readline()
        received = b""
        async with asyncio.timeout(10):
            while b"connection_established" not in received:
                received += await reader.read(4096)
            # The server's pings go unanswered: it ends the connection (closed or reset).
            with contextlib.suppress(ConnectionResetError):
                while await reader.read(4096):
                    pass
        writer.close()


async def test_one_user_may_hold_many_sockets(
    server: LiveServer, client: httpx.AsyncClient, app: FastAPI
) -> None:
    alice = await sign_up(client, 38, "Ann")
    bob = await sign_up(client, 39, "Ben")
    chat = await alice.private_chat_with(bob)
    async with ws_user(server, 39, "Ben") as phone, ws_user(server, 39, "Ben") as desktop:
        sent = await alice.send(chat["id"], "to both")
        for ws in (phone, desktop):
            assert (await ws.wait_for("new_message"))["message"]["id"] == sent["id"]


async def test_request_ids_leave_a_sockets_send_unwrapped() -> None:
    """Nothing is kept alive per socket for a header that its frames never carry."""
    passed_on: list[Send] = []

    async def app(_scope: Scope, _receive: Receive, send: Send) -> None:
        passed_on.append(send)

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(_message: Message) -> None:
        return None

    await RequestIdMiddleware(app)({"type": "websocket", "headers": []}, receive, send)
    assert passed_on == [send]


async def test_a_trailing_slash_reaches_the_same_door(server: LiveServer) -> None:
    async with ws_connect(ws_url_for(server, 40, "Ida").replace("/ws?", "/ws/?")) as ws:
        assert (await ws.recv())["type"] == "connection_established"


async def test_a_websocket_at_any_other_path_is_refused(server: LiveServer) -> None:
    url = ws_url_for(server, 41, "Eve").replace("/ws?", "/api/v1/ws?")
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(url):
            pass
    assert refused.value.response.status_code == 403


async def test_a_sockets_log_lines_carry_its_request_id(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """/ws is served ahead of the middleware stack, and still under the client's request id."""
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        url = ws_url_for(server, 42, "Rex")
        async with ws_connect(url, additional_headers={"X-Request-ID": "socket-42"}) as ws:
            assert (await ws.recv())["type"] == "connection_established"
    (accepted,) = [r for r in caplog.records if r.getMessage().endswith("[accepted]")]
    assert getattr(accepted, "request_id", None) == "socket-42"
    assert "init_data=[redacted]" in accepted.getMessage()
