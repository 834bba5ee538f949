"""The Mini App client in headless Chromium against a live server.

Debian's `chromium` (BROWSER_PATH, default /usr/bin/chromium) driven by Playwright; nothing is
downloaded at test time. Without the browser these tests skip, unless BROWSER_REQUIRED=1 (CI),
where that is a failure. The server has the development login on and its AI at the fake LLM
vendor; each user is opened the way `/app/dev` opens them: initData signed by the server, in
the URL hash as Telegram passes it, so the client goes through the real signature check.
The server's Bot API (Stars invoices) is the fake Telegram server of tests/support.
Telegram's own script is unreachable here (as it is outside Telegram): its requests are aborted.
Screenshots go to BROWSER_ARTIFACTS (default test-artifacts/browser/).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    async_playwright,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.ai.conftest import ai_settings
from tests.support.database import database_fixtures, truncate_all
from tests.support.fake_llm import FakeLLMServer
from tests.support.fake_telegram.server import FakeTelegramServer
from tests.support.server import LiveServer, live_server
from webapp_api.app import create_app

BROWSER_PATH = Path(os.environ.get("BROWSER_PATH", "/usr/bin/chromium"))
BROWSER_FOUND = BROWSER_PATH.exists()
BROWSER_REQUIRED = os.environ.get("BROWSER_REQUIRED") == "1"
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", "test-artifacts/browser"))
# What this machine's closed network needs (and a test needs no background traffic anyway).
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
VIEWPORT: ViewportSize = {"width": 400, "height": 760}  # a phone-sized Mini App
TIMEOUT_MS = 15_000

NO_BROWSER = f"no Chromium at {BROWSER_PATH} (apt install chromium; .ci/run does)"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder is marked `browser` (a conftest's `pytestmark` marks
    nothing), and skipped without Chromium unless it is required."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)
            if not BROWSER_FOUND and not BROWSER_REQUIRED:
                item.add_marker(pytest.mark.skip(reason=NO_BROWSER))


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not BROWSER_FOUND:
        pytest.fail(NO_BROWSER)  # BROWSER_REQUIRED: the others were skipped
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(BROWSER_PATH), args=BROWSER_ARGS
        )
        yield browser
        await browser.close()


browser_database_url, browser_engine = database_fixtures("browser_database_url", "browser_engine")


@pytest.fixture(scope="session")
async def app_server(
    browser_database_url: str,
    browser_engine: AsyncEngine,
    tmp_dir: Path,
    fake_llm_server: FakeLLMServer,
    fake_telegram_server: FakeTelegramServer,
) -> AsyncIterator[LiveServer]:
    # The Bot API (Stars invoices) is the fake one: a test takes `fake_telegram` to see it.
    settings = ai_settings(
        browser_database_url,
        tmp_dir,
        fake_llm_server,
        dev_login=True,
        telegram_api_base=fake_telegram_server.base_url,
    )
    async with live_server(create_app(settings)) as server:
        yield server


@dataclass
class DemoUser:
    """One person in a browser context of their own, and the same person over the API."""

    name: str
    page: Page
    context: BrowserContext
    api: httpx.AsyncClient
    init_data: str
    telegram_id: int
    page_errors: list[str] = field(default_factory=list)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """An API call as this user (test set-up); it must succeed."""
        response = await self.api.request(
            method, path, headers={"X-Telegram-Init-Data": self.init_data}, **kwargs
        )
        assert response.is_success, (method, path, response.status_code, response.text)
        return response.json()

    async def screenshot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        return path


OpenClient = Callable[..., Awaitable[DemoUser]]


@pytest.fixture
async def open_client(
    browser: Browser, app_server: LiveServer, browser_engine: AsyncEngine
) -> AsyncIterator[OpenClient]:
    """`await open_client("Alice", username="alice")`: the client opened as a new demo user."""
    opened: list[DemoUser] = []
    api = httpx.AsyncClient(base_url=app_server.base_url, timeout=15)

    async def open_as(
        name: str,
        *,
        username: str | None = None,
        theme: Literal["light", "dark"] = "light",
        **extra: str,
    ) -> DemoUser:
        form = {"first_name": name, "theme": theme, **extra}
        if username is not None:
            form["username"] = username
        response = await api.post("/app/dev/open", data=form)
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        init_data = parse_qs(urlsplit(location).fragment)["tgWebAppData"][0]
        user_json = parse_qs(init_data)["user"][0]
        telegram_id = int(re.search(r'"id":(\d+)', user_json).group(1))  # type: ignore[union-attr]
        context = await browser.new_context(
            viewport=VIEWPORT, base_url=app_server.base_url, color_scheme=theme
        )
        context.set_default_timeout(TIMEOUT_MS)
        await context.route("https://telegram.org/**", lambda route: route.abort())
        page = await context.new_page()
        user = DemoUser(name, page, context, api, init_data, telegram_id)
        page.on("pageerror", lambda error: user.page_errors.append(str(error)))
        opened.append(user)
        await page.goto(location)
        return user

    yield open_as
    for user in opened:
        await user.context.close()
    await api.aclose()
    await truncate_all(browser_engine)
    errors = {user.name: user.page_errors for user in opened if user.page_errors}
    assert not errors, f"uncaught errors in the page: {errors}"
