"""How a process runs the bot: BOT_MODE=auto, `python -m bot set-webhook` / `delete-webhook`
against the fake Bot API, webhook updates on a custom WEBHOOK_PATH, and LOG_LEVEL."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.handlers.private import HELP
from tests.bot.conftest import BotAppFactory
from tests.conftest import TEST_SECRET_KEY
from tests.support.fake_telegram.fake import FakeTelegram
from tests.support.fake_telegram.server import FakeTelegramServer
from tests.support.fake_telegram.updates import private_text, tg_user
from tests.support.processes import ROOT
from tests.support.telegram import TEST_BOT_TOKEN

ERIN = tg_user(9601, "Erin", "erin")
PUBLIC_BASE_URL = "https://bot.example"
WEBHOOK_PATH = "/hooks/telegram-7f3a"
SECRET = "custom-path-webhook-secret"


async def _run_bot_command(
    command: str, cwd: Path, fake_telegram_server: FakeTelegramServer, **env: str
) -> tuple[int, str]:
    """`python -m bot <command>` configured only through its environment (BOT_TOKEN="" leaves
    it unset); its exit status and what it printed."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "BOT_"))}
    environment.update(
        {
            "PYTHONPATH": str(ROOT),
            "ENVIRONMENT": "test",
            "DATABASE_URL": f"sqlite+aiosqlite:///{cwd / 'bot.db'}",
            "SECRET_KEY": TEST_SECRET_KEY,
            "BOT_TOKEN": TEST_BOT_TOKEN,
            "TELEGRAM_API_BASE": fake_telegram_server.base_url,
            **env,
        }
    )
    if not environment["BOT_TOKEN"]:
        del environment["BOT_TOKEN"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        command,
        cwd=cwd,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_set_webhook_and_delete_webhook_register_with_telegram(
    tmp_path: Path,
    fake_telegram_server: FakeTelegramServer,
    fake_telegram: FakeTelegram,
    start_bot_app: BotAppFactory,
) -> None:
    env = {"PUBLIC_BASE_URL": PUBLIC_BASE_URL, "WEBHOOK_PATH": WEBHOOK_PATH}
    status, output = await _run_bot_command(
        "set-webhook", tmp_path, fake_telegram_server, WEBHOOK_SECRET=SECRET, **env
    )
    assert status == 0, output
    (registered,) = fake_telegram.calls_to("setWebhook")
    assert registered.params["url"] == PUBLIC_BASE_URL + WEBHOOK_PATH
    assert registered.params["secret_token"] == SECRET
    assert {"message", "callback_query", "pre_checkout_query", "my_chat_member"} <= set(
        registered.params["allowed_updates"]
    )
    assert fake_telegram.webhook is not None
    # Telegram then posts updates to that URL with that secret: an API process in webhook
    # mode, configured alike, handles them.
    async with start_bot_app(
        bot_mode="webhook", webhook_secret=SECRET, webhook_path=WEBHOOK_PATH
    ) as bot_app:
        response = await bot_app.client.post(
            urlsplit(registered.params["url"]).path,
            json=private_text(ERIN, "/start"),
            headers={"X-Telegram-Bot-Api-Secret-Token": registered.params["secret_token"]},
        )
        assert response.status_code == 200
        assert [call.params["chat_id"] for call in fake_telegram.calls_to("sendMessage")] == [
            ERIN.id
        ]
    status, output = await _run_bot_command("delete-webhook", tmp_path, fake_telegram_server)
    assert status == 0, output
    assert len(fake_telegram.calls_to("deleteWebhook")) == 1
    assert fake_telegram.webhook is None


async def test_set_webhook_without_a_secret_refuses_and_calls_nothing(
    tmp_path: Path, fake_telegram_server: FakeTelegramServer, fake_telegram: FakeTelegram
) -> None:
    status, output = await _run_bot_command(
        "set-webhook", tmp_path, fake_telegram_server, PUBLIC_BASE_URL=PUBLIC_BASE_URL
    )
    assert status != 0
    assert "set-webhook needs PUBLIC_BASE_URL and WEBHOOK_SECRET" in output
    assert fake_telegram.calls == []


async def test_a_custom_webhook_path_replaces_the_default_one(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(
        bot_mode="webhook", webhook_secret=SECRET, webhook_path=WEBHOOK_PATH
    ) as bot_app:
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        default = await bot_app.client.post(
            "/telegram/webhook", json=private_text(ERIN, "/start"), headers=headers
        )
        assert default.status_code == 404
        custom = await bot_app.client.post(
            WEBHOOK_PATH, json=private_text(ERIN, "/help"), headers=headers
        )
        assert custom.status_code == 200
        (sent,) = bot_app.telegram.calls_to("sendMessage")
        assert sent.params["chat_id"] == ERIN.id
        assert sent.params["text"] == HELP


async def test_auto_mode_polls_in_a_single_process_server(start_bot_app: BotAppFactory) -> None:
    async with start_bot_app(bot_mode="auto", workers=1) as bot_app:
        bot_app.telegram.push_update(private_text(ERIN, "/start"))
        sent = await bot_app.telegram.wait_for_call("sendMessage")
        assert sent.params["chat_id"] == ERIN.id
        assert bot_app.telegram.calls_to("getUpdates")


async def test_auto_mode_leaves_the_bot_to_its_own_process_with_several_workers(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(bot_mode="auto", workers=2, webhook_secret=SECRET) as bot_app:
        # A process that runs the bot sets it up with Telegram before it serves anything.
        assert bot_app.telegram.calls == []
        response = await bot_app.client.post(
            "/telegram/webhook",
            json=private_text(ERIN, "/start"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert response.status_code == 404
        assert (await bot_app.client.get("/health/ready")).status_code == 200
    assert bot_app.telegram.calls == []


@pytest.mark.parametrize(("level", "shown"), [("INFO", True), ("WARNING", False)])
async def test_log_level_decides_what_the_process_logs(
    tmp_path: Path, fake_telegram_server: FakeTelegramServer, level: str, shown: bool
) -> None:
    status, output = await _run_bot_command(
        "run", tmp_path, fake_telegram_server, BOT_TOKEN="", LOG_LEVEL=level
    )
    assert status == 0, output
    assert ("The bot is not configured" in output) is shown
