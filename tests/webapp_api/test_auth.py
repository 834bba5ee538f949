"""Identity end to end against a live server: initData, users, session tokens."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.tokens import issue_access_token
from models import AuthSession, RefreshToken, User
from tests.conftest import TEST_SECRET_KEY, make_settings
from tests.support.server import live_server
from tests.support.sql import count_statements
from tests.support.telegram import auth_headers, init_data_for
from webapp_api.app import create_app


async def _users(sessionmaker: async_sessionmaker[AsyncSession]) -> list[User]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(User).order_by(User.id)))


async def test_me_creates_the_user_on_first_sight(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/me",
        headers=auth_headers(2**52 + 1, "Alice", username="alice", last_name="Liddell"),
    )
    assert response.status_code == 200
    body = response.json()
    for field in (
        "id",
        "telegram_id",
        "username",
        "first_name",
        "last_name",
        "language_code",
        "is_premium",
        "is_admin",
        "profile_photo_url",
        "bio",
        "created_at",
    ):
        assert field in body
    assert body["telegram_id"] == 2**52 + 1
    assert (body["username"], body["first_name"], body["last_name"]) == (
        "alice",
        "Alice",
        "Liddell",
    )
    assert body["is_admin"] is False
    assert body["created_at"].endswith(("+00:00", "Z"))


async def test_profile_changes_are_saved_and_no_change_writes_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await client.get("/api/v1/me", headers=auth_headers(501, "Bob", username="bob"))
    with count_statements(app, "UPDATE") as updates:
        same = await client.get("/api/v1/me", headers=auth_headers(501, "Bob", username="bob"))
    assert same.status_code == 200
    assert updates == []
    with count_statements(app, "UPDATE") as updates:
        changed = await client.get(
            "/api/v1/me", headers=auth_headers(501, "Robert", username="bobby", is_premium=True)
        )
    assert len(updates) == 1
    assert (changed.json()["first_name"], changed.json()["username"]) == ("Robert", "bobby")
    assert changed.json()["is_premium"] is True


async def test_admins_come_from_settings_never_from_being_first(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/api/v1/me", headers=auth_headers(777, "First"))
    assert first.json()["is_admin"] is False
    admin = await client.get("/api/v1/me", headers=auth_headers(900001, "Admin"))
    assert admin.json()["is_admin"] is True


async def test_concurrent_first_requests_create_one_user(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    headers = auth_headers(4242, "Racer", username="racer")
    responses = await asyncio.gather(
        *(client.get("/api/v1/me", headers=headers) for _ in range(12))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    assert [u.telegram_id for u in await _users(sessionmaker)] == [4242]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "init_data_missing"),
        ({"X-Telegram-Init-Data": ""}, "init_data_missing"),
        ({"X-Telegram-Init-Data": "user=%7B%7D&auth_date=1"}, "init_data_malformed"),
        ({"X-Telegram-Init-Data": "a=1&a=2&hash=00"}, "init_data_malformed"),
        ({"Authorization": "Basic abc"}, "token_invalid"),
        ({"Authorization": "Bearer not-a-jwt"}, "token_invalid"),
    ],
)
async def test_bad_credentials_are_401_with_a_code(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    headers: dict[str, str],
    code: str,
) -> None:
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == code
    assert response.json()["status_code"] == 401
    assert await _users(sessionmaker) == []


async def test_wrong_token_signature_and_stale_init_data_are_refused(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    forged = init_data_for(1, "Mallory", token="987654321:someone-elses-bot-token-xxxxxxxxx")
    response = await client.get("/api/v1/me", headers={"X-Telegram-Init-Data": forged})
    assert response.json()["code"] == "init_data_bad_signature"
    stale = init_data_for(1, "Old", auth_date=int(time.time()) - 86400 - 5)
    response = await client.get("/api/v1/me", headers={"X-Telegram-Init-Data": stale})
    assert response.json()["code"] == "init_data_expired"
    future = init_data_for(1, "Future", auth_date=int(time.time()) + 3600)
    response = await client.get("/api/v1/me", headers={"X-Telegram-Init-Data": future})
    assert response.json()["code"] == "init_data_expired"
    assert await _users(sessionmaker) == []


async def test_oversized_header_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me", headers={"X-Telegram-Init-Data": "a=" + "x" * 9000})
    assert response.status_code == 401
    assert response.json()["code"] == "init_data_malformed"


async def test_patch_me_sets_bio_and_notifications(client: httpx.AsyncClient) -> None:
    headers = auth_headers(600, "Carol")
    response = await client.patch(
        "/api/v1/me", headers=headers, json={"bio": "  hello  ", "notifications_enabled": False}
    )
    assert response.status_code == 200
    assert (response.json()["bio"], response.json()["notifications_enabled"]) == ("hello", False)
    too_long = await client.patch("/api/v1/me", headers=headers, json={"bio": "x" * 501})
    assert too_long.status_code == 422
    unknown = await client.patch("/api/v1/me", headers=headers, json={"is_admin": True})
    assert unknown.status_code == 422
    null_flag = await client.patch(
        "/api/v1/me", headers=headers, json={"notifications_enabled": None}
    )
    assert null_flag.status_code == 422
    after = (await client.get("/api/v1/me", headers=headers)).json()
    assert (after["bio"], after["notifications_enabled"], after["is_admin"]) == (
        "hello",
        False,
        False,
    )
    cleared = await client.patch("/api/v1/me", headers=headers, json={"bio": ""})
    assert cleared.json()["bio"] is None


async def _sign_in(client: httpx.AsyncClient, telegram_id: int = 700) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/telegram", json={"init_data": init_data_for(telegram_id, "Dave")}
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_token_exchange_gives_a_working_access_token(client: httpx.AsyncClient) -> None:
    tokens = await _sign_in(client)
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    assert tokens["user"]["telegram_id"] == 700
    me = await client.get("/api/v1/me", headers=_bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["telegram_id"] == 700


async def test_sign_in_with_bad_init_data_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/telegram", json={"init_data": "hash=abc"})
    assert response.status_code == 401
    missing = await client.post("/api/v1/auth/telegram", json={})
    assert missing.status_code == 422


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    first = await _sign_in(client)
    second = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/api/v1/me", headers=_bearer(second["access_token"]))).is_success

    replay = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 401
    assert replay.json()["code"] == "token_reused"
    # The thief's replay ends the whole session: the newest tokens die too.
    newest = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert newest.status_code == 401
    assert newest.json()["code"] == "token_revoked"
    me = await client.get("/api/v1/me", headers=_bearer(second["access_token"]))
    assert me.status_code == 401
    assert me.json()["code"] == "token_revoked"


async def test_concurrent_refreshes_with_one_token_let_one_through(
    client: httpx.AsyncClient,
) -> None:
    tokens = await _sign_in(client)
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            for _ in range(5)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401, 401]


async def test_unknown_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "nope"})
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


async def test_tampered_and_expired_access_tokens_are_401(client: httpx.AsyncClient) -> None:
    tokens = await _sign_in(client)
    header, payload, signature = tokens["access_token"].split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    response = await client.get("/api/v1/me", headers=_bearer(tampered))
    assert response.json()["code"] == "token_invalid"
    other_key = issue_access_token(
        "another-secret-key-of-enough-length-123", 1, "x", ttl=timedelta(minutes=15)
    )
    response = await client.get("/api/v1/me", headers=_bearer(other_key))
    assert response.json()["code"] == "token_invalid"
    me = (await client.get("/api/v1/me", headers=_bearer(tokens["access_token"]))).json()
    expired = issue_access_token(
        TEST_SECRET_KEY,
        me["id"],
        "sid",
        ttl=timedelta(minutes=15),
        now=datetime.now(UTC) - timedelta(minutes=16),
    )
    response = await client.get("/api/v1/me", headers=_bearer(expired))
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


async def test_logout_revokes_the_current_session_only(client: httpx.AsyncClient) -> None:
    phone, desktop = await _sign_in(client), await _sign_in(client)
    response = await client.post("/api/v1/auth/logout", headers=_bearer(phone["access_token"]))
    assert response.status_code == 200
    assert (
        await client.get("/api/v1/me", headers=_bearer(phone["access_token"]))
    ).status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]}
    )
    assert refresh.json()["code"] == "token_revoked"
    assert (await client.get("/api/v1/me", headers=_bearer(desktop["access_token"]))).is_success


async def test_logout_all_revokes_every_session(client: httpx.AsyncClient) -> None:
    sessions = [await _sign_in(client) for _ in range(3)]
    response = await client.post(
        "/api/v1/auth/logout-all", headers=_bearer(sessions[0]["access_token"])
    )
    assert response.json() == {"revoked_sessions": 3}
    for tokens in sessions:
        me = await client.get("/api/v1/me", headers=_bearer(tokens["access_token"]))
        assert me.status_code == 401


async def test_logout_needs_a_session_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/logout", headers=auth_headers(800, "Eve"))
    assert response.status_code == 401
    assert response.json()["code"] == "token_required"


async def test_tokens_and_init_data_never_reach_the_logs(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    init_data = init_data_for(900, "Frank")
    tokens = (await client.post("/api/v1/auth/telegram", json={"init_data": init_data})).json()
    await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    await client.get("/api/v1/me", headers=_bearer(tokens["access_token"]))
    text = caplog.text
    for secret in (tokens["access_token"], tokens["refresh_token"], init_data.split("hash=")[-1]):
        assert secret not in text


async def test_the_unit_of_work_commits_before_the_response(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await client.get("/api/v1/me", headers=auth_headers(1000, "Gina"))
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 1


async def test_token_lifetimes_are_settings(
    database_url: str, tmp_dir: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    app = create_app(
        make_settings(database_url, tmp_dir, access_token_ttl=60, refresh_token_ttl=3600)
    )
    async with live_server(app) as server, httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post(
            "/api/v1/auth/telegram", json={"init_data": init_data_for(2001, "Ttl")}
        )
    tokens = response.json()
    assert tokens["expires_in"] == 60
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60
    async with sessionmaker() as session:
        started, expires = (
            await session.execute(
                select(AuthSession.created_at, RefreshToken.expires_at).join(
                    RefreshToken, RefreshToken.session_id == AuthSession.id
                )
            )
        ).one()
    assert expires - started == timedelta(seconds=3600)
