"""Ending a session reaches its open sockets: logout, logout-all, a reused refresh token, the
access token's expiry and a ban each close them (4003, or 4002 for an expired token), on the
process that ended it and on every other one, and leave everyone else's sockets open."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.settings import Settings
from core.tokens import issue_access_token, read_access_token
from models import User
from services import auth
from tests.conftest import TEST_SECRET_KEY
from tests.support.processes import ROOT, Cluster
from tests.support.server import LiveServer
from tests.support.telegram import auth_headers, init_data_for
from tests.support.ws import WsClient, ws_connect, ws_user
from tests.ws.conftest import ADMIN_TELEGRAM_ID, ClusterFactory

ADMIN = ADMIN_TELEGRAM_ID  # in ADMIN_TELEGRAM_IDS of the suite's server and the cluster
CLOSE_TOKEN_EXPIRED = 4002
CLOSE_SESSION_ENDED = 4003


@dataclass(frozen=True, slots=True)
class Servers:
    acting: LiveServer  # where the session is ended
    holding: LiveServer  # where the sockets are open
    env: dict[str, str] | None  # the processes' configuration, when they are separate processes


@pytest.fixture(
    params=[
        pytest.param("one process"),
        pytest.param("two processes", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
def servers(request: pytest.FixtureRequest, server: LiveServer) -> Servers:
    if request.param == "one process":
        return Servers(server, server, None)
    cluster: Cluster = request.getfixturevalue("shared_cluster")
    return Servers(cluster.a, cluster.b, cluster.env)


@dataclass
class Signed:
    """One session of a user, signed in over HTTP on some process."""

    client: httpx.AsyncClient
    access_token: str
    refresh_token: str
    user_id: int

    @property
    def session_id(self) -> str:
        return read_access_token(TEST_SECRET_KEY, self.access_token).session_id

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.access_token}"}
        return await self.client.post(path, headers=headers, **kwargs)


async def sign_in(server: LiveServer, telegram_id: int, name: str) -> Signed:
    client = httpx.AsyncClient(base_url=server.base_url, timeout=10)
    response = await client.post(
        "/api/v1/auth/telegram", json={"init_data": init_data_for(telegram_id, name)}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return Signed(client, body["access_token"], body["refresh_token"], body["user"]["id"])


def token_socket(server: LiveServer, token: str) -> Any:
    return ws_connect(f"{server.ws_url}/ws?token={quote(token)}")


async def opened(ws: WsClient) -> WsClient:
    assert (await ws.recv())["type"] == "connection_established"
    return ws


async def closed_with(ws: WsClient) -> int:
    """The close code the server ends this socket with (frames before it are skipped)."""
    with pytest.raises(ConnectionClosed) as closed:
        await _read_until_closed(ws)
    assert closed.value.rcvd is not None, "the connection dropped without a close frame"
    return closed.value.rcvd.code


async def _read_until_closed(ws: WsClient) -> None:
    async with asyncio.timeout(10):
        while True:
            await ws.recv(timeout=10)


async def still_open(ws: WsClient) -> None:
    await ws.send(type="ping")
    assert (await ws.wait_for("pong"))["type"] == "pong"


async def test_logout_closes_the_sessions_sockets_and_no_others(servers: Servers) -> None:
    first = await sign_in(servers.acting, 301, "Ann")
    second = await sign_in(servers.acting, 301, "Ann")
    async with (
        token_socket(servers.holding, first.access_token) as by_query,
        ws_connect(f"{servers.holding.ws_url}/ws") as by_frame,
        token_socket(servers.holding, second.access_token) as other_session,
    ):
        await opened(by_query)
        await by_frame.send(type="auth", token=first.access_token)
        await opened(by_frame)
        await opened(other_session)
        assert (await first.post("/api/v1/auth/logout")).status_code == 200
        assert await closed_with(by_query) == CLOSE_SESSION_ENDED
        assert await closed_with(by_frame) == CLOSE_SESSION_ENDED
        await still_open(other_session)


async def test_logout_all_closes_every_token_socket_of_the_user(servers: Servers) -> None:
    first = await sign_in(servers.acting, 302, "Ben")
    second = await sign_in(servers.holding, 302, "Ben")
    someone_else = await sign_in(servers.acting, 303, "Cid")
    async with (
        token_socket(servers.holding, first.access_token) as on_first,
        token_socket(servers.acting, second.access_token) as on_second,
        token_socket(servers.holding, someone_else.access_token) as others,
        ws_user(servers.holding, 302, "Ben") as by_init_data,
    ):
        await opened(on_first)
        await opened(on_second)
        await opened(others)
        response = await first.post("/api/v1/auth/logout-all")
        assert response.json() == {"revoked_sessions": 2}
        assert await closed_with(on_first) == CLOSE_SESSION_ENDED
        assert await closed_with(on_second) == CLOSE_SESSION_ENDED
        # initData is no session: it would sign the socket in again, so it stays.
        await still_open(by_init_data)
        await still_open(others)


async def test_a_reused_refresh_token_closes_the_whole_sessions_sockets(
    servers: Servers,
) -> None:
    signed = await sign_in(servers.acting, 304, "Dee")
    rotated = await signed.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": signed.refresh_token}
    )
    assert rotated.status_code == 200
    async with (
        token_socket(servers.holding, signed.access_token) as old_token,
        token_socket(servers.holding, rotated.json()["access_token"]) as new_token,
    ):
        await opened(old_token)
        await opened(new_token)
        reused = await signed.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": signed.refresh_token}
        )
        assert (reused.status_code, reused.json()["code"]) == (401, "token_reused")
        assert await closed_with(old_token) == CLOSE_SESSION_ENDED
        assert await closed_with(new_token) == CLOSE_SESSION_ENDED


async def test_a_token_socket_closes_when_its_access_token_expires(servers: Servers) -> None:
    signed = await sign_in(servers.acting, 305, "Eve")
    expiring = issue_access_token(
        TEST_SECRET_KEY, signed.user_id, signed.session_id, ttl=timedelta(seconds=2)
    )
    async with (
        token_socket(servers.holding, expiring) as ws,
        token_socket(servers.holding, signed.access_token) as fresh,
    ):
        await opened(ws)
        await opened(fresh)
        assert await closed_with(ws) == CLOSE_TOKEN_EXPIRED
        await still_open(fresh)


async def test_a_ban_closes_every_socket_of_the_user_and_refuses_sign_in(
    servers: Servers,
) -> None:
    admin = await sign_in(servers.acting, ADMIN, "Root")
    target = await sign_in(servers.acting, 306, "Fay")
    bystander = await sign_in(servers.acting, 307, "Gus")
    async with (
        token_socket(servers.holding, target.access_token) as by_token,
        ws_user(servers.holding, 306, "Fay") as by_init_data,
        token_socket(servers.holding, bystander.access_token) as others,
    ):
        await opened(by_token)
        await opened(others)
        response = await admin.post(f"/api/v1/admin/users/{target.user_id}/ban")
        assert response.status_code == 200, response.text
        assert await closed_with(by_token) == CLOSE_SESSION_ENDED
        assert await closed_with(by_init_data) == CLOSE_SESSION_ENDED
        await still_open(others)
    await assert_banned(servers.holding, 306, "Fay", target)
    assert (await admin.post(f"/api/v1/admin/users/{target.user_id}/unban")).status_code == 200
    await sign_in(servers.holding, 306, "Fay")


async def assert_banned(server: LiveServer, telegram_id: int, name: str, old: Signed) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        refused = await client.post(
            "/api/v1/auth/telegram", json={"init_data": init_data_for(telegram_id, name)}
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "user_banned")
        by_header = await client.get("/api/v1/me", headers=auth_headers(telegram_id, name))
        assert (by_header.status_code, by_header.json()["code"]) == (403, "user_banned")
        refreshed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": old.refresh_token}
        )
        assert (refreshed.status_code, refreshed.json()["code"]) == (401, "token_revoked")
    for url in (
        f"{server.ws_url}/ws?token={quote(old.access_token)}",
        f"{server.ws_url}/ws?init_data={quote(init_data_for(telegram_id, name))}",
    ):
        with pytest.raises(InvalidStatus) as handshake:
            async with ws_connect(url):
                pass
        assert handshake.value.response.status_code == 403


async def test_only_administrators_ban_and_never_the_ai(
    client: httpx.AsyncClient, server: LiveServer
) -> None:
    member = await sign_in(server, 308, "Hal")
    target = await sign_in(server, 309, "Ida")
    admin = await sign_in(server, ADMIN, "Root")
    response = await member.post(f"/api/v1/admin/users/{target.user_id}/ban")
    assert (response.status_code, response.json()["code"]) == (403, "admin_only")
    ai_chat = (await target.post("/api/v1/chats/ai")).json()
    bot_id = next(m["id"] for m in ai_chat["members"] if m["is_bot"])
    response = await admin.post(f"/api/v1/admin/users/{bot_id}/ban")
    assert (response.status_code, response.json()["code"]) == (422, "cannot_ban_bot")
    response = await admin.post("/api/v1/admin/users/987654321/ban")
    assert (response.status_code, response.json()["code"]) == (404, "user_not_found")
    async with token_socket(server, target.access_token) as ws:
        await opened(ws)
        await still_open(ws)


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_ban_from_the_admin_cli_closes_sockets_on_every_process(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = shared_cluster
    target = await sign_in(cluster.a, 310, "Jo")
    async with (
        token_socket(cluster.a, target.access_token) as on_a,
        ws_user(cluster.b, 310, "Jo") as on_b,
    ):
        await opened(on_a)
        banned = await run_admin(cluster.env, tmp_path, "ban", "--telegram-id", "310")
        assert banned.returncode == 0
        assert await closed_with(on_a) == CLOSE_SESSION_ENDED
        assert await closed_with(on_b) == CLOSE_SESSION_ENDED
    await assert_banned(cluster.b, 310, "Jo", target)
    unbanned = await run_admin(cluster.env, tmp_path, "unban", "--telegram-id", "310")
    assert unbanned.returncode == 0
    await sign_in(cluster.a, 310, "Jo")


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_ban_reaches_what_every_process_remembers_of_the_user(
    start_cluster: ClusterFactory, tmp_path: Path
) -> None:
    """Both processes remember the user's initData and token (AUTH_CACHE_TTL); the operator's
    ban, from a third process, is the next answer each of them gives."""
    async with start_cluster(AUTH_CACHE_TTL="60") as cluster:
        target = await sign_in(cluster.a, 312, "Lou")
        by_init_data = auth_headers(312, "Lou")
        by_token = {"Authorization": f"Bearer {target.access_token}"}
        for process in (cluster.a, cluster.b):
            async with httpx.AsyncClient(base_url=process.base_url, timeout=10) as client:
                for headers in (by_init_data, by_init_data, by_token):
                    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
        async with ws_user(cluster.a, 312, "Lou") as on_a, ws_user(cluster.b, 312, "Lou") as on_b:
            banned = await run_admin(cluster.env, tmp_path, "ban", "--telegram-id", "312")
            assert banned.returncode == 0
            # Each process heard the ban: the sockets it holds close, what it remembers goes.
            assert await closed_with(on_a) == CLOSE_SESSION_ENDED
            assert await closed_with(on_b) == CLOSE_SESSION_ENDED
        for process in (cluster.a, cluster.b):
            async with httpx.AsyncClient(base_url=process.base_url, timeout=10) as client:
                refused = await client.get("/api/v1/me", headers=by_init_data)
                assert (refused.status_code, refused.json()["code"]) == (403, "user_banned")
                revoked = await client.get("/api/v1/me", headers=by_token)
                assert (revoked.status_code, revoked.json()["code"]) == (401, "token_revoked")


async def run_admin(env: dict[str, str], cwd: Path, *args: str) -> asyncio.subprocess.Process:
    """`python -m cli.admin`, configured as the API processes are."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("TEST_") and name.lower() not in Settings.model_fields
    }
    environment.update({"PYTHONPATH": str(ROOT), **env})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.admin", *args, cwd=cwd, env=environment
    )
    await process.wait()
    return process


