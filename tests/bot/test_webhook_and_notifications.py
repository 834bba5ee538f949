"""Webhook mode's secret check, and notifications for users who are not online."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from core.envelope import topic_route
from services.messages import NEW_MESSAGES_TOPIC
from tests.bot.conftest import WEBAPP_URL, BotAppFactory
from tests.conftest import TEST_REDIS_URL, TEST_SECRET_KEY, make_settings
from tests.support.api import sign_up
from tests.support.fake_telegram.fake import FakeTelegram, RecordedCall
from tests.support.fake_telegram.server import FakeTelegramServer
from tests.support.fake_telegram.updates import private_text, tg_user
from tests.support.processes import ROOT
from tests.support.server import live_server
from tests.support.telegram import TEST_BOT_TOKEN
from tests.support.ws import ws_user
from webapp_api.app import create_app

CAROL = tg_user(9101, "Carol", "carol")
SECRET = "webhook-secret-for-tests"


@pytest.mark.parametrize("header", [None, "wrong-secret"])
async def test_the_webhook_refuses_a_missing_or_wrong_secret(
    start_bot_app: BotAppFactory, header: str | None
) -> None:
    async with start_bot_app(bot_mode="webhook", webhook_secret=SECRET) as bot_app:
        headers = {"X-Telegram-Bot-Api-Secret-Token": header} if header else {}
        response = await bot_app.client.post(
            "/telegram/webhook", json=private_text(CAROL, "/start"), headers=headers
        )
        assert response.status_code == 401
        assert response.json()["code"] == "bad_webhook_secret"
        assert bot_app.telegram.calls_to("sendMessage") == []


async def test_the_webhook_feeds_updates_to_the_bot(start_bot_app: BotAppFactory) -> None:
    async with start_bot_app(bot_mode="webhook", webhook_secret=SECRET) as bot_app:
        response = await bot_app.client.post(
            "/telegram/webhook",
            json=private_text(CAROL, "/start"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert response.status_code == 200
        sent = bot_app.telegram.calls_to("sendMessage")
        assert [call.params["chat_id"] for call in sent] == [CAROL.id]
        assert bot_app.telegram.calls_to("getUpdates") == []


async def test_the_webhook_route_is_absent_when_the_bot_polls(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(webhook_secret=SECRET) as bot_app:
        response = await bot_app.client.post(
            "/telegram/webhook",
            json=private_text(CAROL, "/start"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert response.status_code == 404


def _to(telegram_id: int, text: str | None = None) -> Callable[[RecordedCall], bool]:
    """A notification to this user (with this text)."""

    def matches(call: RecordedCall) -> bool:
        return call.params.get("chat_id") == telegram_id and (
            text is None or call.params.get("text", "").endswith(text)
        )

    return matches


# The notifier goes through a message's offline members in id order, one after the other: a
# later member's note proves that an earlier member's (absent) note was decided already.


async def test_offline_users_are_notified_once_per_chat_per_interval(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(notify_interval=60) as bot_app:
        alice = await bot_app.sign_up(9201, "Alice")
        bob = await bot_app.sign_up(9202, "Bob")
        carol = await bot_app.sign_up(9203, "Carol")
        chat = await alice.create_group("Plans", bob)
        await alice.send(chat["id"], "Are you there?")
        note = await bot_app.telegram.wait_for_call("sendMessage", _to(bob.telegram_id))
        assert note.params["text"] == "💬 Alice in Plans: Are you there?"
        button = note.params["reply_markup"]["inline_keyboard"][0][0]
        assert button["web_app"]["url"] == f"{WEBAPP_URL}?startapp=chat_{chat['id']}"
        await alice.ok("POST", f"/api/v1/chats/{chat['id']}/members/{carol.id}")
        await alice.send(chat["id"], "Hello?")
        await bot_app.telegram.wait_for_call("sendMessage", _to(carol.telegram_id, "Hello?"))
        assert list(filter(_to(bob.telegram_id), bot_app.telegram.calls)) == [note]


async def test_no_notification_while_online_muted_or_turned_off(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(notify_interval=60) as bot_app:
        alice = await bot_app.sign_up(9301, "Alice")
        bob = await bot_app.sign_up(9302, "Bob")
        dave = await bot_app.sign_up(9303, "Dave")  # offline, notified: the marker
        online, muted, turned_off = [
            (await alice.create_group(title, bob, dave))["id"]
            for title in ("Online", "Muted", "Off")
        ]

        async def send_and_see_dave_notified(chat_id: int, text: str) -> None:
            await alice.send(chat_id, text)
            await bot_app.telegram.wait_for_call("sendMessage", _to(dave.telegram_id, text))

        async with ws_user(bot_app.server, bob.telegram_id, "Bob", username="bob"):
            await send_and_see_dave_notified(online, "you are online")
        await bob.ok("PATCH", f"/api/v1/chats/{muted}/settings", json={"is_muted": True})
        await send_and_see_dave_notified(muted, "you muted me")
        await bob.ok("PATCH", "/api/v1/me", json={"notifications_enabled": False})
        await send_and_see_dave_notified(turned_off, "you turned them off")
        assert list(filter(_to(bob.telegram_id), bot_app.telegram.calls)) == []
        await bob.ok("PATCH", "/api/v1/me", json={"notifications_enabled": True})
        await alice.send(turned_off, "now you hear me")
        note = await bot_app.telegram.wait_for_call("sendMessage", _to(bob.telegram_id))
        assert note.params["text"] == "💬 Alice in Off: now you hear me"


async def test_with_the_bot_off_the_api_process_makes_no_bot_api_call(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(bot_mode="off", notify_interval=60) as off:
        alice = await off.sign_up(9401, "Alice")
        bob = await off.sign_up(9402, "Bob")
        chat = await alice.private_chat_with(bob)
        await alice.send(chat["id"], "sent with the bot off")
        # Then a process that runs the bot notifies the same offline user: the notification
        # the first process must not send would have come long before this one (a whole server
        # start-up later), and this one shows the user is one to notify.
        second_started = time.monotonic()
        async with start_bot_app(notify_interval=60) as running:
            alice_there = await running.sign_up(9401, "Alice")
            await alice_there.send(chat["id"], "sent with the bot on")
            note = await running.telegram.wait_for_call(
                "sendMessage", lambda call: call.params.get("chat_id") == 9402
            )
    assert note.params["text"] == "💬 Alice: sent with the bot on"
    assert [call.method for call in off.telegram.calls if call.at < second_started] == []
    assert [call for call in off.telegram.calls if call.params.get("chat_id") == 9402] == [note]


@pytest.mark.redis
async def test_the_bot_process_notifies_for_api_processes_whose_bot_is_off(
    database_url: str,
    tmp_dir: Path,
    tmp_path: Path,
    engine: AsyncEngine,
    fake_telegram_server: FakeTelegramServer,
    fake_telegram: FakeTelegram,
) -> None:
    settings = make_settings(database_url, tmp_dir, bot_mode="off", webapp_url=WEBAPP_URL)
    assert TEST_REDIS_URL is not None
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "BOT_"))}
    environment.update(
        {
            "PYTHONPATH": str(ROOT),
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": TEST_REDIS_URL,
            "REDIS_PREFIX": settings.redis_prefix,
            "SECRET_KEY": TEST_SECRET_KEY,
            "BOT_TOKEN": TEST_BOT_TOKEN,
            "TELEGRAM_API_BASE": fake_telegram_server.base_url,
            "WEBAPP_URL": WEBAPP_URL,
            "NOTIFY_INTERVAL": "60",
            "AI_RUNNER_ENABLED": "false",
        }
    )
    redis = Redis.from_url(TEST_REDIS_URL)
    channel = f"{settings.redis_prefix}:{topic_route(NEW_MESSAGES_TOPIC)}"
    log = (tmp_path / "bot.log").open("wb")
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=environment, stdout=log, stderr=log
    )
    try:
        async with (
            live_server(create_app(settings)) as server,
            httpx.AsyncClient(base_url=server.base_url) as http,
        ):
            alice, bob = await sign_up(http, 9501, "Alice"), await sign_up(http, 9502, "Bob")
            chat = await alice.private_chat_with(bob)
            # The bot listens on the deployment's topic of new messages.
            async with asyncio.timeout(60):
                while (await redis.pubsub_numsub(channel))[0][1] < 1:
                    assert bot.returncode is None, (tmp_path / "bot.log").read_text()
                    await asyncio.sleep(0.05)
            await alice.send(chat["id"], "Are you there?")
            note = await fake_telegram.wait_for_call(
                "sendMessage", lambda call: call.params.get("chat_id") == 9502, timeout=30
            )
    finally:
        bot.terminate()
        await bot.wait()
        log.close()
        await redis.aclose()
    assert note.params["text"] == "💬 Alice: Are you there?"
