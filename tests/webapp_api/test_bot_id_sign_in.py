"""Sign-in with only BOT_ID set (a third party's Mini App): initData carries Telegram's Ed25519
`signature` and the API checks it with Telegram's public key, through the real route.

The server accepts only Telegram's own keys (production, and the test environment's with
TELEGRAM_TEST_ENV), so no key of ours can sign: the initData is real data signed by Telegram
(the published vector of init-data-golang), old, and accepted under an INIT_DATA_MAX_AGE that
covers its age."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tests.core.test_telegram_auth import (
    THIRD_PARTY_AUTH_DATE,
    THIRD_PARTY_BOT_ID,
    THIRD_PARTY_INIT_DATA,
)
from tests.support.server import live_server
from tests.support.telegram import init_data_for
from webapp_api.app import create_app

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def _covering_the_vector() -> int:
    return int(time.time()) - THIRD_PARTY_AUTH_DATE + 3600


@pytest.fixture
def third_party_api(database_url: str, tmp_dir: Path, engine: AsyncEngine) -> ClientFactory:
    """An API configured with BOT_ID and no BOT_TOKEN; settings may be overridden."""

    @asynccontextmanager
    async def start(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
        values: dict[str, object] = {
            "bot_token": None,
            "bot_id": THIRD_PARTY_BOT_ID,
            "init_data_max_age": _covering_the_vector(),
        }
        settings = make_settings(database_url, tmp_dir, **(values | overrides))
        async with (
            live_server(create_app(settings)) as server,
            httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
        ):
            yield client

    return start


async def _sign_in(client: httpx.AsyncClient, init_data: str) -> httpx.Response:
    return await client.post("/api/v1/auth/telegram", json={"init_data": init_data})


async def test_telegram_signed_init_data_signs_in_with_bot_id_only(
    third_party_api: ClientFactory,
) -> None:
    async with third_party_api() as client:
        response = await _sign_in(client, THIRD_PARTY_INIT_DATA)
        assert response.status_code == 200, response.text
        tokens = response.json()
        assert tokens["user"]["telegram_id"] == 279058397
        assert tokens["user"]["first_name"] == "Vladislav + - ? /"
        me = await client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.status_code == 200
        assert me.json()["username"] == "vdkfrost"
        # initData sent per request (not only at sign-in) is checked the same way.
        again = await client.get(
            "/api/v1/me", headers={"X-Telegram-Init-Data": THIRD_PARTY_INIT_DATA}
        )
        assert again.status_code == 200
        assert again.json()["id"] == me.json()["id"]


async def test_with_bot_id_only_a_token_signed_hash_is_not_enough(
    third_party_api: ClientFactory,
) -> None:
    async with third_party_api() as client:
        response = await _sign_in(client, init_data_for(279058397, "Mallory"))
    assert response.status_code == 401
    assert response.json()["code"] == "init_data_bad_signature"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"bot_id": THIRD_PARTY_BOT_ID + 1}, "init_data_bad_signature"),
        ({"telegram_test_env": True}, "init_data_bad_signature"),
        ({"init_data_max_age": 86400}, "init_data_expired"),
    ],
    ids=["another-bot", "test-environment-key", "too-old"],
)
async def test_the_signature_binds_bot_key_and_age(
    third_party_api: ClientFactory, overrides: dict[str, object], code: str
) -> None:
    async with third_party_api(**overrides) as client:
        response = await _sign_in(client, THIRD_PARTY_INIT_DATA)
    assert response.status_code == 401
    assert response.json()["code"] == code
