"""A database that cannot take a request is "try again later" (503 with Retry-After, a socket
`error` frame with `retry_after`), never a 500; a pooled connection the server dropped is
replaced without the request noticing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from models import Message
from tests.conftest import make_settings
from tests.support.api import RunningApp, running_app
from tests.support.telegram import auth_headers
from tests.support.ws import ws_connect, ws_url_for
from ws.protocol import CLOSE_TRY_AGAIN_LATER

pytestmark = pytest.mark.postgres

RETRY_AFTER = "1"


@pytest.fixture
async def one_connection_app(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> AsyncIterator[RunningApp]:
    """An app whose pool holds one connection and waits a moment for it."""
    settings = make_settings(
        database_url,
        tmp_path,
        database_pool_size=1,
        database_max_overflow=0,
        database_pool_timeout=0.2,
    )
    async with running_app(settings) as running:
        yield running


async def count_messages(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(Message)) or 0)


async def test_a_send_without_a_free_connection_is_503_and_changes_nothing(
    one_connection_app: RunningApp, engine: AsyncEngine
) -> None:
    alice = await one_connection_app.sign_up(201, "Alice")
    bob = await one_connection_app.sign_up(202, "Bob")
    chat = await alice.private_chat_with(bob)
    async with one_connection_app.context.engine.connect() as held:
        await held.execute(text("SELECT 1"))  # the pool's only connection, taken
        response = await alice.post(f"/api/v1/chats/{chat['id']}/messages", json={"text": "hi"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == RETRY_AFTER
    assert response.json() == {
        "error": "The database is overloaded; try again shortly",
        "code": "database_unavailable",
        "status_code": 503,
        "retry_after": 1,
    }
    assert await count_messages(engine) == 0
    await alice.send(chat["id"], "once the connection is back")
    assert await count_messages(engine) == 1


async def test_a_socket_frame_without_a_free_connection_gets_an_error_with_retry_after(
    one_connection_app: RunningApp,
) -> None:
    alice = await one_connection_app.sign_up(201, "Alice")
    bob = await one_connection_app.sign_up(202, "Bob")
    chat = await alice.private_chat_with(bob)
    async with ws_connect(ws_url_for(one_connection_app.server, 201, "Alice")) as ws:
        assert (await ws.recv())["type"] == "connection_established"
        await ws.send(type="ping")  # answered once the socket is fully open
        assert (await ws.recv())["type"] == "pong"
        async with one_connection_app.context.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            await ws.send(type="send_message", chat_id=chat["id"], text="hi", client_msg_id="m1")
            error = await ws.wait_for("error")
        assert error["code"] == "database_unavailable"
        assert error["retry_after"] == 1
        assert error["client_msg_id"] == "m1"
        await ws.send(type="send_message", chat_id=chat["id"], text="hi", client_msg_id="m1")
        assert (await ws.wait_for("ack"))["client_msg_id"] == "m1"


async def test_a_socket_that_cannot_sign_in_is_told_to_come_back(
    one_connection_app: RunningApp,
) -> None:
    async with one_connection_app.context.engine.connect() as held:
        await held.execute(text("SELECT 1"))
        async with ws_connect(ws_url_for(one_connection_app.server, 201, "Alice")) as ws:
            error = await ws.recv()
            await ws.connection.wait_closed()
    assert error["code"] == "database_unavailable"
    assert error["retry_after"] == 1
    assert ws.connection.close_code == CLOSE_TRY_AGAIN_LATER


@pytest.fixture
async def refusing_database_url(database_url: str, engine: AsyncEngine) -> AsyncIterator[str]:
    """The test database, reached as a role the server lets in no connection at all: every
    connection attempt is refused with "too many connections" (SQLSTATE 53300)."""
    role = f"refused_{uuid.uuid4().hex[:8]}"
    async with engine.connect() as connection:
        await connection.execute(text(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0'))
        await connection.commit()
    try:
        yield make_url(database_url).set(username=role, password=None).render_as_string(False)
    finally:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP ROLE "{role}"'))
            await connection.commit()


async def test_a_server_refusing_connections_is_503(
    refusing_database_url: str, tmp_path: Path
) -> None:
    async with running_app(make_settings(refusing_database_url, tmp_path)) as refused:
        response = await refused.client.get("/api/v1/me", headers=auth_headers(201, "Alice"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == RETRY_AFTER
    assert response.json()["code"] == "database_unavailable"


async def test_a_connection_the_server_dropped_is_replaced_unnoticed(
    one_connection_app: RunningApp, engine: AsyncEngine
) -> None:
    alice = await one_connection_app.sign_up(201, "Alice")
    async with one_connection_app.context.engine.connect() as pooled:
        pid = await pooled.scalar(text("SELECT pg_backend_pid()"))
    async with engine.connect() as other:
        assert await other.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        gone = text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid")
        while not await other.scalar(gone, {"pid": pid}):
            await other.rollback()
    assert (await alice.ok("GET", "/api/v1/me"))["id"] == alice.id


async def test_a_reading_route_needs_one_connection_at_a_time(
    one_connection_app: RunningApp,
) -> None:
    """A caller whose credential is not remembered is identified in a unit of work of its own,
    which gives its connection back before the route reads: with one connection in the pool,
    nothing waits for a connection its own request holds (else every such request is a 503,
    and under load the pool deadlocks)."""
    alice = await one_connection_app.sign_up(211, "Alice")
    bob = await one_connection_app.sign_up(212, "Bob")
    chat = await alice.private_chat_with(bob)
    await alice.send(chat["id"], "hello")
    for path in [
        "/api/v1/chats",
        f"/api/v1/chats/{chat['id']}/messages",
        f"/api/v1/messages/chat/{chat['id']}",
    ]:
        response = await bob.get(path)  # the suite's apps remember no credential
        assert response.status_code == 200, (path, response.text)
