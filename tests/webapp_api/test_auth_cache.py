"""A credential seen recently resolves its user without a query; a ban, an unban, a logout and
a change of the user's row are seen by the very next request.

A credential is remembered by a request that found its user's row as it is: not by the one that
created the user (or changed it from a new Telegram profile), whose write is not committed yet.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tests.support.api import running_app, sign_up
from tests.support.server import LiveServer
from tests.support.sql import watch_statements
from tests.support.telegram import auth_headers, init_data_for
from tests.support.ws import ws_connect

ADMIN = 900001  # in the suite's ADMIN_TELEGRAM_IDS
USER_ROWS = re.compile(r"\b(users|auth_sessions)\b")


@contextmanager
def user_lookups(app: FastAPI) -> Iterator[list[str]]:
    """The statements of the app's requests that read or write users or sessions."""
    with watch_statements(app, lambda statement: USER_ROWS.search(statement) is not None) as seen:
        yield seen


async def get_me(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/api/v1/me", headers=headers)


async def signed_up(client: httpx.AsyncClient, telegram_id: int, name: str) -> dict[str, str]:
    """The user, signed up a second ago; and initData of theirs that is new to the server."""
    earlier = auth_headers(telegram_id, name, auth_date=int(time.time()) - 1)
    assert (await get_me(client, earlier)).status_code == 200
    return auth_headers(telegram_id, name)


async def sign_in(client: httpx.AsyncClient, telegram_id: int, name: str) -> dict[str, Any]:
    """A session of the user: its tokens."""
    response = await client.post(
        "/api/v1/auth/telegram", json={"init_data": init_data_for(telegram_id, name)}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_init_data_seen_recently_needs_no_query_for_its_user(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    headers = await signed_up(client, 401, "Ada")
    first = await get_me(client, headers)
    with user_lookups(app) as seen:
        again = await get_me(client, headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert seen == []


async def test_a_token_seen_recently_needs_no_query_for_its_user(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    tokens = await sign_in(client, 402, "Bea")
    first = await get_me(client, bearer(tokens))
    with user_lookups(app) as seen:
        again = await get_me(client, bearer(tokens))
    assert again.status_code == 200
    assert again.json() == first.json()
    assert seen == []


async def test_a_socket_signed_in_with_a_remembered_credential_needs_no_query(
    client: httpx.AsyncClient, app: FastAPI, server: LiveServer
) -> None:
    init_data = (await signed_up(client, 403, "Cy"))["X-Telegram-Init-Data"]
    await get_me(client, {"X-Telegram-Init-Data": init_data})
    with user_lookups(app) as seen:
        async with ws_connect(f"{server.ws_url}/ws?init_data={quote(init_data)}") as ws:
            assert (await ws.recv())["type"] == "connection_established"
            await ws.send(type="ping")
            assert (await ws.recv())["type"] == "pong"
    assert seen == []


async def test_the_remembered_user_is_the_requests_own_to_change(
    client: httpx.AsyncClient,
) -> None:
    """A change through one credential is seen through every other the user has."""
    headers = auth_headers(404, "Dee")
    tokens = await sign_in(client, 404, "Dee")
    await get_me(client, headers)
    await get_me(client, bearer(tokens))
    changed = await client.patch("/api/v1/me", headers=headers, json={"bio": "hello"})
    assert changed.status_code == 200
    assert (await get_me(client, headers)).json()["bio"] == "hello"
    assert (await get_me(client, bearer(tokens))).json()["bio"] == "hello"


async def test_a_ban_refuses_the_next_request_and_an_unban_lets_it_in(
    client: httpx.AsyncClient,
) -> None:
    admin = await sign_up(client, ADMIN, "Root")
    headers = auth_headers(405, "Eve")
    tokens = await sign_in(client, 405, "Eve")
    me = (await get_me(client, headers)).json()
    await get_me(client, bearer(tokens))
    await admin.ok("POST", f"/api/v1/admin/users/{me['id']}/ban")
    refused = await get_me(client, headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "user_banned")
    revoked = await get_me(client, bearer(tokens))
    assert (revoked.status_code, revoked.json()["code"]) == (401, "token_revoked")
    await admin.ok("POST", f"/api/v1/admin/users/{me['id']}/unban")
    assert (await get_me(client, headers)).status_code == 200


async def test_logout_refuses_the_remembered_token(client: httpx.AsyncClient) -> None:
    tokens = await sign_in(client, 406, "Fay")
    other = await sign_in(client, 406, "Fay")
    await get_me(client, bearer(tokens))
    await get_me(client, bearer(other))
    logged_out = await client.post("/api/v1/auth/logout", headers=bearer(tokens))
    assert logged_out.status_code == 200
    revoked = await get_me(client, bearer(tokens))
    assert (revoked.status_code, revoked.json()["code"]) == (401, "token_revoked")
    assert (await get_me(client, bearer(other))).status_code == 200


async def test_the_cache_is_bounded_and_can_be_off(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, auth_cache_ttl=60, auth_cache_size=1)
    async with running_app(settings) as small:
        one = await signed_up(small.client, 407, "Gus")
        two = await signed_up(small.client, 408, "Hui")
        await get_me(small.client, one)
        await get_me(small.client, two)  # the one entry it keeps: Hui's
        with user_lookups(small.app) as seen:
            await get_me(small.client, two)
        assert seen == []
        with user_lookups(small.app) as seen:
            await get_me(small.client, one)
        assert seen != []
    async with running_app(make_settings(database_url, tmp_path, auth_cache_ttl=0)) as off:
        await get_me(off.client, one)
        with user_lookups(off.app) as seen:
            await get_me(off.client, one)
        assert seen != []


async def test_a_sockets_frames_read_their_user_again_once_it_changed(
    client: httpx.AsyncClient, app: FastAPI, server: LiveServer
) -> None:
    alice = await sign_up(client, 409, "Ivy", "ivy")
    bob = await sign_up(client, 410, "Jon", "jon")
    chat = await alice.private_chat_with(bob)
    init_data = alice.headers["X-Telegram-Init-Data"]
    async with ws_connect(f"{server.ws_url}/ws?init_data={quote(init_data)}") as ws:
        assert (await ws.recv())["type"] == "connection_established"
        await ws.send(type="ping")  # answered once the socket is fully open
        await ws.wait_for("pong")
        await alice.ok("PATCH", "/api/v1/me", json={"notifications_enabled": False})
        with user_lookups(app) as seen:
            await ws.send(type="send_message", chat_id=chat["id"], text="a", client_msg_id="a")
            await ws.wait_for("ack")
        assert len(seen) == 1  # read again, with what signing in checks
        with user_lookups(app) as seen:
            await ws.send(type="send_message", chat_id=chat["id"], text="b", client_msg_id="b")
            await ws.wait_for("ack")
        assert seen == []  # and remembered again