@pytest.mark.postgres
async def test_a_ban_committed_while_a_socket_signs_in_still_closes_it(
    server: LiveServer, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The ban commits after the socket's credentials were read and nobody tells the hub (its
    doorbell rang before the socket was watched, or was lost): the socket closes all the same."""
    kim = await sign_in(server, 311, "Kim")
    async with sessionmaker() as banning:
        user = await banning.get(User, kim.user_id)
        assert user is not None
        await auth.ban_user(banning, user)  # the user's row stays locked until the commit
        # A new first name: signing in writes the row, so it waits for the ban's commit.
        url = f"{server.ws_url}/ws?init_data={quote(init_data_for(311, 'Kimberly'))}"
        connecting = asyncio.create_task(_connect_and_read_close(url))
        await wait_until_a_query_waits_for_a_lock(engine)
        await banning.commit()  # nothing published
    assert await connecting == CLOSE_SESSION_ENDED


async def _connect_and_read_close(url: str) -> int:
    async with ws_connect(url) as ws:
        return await closed_with(ws)


async def wait_until_a_query_waits_for_a_lock(engine: AsyncEngine) -> None:
    async with asyncio.timeout(10):
        while True:
            async with engine.connect() as probe:
                waiting = await probe.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                )
            if waiting:
                return
            await asyncio.sleep(0.02)
