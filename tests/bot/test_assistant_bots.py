"""Assistants published as their own Telegram bots: the owner's token checked with getMe and
kept encrypted, two bots served at once beside ours (each answering as its assistant, through
its own token), their webhooks with their own secrets, and removal that stops a bot."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from models import AssistantBot, AssistantVisibility
from tests.bot.conftest import BotAppFactory
from tests.conftest import TEST_REDIS_URL, TEST_SECRET_KEY, make_settings
from tests.media.samples import png_bytes
from tests.support.api import ApiUser, sign_up
from tests.support.fake_llm import FakeReply
from tests.support.fake_telegram.fake import FakeTelegram, RecordedCall
from tests.support.fake_telegram.server import FakeTelegramServer
from tests.support.fake_telegram.updates import private_photo, private_text, tg_user
from tests.support.processes import ROOT
from tests.support.server import live_server
from tests.support.telegram import TEST_BOT_TOKEN
from webapp_api.app import create_app

KEY = Fernet.generate_key().decode()
TOKEN_A = "5550001:AAEalphaalphaalphaalphaalphaalpha123"
TOKEN_B = "5550002:AAEbravobravobravobravobravobravo456"
PUBLIC_BASE_URL = "https://bot.example"
SECRET = "main-bot-webhook-secret"
OLGA = tg_user(7301, "Olga", "olga")  # owns the assistants
CAROL = tg_user(7302, "Carol", "carol")


async def _assistant(
    owner: ApiUser,
    name: str,
    instructions: str,
    visibility: AssistantVisibility = AssistantVisibility.LINK,
) -> int:
    body = {
        "name": name,
        "instructions": instructions,
        "greeting": f"Hello, I am {name}.",
        "visibility": visibility.value,
    }
    assistant_id: int = (await owner.ok("POST", "/api/v1/assistants", json=body))["id"]
    return assistant_id


async def _sent(fake: FakeTelegram, telegram_id: int, nth: int = 1) -> RecordedCall:
    return await fake.wait_for_call(
        "sendMessage", lambda call: call.params.get("chat_id") == telegram_id, nth=nth
    )


async def test_publishing_checks_the_token_and_keeps_it_encrypted(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(assistant_bot_token_key=KEY) as bot_app:
        fake_a = bot_app.telegram.add_bot(TOKEN_A, "alpha_helper_bot")
        olga = await bot_app.sign_up(OLGA.id, "Olga")
        assistant_id = await _assistant(olga, "Alpha", "Answer as Alpha.")
        response = await olga.put(f"/api/v1/assistants/{assistant_id}/bot", json={"token": TOKEN_A})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body == {
            "telegram_bot_id": 5550001,
            "username": "alpha_helper_bot",
            "mode": "polling",
        }
        assert TOKEN_A.split(":")[1] not in response.text
        assert fake_a.calls_to("getMe") != []
        assert await olga.ok("GET", f"/api/v1/assistants/{assistant_id}/bot") == body
        async with bot_app.sessionmaker() as session:
            stored = (await session.scalars(select(AssistantBot))).one()
        assert stored.telegram_bot_id == 5550001
        assert isinstance(stored.token_ciphertext, bytes)
        assert TOKEN_A.encode() not in stored.token_ciphertext
        assert TOKEN_A.split(":")[1].encode() not in stored.token_ciphertext
        assert Fernet(KEY).decrypt(stored.token_ciphertext).decode() == TOKEN_A


async def test_a_token_telegram_does_not_know_is_refused(start_bot_app: BotAppFactory) -> None:
    async with start_bot_app(assistant_bot_token_key=KEY) as bot_app:
        olga = await bot_app.sign_up(OLGA.id, "Olga")
        assistant_id = await _assistant(olga, "Alpha", "Answer as Alpha.")
        path = f"/api/v1/assistants/{assistant_id}/bot"
        for token in (TOKEN_A, "not a token", "123:short"):
            response = await olga.put(path, json={"token": token})
            assert response.status_code == 400
            assert response.json()["code"] == "bad_bot_token"
        assert (await olga.get(path)).status_code == 404
        async with bot_app.sessionmaker() as session:
            assert (await session.scalars(select(AssistantBot))).all() == []


async def test_a_bot_serves_one_assistant(start_bot_app: BotAppFactory) -> None:
    async with start_bot_app(assistant_bot_token_key=KEY) as bot_app:
        bot_app.telegram.add_bot(TOKEN_A, "alpha_helper_bot")
        olga = await bot_app.sign_up(OLGA.id, "Olga")
        carol = await bot_app.sign_up(CAROL.id, "Carol")
        first = await _assistant(olga, "Alpha", "Answer as Alpha.")
        second = await _assistant(carol, "Other", "Answer as Other.")
        await olga.ok("PUT", f"/api/v1/assistants/{first}/bot", json={"token": TOKEN_A})
        response = await carol.put(f"/api/v1/assistants/{second}/bot", json={"token": TOKEN_A})
        assert response.status_code == 409
        assert response.json()["code"] == "bot_token_in_use"
        assert (await carol.get(f"/api/v1/assistants/{second}/bot")).status_code == 404


async def test_only_the_owner_manages_the_bot(start_bot_app: BotAppFactory) -> None:
    async with start_bot_app(assistant_bot_token_key=KEY) as bot_app:
        fake_a = bot_app.telegram.add_bot(TOKEN_A, "alpha_helper_bot")
        olga = await bot_app.sign_up(OLGA.id, "Olga")
        carol = await bot_app.sign_up(CAROL.id, "Carol")
        assistant_id = await _assistant(olga, "Alpha", "Answer as Alpha.")
        path = f"/api/v1/assistants/{assistant_id}/bot"
        response = await carol.put(path, json={"token": TOKEN_A})
        assert response.status_code == 404
        assert fake_a.calls_to("getMe") == []
        await olga.ok("PUT", path, json={"token": TOKEN_A})
        for method in ("GET", "DELETE"):
            response = await carol.request(method, path)
            assert response.status_code == 404
            assert response.json()["code"] == "assistant_not_found"
        assert (
            await carol.put("/api/v1/assistants/999999/bot", json={"token": TOKEN_A})
        ).status_code == 404
        assert (await olga.get(path)).status_code == 200


async def test_publishing_needs_the_key(start_bot_app: BotAppFactory) -> None:
    async with start_bot_app() as bot_app:
        fake_a = bot_app.telegram.add_bot(TOKEN_A, "alpha_helper_bot")
        olga = await bot_app.sign_up(OLGA.id, "Olga")
        assistant_id = await _assistant(olga, "Alpha", "Answer as Alpha.")
        response = await olga.put(f"/api/v1/assistants/{assistant_id}/bot", json={"token": TOKEN_A})
        assert response.status_code == 503
        assert response.json()["code"] == "assistant_bots_not_configured"
        assert fake_a.calls_to("getMe") == []


async def test_two_bots_answer_each_as_its_assistant(start_bot_app: BotAppFactory) -> None:
    async with start_bot_app(assistant_bot_token_key=KEY) as bot_app:
        fake_a = bot_app.telegram.add_bot(TOKEN_A, "alpha_helper_bot")
        fake_b = bot_app.telegram.add_bot(TOKEN_B, "bravo_helper_bot")
        olga = await bot_app.sign_up(OLGA.id, "Olga")
        alpha = await _assistant(olga, "Alpha", "You are Alpha, a sailing expert.")
        bravo = await _assistant(olga, "Bravo", "You are Bravo, a baking expert.")
        await olga.ok("PUT", f"/api/v1/assistants/{alpha}/bot", json={"token": TOKEN_A})
        await olga.ok("PUT", f"/api/v1/assistants/{bravo}/bot", json={"token": TOKEN_B})
        await fake_a.wait_for_call("getUpdates")
        await fake_b.wait_for_call("getUpdates")

        bot_app.llm.script(FakeReply("Trim the sails."))
        fake_a.push_update(private_text(CAROL, "How do I sail upwind?"))
        answer_a = await _sent(fake_a, CAROL.id)
        bot_app.llm.script(FakeReply("Knead longer."))
        fake_b.push_update(private_text(CAROL, "Why is my bread dense?"))
        answer_b = await _sent(fake_b, CAROL.id)

        assert answer_a.params["text"] == "Trim the sails."
        assert answer_a.token == TOKEN_A
        assert answer_b.params["text"] == "Knead longer."
        assert answer_b.token == TOKEN_B
        first, second = bot_app.llm.requests
        assert "You are Alpha, a sailing expert." in first.system
        assert "You are Bravo, a baking expert." in second.system
        assert bot_app.telegram.calls_to("sendMessage") == []  # our own bot said nothing

        fake_a.push_update(private_text(CAROL, "/start"))
        greeting = await _sent(fake_a, CAROL.id, nth=2)
        assert greeting.params["text"] == "Hello, I am Alpha."


async def test_new_starts_a_fresh_conversation_with_the_assistant(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(assistant_bot_token_key=KEY) as bot_app:
        fake_a = bot_app.telegram.add_bot(TOKEN_A, "alpha_helper_bot")
        olga = await bot_app.sign_up(OLGA.id, "Olga")
        alpha = await _assistant(olga, "Alpha", "Answer as Alpha.")
        await olga.ok("PUT", f"/api/v1/assistants/{alpha}/bot", json={"token": TOKEN_A})
        bot_app.llm.script(FakeReply("First answer."), FakeReply("Second answer."))
        fake_a.push_update(private_text(CAROL, "My name is Carol."))
        await _sent(fake_a, CAROL.id)
        fake_a.push_update(private_text(CAROL, "/new"))
        reset = await _sent(fake_a, CAROL.id, nth=2)
        assert reset.params["text"].startswith("Started a new conversation")
        fake_a.push_update(private_text(CAROL, "What is my name?"))
        await _sent(fake_a, CAROL.id, nth=3)
        first, second = bot_app.llm.requests
        # The conversation opened with the assistant's greeting.
        assert [turn.content for turn in first.turns] == ["Hello, I am Alpha.", "My name is Carol."]
        assert [turn.content for turn in second.turns] == ["What is my name?"]


async def test_a_photo_to_an_assistant_bot_is_fetched_with_its_token(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(assistant_bot_token_key=KEY) as bot_app:
        fake_a = bot_app.telegram.add_bot(TOKEN_A, "alpha_helper_bot")
        olga = await bot_app.sign_up(OLGA.id, "Olga")
        alpha = await _assistant(olga, "Alpha", "You are Alpha, a painter.")
        await olga.ok("PUT", f"/api/v1/assistants/{alpha}/bot", json={"token": TOKEN_A})
        bot_app.llm.script(FakeReply("A red square."))
        photo = fake_a.add_file(png_bytes(40, 40, (200, 30, 30)), "photos", "png")
        fake_a.push_update(private_photo(CAROL, photo, width=40, height=40, caption="What?"))
        answer = await _sent(fake_a, CAROL.id)
        assert answer.params["text"] == "A red square."
        assert [call.token for call in fake_a.calls_to("getFile")] == [TOKEN_A]
        assert bot_app.telegram.calls_to("getFile") == []
        (request,) = bot_app.llm.requests
        assert "You are Alpha, a painter." in request.system
        assert len(request.images) == 1


async def test_a_private_assistant_answers_only_its_owner(start_bot_app: BotAppFactory) -> None:
    async with start_bot_app(assistant_bot_token_key=KEY) as bot_app:
        fake_a = bot_app.telegram.add_bot(TOKEN_A, "alpha_helper_bot")
        olga = await bot_app.sign_up(OLGA.id, "Olga")
        alpha = await _assistant(olga, "Alpha", "Answer as Alpha.", AssistantVisibility.PRIVATE)
        await olga.ok("PUT", f"/api/v1/assistants/{alpha}/bot", json={"token": TOKEN_A})
        fake_a.push_update(private_text(CAROL, "Hello?"))
        refusal = await _sent(fake_a, CAROL.id)
        assert refusal.params["text"].startswith("⚠️")
        assert bot_app.llm.requests == []
        bot_app.llm.script(FakeReply("Hi, Olga."))
        fake_a.push_update(private_text(OLGA, "Hello!"))
        answer = await _sent(fake_a, OLGA.id)
        assert answer.params["text"] == "Hi, Olga."


async def test_a_webhook_bot_checks_its_secret_and_stops_when_removed(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(
        assistant_bot_token_key=KEY,
        bot_mode="webhook",
        webhook_secret=SECRET,
        public_base_url=PUBLIC_BASE_URL,
    ) as bot_app:
        fake_a = bot_app.telegram.add_bot(TOKEN_A, "alpha_helper_bot")
        olga = await bot_app.sign_up(OLGA.id, "Olga")
        alpha = await _assistant(olga, "Alpha", "Answer as Alpha.")
        published = await olga.ok("PUT", f"/api/v1/assistants/{alpha}/bot", json={"token": TOKEN_A})
        assert published["mode"] == "webhook"
        hook = await fake_a.wait_for_call("setWebhook")
        assert hook.params["url"] == f"{PUBLIC_BASE_URL}/telegram/assistant/5550001"
        secret = hook.params["secret_token"]
        assert isinstance(secret, str)
        assert secret != SECRET
        path = "/telegram/assistant/5550001"

        for header in ({}, {"X-Telegram-Bot-Api-Secret-Token": SECRET}):
            response = await bot_app.client.post(
                path, json=private_text(CAROL, "/start"), headers=header
            )
            assert response.status_code == 401
            assert response.json()["code"] == "bad_webhook_secret"
        assert fake_a.calls_to("sendMessage") == []

        good = {"X-Telegram-Bot-Api-Secret-Token": secret}
        response = await bot_app.client.post(path, json=private_text(CAROL, "/start"), headers=good)
        assert response.status_code == 200
        assert (await _sent(fake_a, CAROL.id)).params["text"] == "Hello, I am Alpha."

        removed = await olga.delete(f"/api/v1/assistants/{alpha}/bot")
        assert removed.status_code == 204
        await fake_a.wait_for_call("deleteWebhook")
        response = await bot_app.client.post(path, json=private_text(CAROL, "/start"), headers=good)
        assert response.status_code == 404
        assert len(fake_a.calls_to("sendMessage")) == 1
        assert (await olga.get(f"/api/v1/assistants/{alpha}/bot")).status_code == 404


async def test_archiving_the_assistant_stops_its_bot(start_bot_app: BotAppFactory) -> None:
    async with start_bot_app(
        assistant_bot_token_key=KEY,
        bot_mode="webhook",
        webhook_secret=SECRET,
        public_base_url=PUBLIC_BASE_URL,
    ) as bot_app:
        fake_a = bot_app.telegram.add_bot(TOKEN_A, "alpha_helper_bot")
        olga = await bot_app.sign_up(OLGA.id, "Olga")
        alpha = await _assistant(olga, "Alpha", "Answer as Alpha.")
        await olga.ok("PUT", f"/api/v1/assistants/{alpha}/bot", json={"token": TOKEN_A})
        hook = await fake_a.wait_for_call("setWebhook")
        assert (await olga.delete(f"/api/v1/assistants/{alpha}")).status_code == 200
        await fake_a.wait_for_call("deleteWebhook")
        response = await bot_app.client.post(
            "/telegram/assistant/5550001",
            json=private_text(CAROL, "/start"),
            headers={"X-Telegram-Bot-Api-Secret-Token": hook.params["secret_token"]},
        )
        assert response.status_code == 404
        assert fake_a.calls_to("sendMessage") == []


@pytest.mark.redis
@pytest.mark.usefixtures("engine")  # the database, migrated
async def test_the_bot_process_follows_changes_made_through_the_api(
    database_url: str,
    tmp_dir: Path,
    tmp_path: Path,
    fake_telegram_server: FakeTelegramServer,
    fake_telegram: FakeTelegram,
) -> None:
    """The API (its bot off) takes the owner's token; `python -m bot` starts polling that bot
    and, when the token moves to another assistant, stops the first and serves the second."""
    settings = make_settings(
        database_url,
        tmp_dir,
        bot_mode="off",
        assistant_bot_token_key=KEY,
        telegram_api_base=fake_telegram_server.base_url,
    )
    assert TEST_REDIS_URL is not None
    fake_a = fake_telegram.add_bot(TOKEN_A, "alpha_helper_bot")
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
            "ASSISTANT_BOT_TOKEN_KEY": KEY,
            "AI_RUNNER_ENABLED": "false",
        }
    )
    log = (tmp_path / "bot.log").open("wb")
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=environment, stdout=log, stderr=log
    )
    try:
        async with (
            live_server(create_app(settings)) as server,
            httpx.AsyncClient(base_url=server.base_url) as http,
        ):
            olga = await sign_up(http, OLGA.id, "Olga")
            alpha = await _assistant(olga, "Alpha", "A.")
            bravo = await _assistant(olga, "Bravo", "B.")
            # The bot process is up once it has set up our own bot.
            await fake_telegram.wait_for_call("getUpdates", timeout=60)
            await olga.ok("PUT", f"/api/v1/assistants/{alpha}/bot", json={"token": TOKEN_A})
            await fake_a.wait_for_call("getUpdates", timeout=30)
            fake_a.push_update(private_text(CAROL, "/start"))
            first = await fake_a.wait_for_call("sendMessage", timeout=30)
            assert first.params["text"] == "Hello, I am Alpha."

            assert (await olga.delete(f"/api/v1/assistants/{alpha}/bot")).status_code == 204
            await olga.ok("PUT", f"/api/v1/assistants/{bravo}/bot", json={"token": TOKEN_A})
            # getMe: the API's check, the bot process's polling of alpha, the API's check,
            # and the polling of bravo, once the bot process stopped polling alpha.
            await fake_a.wait_for_call("getMe", nth=4, timeout=30)
            fake_a.push_update(private_text(CAROL, "/start"))
            second = await fake_a.wait_for_call("sendMessage", timeout=30, nth=2)
            assert second.params["text"] == "Hello, I am Bravo."
    finally:
        bot.terminate()
        await bot.wait()
        log.close()
    assert len(fake_a.calls_to("sendMessage")) == 2, (tmp_path / "bot.log").read_text()
