"""The client at /app and the development login at /app/dev."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.settings import ConfigurationError, Settings
from tests.conftest import make_settings
from tests.support.api import ApiUser
from tests.support.server import live_server
from webapp_api.app import create_app


@pytest.fixture
async def dev_client(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, tmp_path, dev_login=True)
    async with (
        live_server(create_app(settings)) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        yield client


def launch_params(response: httpx.Response) -> dict[str, str]:
    """What the dev login hands the client: Telegram's launch parameters in the URL hash."""
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert location.path == "/app"
    return {key: values[0] for key, values in parse_qs(location.fragment).items()}


async def open_as(client: httpx.AsyncClient, **form: str) -> dict[str, str]:
    return launch_params(await client.post("/app/dev/open", data=form))


async def signed_in(client: httpx.AsyncClient, init_data: str) -> dict[str, object]:
    response = await client.post("/api/v1/auth/telegram", json={"init_data": init_data})
    assert response.status_code == 200, response.text
    user: dict[str, object] = response.json()["user"]
    return user


@pytest.mark.parametrize("path", ["/app", "/app/"])
async def test_the_client_is_served_at_app(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "telegram-web-app.js" in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self' https://telegram.org" in policy
    assert response.headers["cache-control"] == "no-cache"


async def test_client_files_are_served_and_revalidated(client: httpx.AsyncClient) -> None:
    response = await client.get("/app/js/app.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.headers["cache-control"] == "no-cache"
    again = await client.get("/app/js/app.js", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert (await client.get("/app/js/nothing-here.js")).status_code == 404


async def test_the_dev_login_is_off_outside_development(client: httpx.AsyncClient) -> None:
    assert (await client.get("/app/dev")).status_code == 404
    response = await client.post("/app/dev/open", data={"first_name": "Mallory"})
    assert response.status_code == 404


def test_the_dev_login_defaults_on_only_in_development() -> None:
    assert Settings(environment="development").dev_login_enabled
    assert not Settings(environment="test").dev_login_enabled
    assert not Settings(environment="development", dev_login=False).dev_login_enabled


def test_the_dev_login_refuses_to_turn_on_in_production() -> None:
    production = {"environment": "production", "secret_key": "k" * 40, "bot_id": 42}
    assert not Settings.model_validate(production).dev_login_enabled
    with pytest.raises(ConfigurationError, match="DEV_LOGIN"):
        Settings.model_validate({**production, "dev_login": True})


async def test_the_dev_login_answers_only_to_this_machine(dev_client: httpx.AsyncClient) -> None:
    # Behind a proxy on this machine the peer is loopback but the user is not.
    for header in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}):
        assert (await dev_client.get("/app/dev", headers=header)).status_code == 404
        response = await dev_client.post(
            "/app/dev/open", data={"first_name": "Mallory"}, headers=header
        )
        assert response.status_code == 404


async def test_a_new_demo_user_opens_the_client_with_real_signed_init_data(
    dev_client: httpx.AsyncClient,
) -> None:
    params = await open_as(
        dev_client, first_name="Zoe", username="zoe_demo", theme="dark", start_param="chat_7"
    )
    assert params["tgWebAppPlatform"] == "weba"
    assert json.loads(params["tgWebAppThemeParams"])["bg_color"] == "#212121"
    assert params["tgWebAppStartParam"] == "chat_7"
    init_data = parse_qs(params["tgWebAppData"])
    assert init_data["start_param"] == ["chat_7"]
    assert "hash" in init_data
    user = await signed_in(dev_client, params["tgWebAppData"])
    assert (user["first_name"], user["username"]) == ("Zoe", "zoe_demo")
    # A forged copy is refused: the server signed it, nobody skipped the check.
    forged = params["tgWebAppData"].replace("Zoe", "Eve")
    response = await dev_client.post("/api/v1/auth/telegram", json={"init_data": forged})
    assert response.status_code == 401


async def test_known_people_are_listed_and_can_be_opened_again(
    dev_client: httpx.AsyncClient,
) -> None:
    first = await signed_in(
        dev_client, (await open_as(dev_client, first_name="<b>Yan</b>"))["tgWebAppData"]
    )
    page = await dev_client.get("/app/dev")
    assert page.status_code == 200
    assert "&lt;b&gt;Yan&lt;/b&gt;" in page.text
    assert "<b>Yan</b>" not in page.text
    assert f'name="user_id" value="{first["id"]}"' in page.text
    again = await signed_in(
        dev_client, (await open_as(dev_client, user_id=str(first["id"])))["tgWebAppData"]
    )
    assert again["id"] == first["id"]


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({}, 422, "dev_user_missing"),
        ({"first_name": "   "}, 422, "dev_user_missing"),
        ({"first_name": "Ann", "username": "a b"}, 422, None),
        ({"first_name": "Ann", "theme": "neon"}, 422, None),
        ({"first_name": "Ann", "start_param": "chat 1"}, 422, None),
        ({"user_id": "999999999"}, 404, "user_not_found"),
    ],
    ids=["nobody", "blank-name", "bad-username", "bad-theme", "bad-start-param", "unknown-user"],
)
async def test_bad_dev_login_input_is_refused(
    dev_client: httpx.AsyncClient, form: dict[str, str], status: int, code: str | None
) -> None:
    response = await dev_client.post("/app/dev/open", data=form, follow_redirects=False)
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["code"] == code


async def test_the_bot_cannot_be_impersonated(
    dev_client: httpx.AsyncClient, alice: ApiUser
) -> None:
    chat = await alice.ok("POST", "/api/v1/chats/ai")
    bot_id = next(m["id"] for m in chat["members"] if m["id"] != alice.id)
    response = await dev_client.post("/app/dev/open", data={"user_id": str(bot_id)})
    assert response.status_code == 404
