"""A Telegram identity is one Telegram could have sent: out of Telegram's limits, initData is
refused (401 `init_data_malformed`) on every door that signs people in, and nobody is created."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.exceptions import InvalidStatus

from models import User
from tests.support.server import LiveServer
from tests.support.telegram import init_data_for
from tests.support.ws import ws_connect

OUT_OF_BOUNDS: list[tuple[int, str, dict[str, Any]]] = [
    (-5, "Eve", {}),
    (0, "Eve", {}),
    (601, "E" * 5000, {}),
    (602, "E" * 65, {}),
    (603, "Eve", {"last_name": "L" * 65}),
    (604, "Eve", {"username": "u" * 300}),
    (605, "Eve", {"username": "u" * 33}),
    (606, "Eve", {"username": "eve-smith"}),
    (607, "Eve", {"username": "eve smith"}),
    (608, "Eve", {"language_code": "e" * 17}),
    (609, "Eve", {"language_code": "en us"}),
    (610, "Eve", {"photo_url": "https://t.me/i/userpic/" + "p" * 1024}),
]


async def _users(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


@pytest.mark.parametrize(("telegram_id", "first_name", "fields"), OUT_OF_BOUNDS)
async def test_an_identity_out_of_telegram_limits_is_refused_everywhere(
    client: httpx.AsyncClient,
    server: LiveServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    telegram_id: int,
    first_name: str,
    fields: dict[str, Any],
) -> None:
    raw = init_data_for(telegram_id, first_name, **fields)
    by_header = await client.get("/api/v1/me", headers={"X-Telegram-Init-Data": raw})
    by_sign_in = await client.post("/api/v1/auth/telegram", json={"init_data": raw})
    for response in (by_header, by_sign_in):
        assert response.status_code == 401
        assert response.json()["code"] == "init_data_malformed"
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(f"{server.ws_url}/ws?init_data={quote(raw)}"):
            pass
    assert refused.value.response.status_code == 403
    async with ws_connect(f"{server.ws_url}/ws") as ws:
        await ws.send(type="auth", init_data=raw)
        await ws.connection.wait_closed()
    assert ws.connection.close_code == 4001
    assert await _users(sessionmaker) == 0


async def test_an_identity_at_telegram_limits_signs_in(client: httpx.AsyncClient) -> None:
    raw = init_data_for(
        2**52,
        "😀" * 64,  # 64 characters (128 UTF-16 units)
        username="u" * 32,
        last_name="L" * 64,
        language_code="zh-hans",
        photo_url="https://t.me/i/userpic/320/" + "p" * 997,
    )
    response = await client.get("/api/v1/me", headers={"X-Telegram-Init-Data": raw})
    assert response.status_code == 200, response.text
    me = response.json()
    assert (me["telegram_id"], me["username"], me["language_code"]) == (2**52, "u" * 32, "zh-hans")


async def test_a_nul_in_a_telegram_name_is_refused(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    raw = init_data_for(611, "E\u0000ve", last_name="L\u0000")
    response = await client.get("/api/v1/me", headers={"X-Telegram-Init-Data": raw})
    assert (response.status_code, response.json()["code"]) == (401, "init_data_malformed")
    assert await _users(sessionmaker) == 0
