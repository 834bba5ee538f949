"""Webhook mode's secret check, and notifications for users who are not online."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.bot.conftest import WEBAPP_URL, BotAppFactory
from tests.support.fake_telegram import private_text, tg_user
from tests.support.ws import ws_user

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


async def test_offline_users_are_notified_once_per_chat_per_interval(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(notify_interval=60) as bot_app:
        alice = await bot_app.sign_up(9201, "Alice")
        bob = await bot_app.sign_up(9202, "Bob")
        chat = await alice.private_chat_with(bob)
        await alice.send(chat["id"], "Are you there?")
        note = await bot_app.telegram.wait_for_call(
            "sendMessage", lambda call: call.params.get("chat_id") == 9202
        )
        assert note.params["text"] == "💬 Alice: Are you there?"
        button = note.params["reply_markup"]["inline_keyboard"][0][0]
        assert button["web_app"]["url"] == f"{WEBAPP_URL}?startapp=chat_{chat['id']}"
        await alice.send(chat["id"], "Hello?")
        await asyncio.sleep(0.3)
        assert len(bot_app.telegram.calls_to("sendMessage")) == 1


async def test_no_notification_while_online_muted_or_turned_off(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(notify_interval=0.01) as bot_app:
        alice = await bot_app.sign_up(9301, "Alice")
        bob = await bot_app.sign_up(9302, "Bob")
        chat = await alice.private_chat_with(bob)
        async with ws_user(bot_app.server, 9302, "Bob", username="bob"):
            await alice.send(chat["id"], "you are online")
            await asyncio.sleep(0.3)
        await bob.ok("PATCH", f"/api/v1/chats/{chat['id']}/settings", json={"is_muted": True})
        await alice.send(chat["id"], "you muted me")
        await bob.ok("PATCH", f"/api/v1/chats/{chat['id']}/settings", json={"is_muted": False})
        await bob.ok("PATCH", "/api/v1/me", json={"notifications_enabled": False})
        await alice.send(chat["id"], "you turned them off")
        await asyncio.sleep(0.3)
        assert bot_app.telegram.calls_to("sendMessage") == []
        await bob.ok("PATCH", "/api/v1/me", json={"notifications_enabled": True})
        await alice.send(chat["id"], "now you hear me")
        note = await bot_app.telegram.wait_for_call("sendMessage")
        assert note.params["text"].endswith("now you hear me")


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
