"""The bot's commands that change or show something: /help, /balance, choosing a model after
/model, and the group admins' /model and /persona, each through the real Dispatcher."""

from __future__ import annotations

from typing import Any

from bot.handlers.private import HELP
from tests.bot.conftest import BotApp, BotAppFactory
from tests.support.fake_llm import FakeReply
from tests.support.fake_telegram import (
    RecordedCall,
    callback_query,
    group_text,
    mention_entities,
    private_text,
    tg_group,
    tg_user,
)

DORA = tg_user(7301, "Dora", "dora")
GROUP = tg_group(-100731, "Readers")
ADMIN = tg_user(7311, "Ada", "ada")
MEMBER = tg_user(7312, "Max", "max")


async def _sent_to(bot_app: BotApp, chat_id: int, nth: int = 1) -> RecordedCall:
    return await bot_app.telegram.wait_for_call(
        "sendMessage", lambda call: call.params.get("chat_id") == chat_id, nth=nth
    )


async def _ai_settings(bot_app: BotApp, telegram_id: int, name: str) -> dict[str, Any]:
    """The direct AI chat's settings, as the Mini App reads them."""
    user = await bot_app.sign_up(telegram_id, name)
    chat = await user.ok("POST", "/api/v1/chats/ai")
    settings: dict[str, Any] = await user.ok("GET", f"/api/v1/chats/{chat['id']}/ai")
    return settings


async def test_help_lists_every_command(bot_app: BotApp) -> None:
    bot_app.telegram.push_update(private_text(DORA, "/help"))
    sent = await _sent_to(bot_app, DORA.id)
    assert sent.params["text"] == HELP
    commands = await bot_app.telegram.wait_for_call("setMyCommands")
    for command in commands.params["commands"]:
        assert f"/{command['command']}" in sent.params["text"]


async def test_balance_with_billing_off_shows_the_daily_allowance(
    start_bot_app: BotAppFactory,
) -> None:
    async with start_bot_app(ai_daily_token_allowance=5000) as bot_app:
        bot_app.telegram.push_update(private_text(DORA, "/balance"))
        sent = await _sent_to(bot_app, DORA.id)
    assert sent.params["text"] == "Today you have used 0 of 5000 tokens; 5000 are left."


async def test_balance_with_billing_on_shows_the_credits(start_bot_app: BotAppFactory) -> None:
    async with start_bot_app(
        billing_enabled=True, billing_starting_grant_micros=2_500_000
    ) as bot_app:
        bot_app.telegram.push_update(private_text(DORA, "/balance"))
        sent = await _sent_to(bot_app, DORA.id)
    assert sent.params["text"] == "Your balance: 2.5 credits. Top up with /topup."


async def test_choosing_a_model_from_the_menu_sets_it_for_the_next_answer(
    bot_app: BotApp,
) -> None:
    bot_app.telegram.push_update(private_text(DORA, "/model"))
    await _sent_to(bot_app, DORA.id)
    (keyboard,) = [m for (chat_id, _), m in bot_app.telegram.messages.items() if chat_id == DORA.id]
    bot_app.telegram.push_update(callback_query(DORA, "model:gpt-4.1-mini", keyboard))
    answer = await bot_app.telegram.wait_for_call("answerCallbackQuery")
    assert answer.params["text"] == "Model: gpt-4.1-mini"
    edited = await bot_app.telegram.wait_for_call("editMessageText")
    assert edited.params["text"] == "Model set to gpt-4.1-mini."
    assert keyboard["text"] == "Model set to gpt-4.1-mini."
    # The menu now marks the chosen model, and the next answer is asked of it.
    bot_app.telegram.push_update(private_text(DORA, "/model"))
    again = await _sent_to(bot_app, DORA.id, nth=2)
    # Updates are handled one after the other: the choice's unit of work has committed.
    assert (await _ai_settings(bot_app, DORA.id, "Dora"))["model"] == "gpt-4.1-mini"
    labels = [row[0]["text"] for row in again.params["reply_markup"]["inline_keyboard"]]
    assert "✓ GPT-4.1 mini" in labels
    assert "GPT-4o mini" in labels
    bot_app.llm.script(FakeReply(text="From the other model"))
    bot_app.telegram.push_update(private_text(DORA, "hello"))
    await _sent_to(bot_app, DORA.id, nth=3)
    assert bot_app.llm.requests[-1].json["model"] == "gpt-4.1-mini"


async def _group_reply(bot_app: BotApp, nth: int) -> str:
    call = await bot_app.telegram.wait_for_call(
        "sendMessage", lambda call: call.params.get("chat_id") == GROUP.id, nth=nth
    )
    text: str = call.params["text"]
    return text


async def _group_settings(bot_app: BotApp) -> dict[str, Any]:
    """The group's AI settings as its admin reads them in the Mini App."""
    admin = await bot_app.sign_up(ADMIN.id, "Ada")
    listing = await admin.ok("GET", "/api/v1/chats")
    (chat,) = [c for c in listing if c["title"] == GROUP.title]
    settings: dict[str, Any] = await admin.ok("GET", f"/api/v1/chats/{chat['id']}/ai")
    return settings


async def _ask_the_ai_in_the_group(bot_app: BotApp, answer: str) -> dict[str, Any]:
    """A member mentions the bot; the request the LLM received for its answer."""
    bot_app.llm.script(FakeReply(text=answer))
    text = "@test_ai_bot a question"
    bot_app.telegram.push_update(
        group_text(GROUP, MEMBER, text, entities=mention_entities(text, "test_ai_bot"))
    )
    await bot_app.telegram.wait_for_call(
        "editMessageText", lambda call: call.params.get("text") == answer
    )
    request: dict[str, Any] = bot_app.llm.requests[-1].json
    return request


async def _only_the_admin_may(bot_app: BotApp, command: str, nth: int) -> str:
    """A member sends `command` and is refused, then the admin does: the admin's answer (the
    bot's `nth` message in the group)."""
    bot_app.telegram.push_update(group_text(GROUP, MEMBER, command))
    assert "Only the group's admins" in await _group_reply(bot_app, nth - 1)
    bot_app.telegram.push_update(group_text(GROUP, ADMIN, command))
    return await _group_reply(bot_app, nth)


def _group_with_an_admin(bot_app: BotApp) -> None:
    bot_app.telegram.add_chat(GROUP)
    bot_app.telegram.set_admins(GROUP.id, [ADMIN.id])


async def test_group_model_sets_the_model_its_admin_names(bot_app: BotApp) -> None:
    _group_with_an_admin(bot_app)
    bot_app.telegram.push_update(group_text(GROUP, ADMIN, "/model"))
    listed = await _group_reply(bot_app, 1)
    assert listed.startswith("Use /model <id>. Models: ")
    assert "gpt-4o-mini" in listed
    assert "gpt-4.1" in listed
    assert await _only_the_admin_may(bot_app, "/model gpt-4.1", 3) == "Model: gpt-4.1."
    request = await _ask_the_ai_in_the_group(bot_app, "Answered by gpt-4.1")
    assert request["model"] == "gpt-4.1"
    assert (await _group_settings(bot_app))["model"] == "gpt-4.1"


async def test_group_persona_is_saved_used_and_reset_by_its_admin(bot_app: BotApp) -> None:
    _group_with_an_admin(bot_app)
    assert await _only_the_admin_may(bot_app, "/persona Answer in one line", 2) == (
        "Persona saved."
    )
    request = await _ask_the_ai_in_the_group(bot_app, "One line.")  # the group's 3rd message
    assert request["messages"][0]["content"].startswith("Answer in one line")
    assert (await _group_settings(bot_app))["persona"] == "Answer in one line"
    bot_app.telegram.push_update(group_text(GROUP, ADMIN, "/persona reset"))
    assert await _group_reply(bot_app, 4) == "Persona saved."
    # A bot answers an update before its unit of work commits; the next update is handled
    # after that commit.
    bot_app.telegram.push_update(group_text(GROUP, ADMIN, "/model"))
    await _group_reply(bot_app, 5)
    assert (await _group_settings(bot_app))["persona"] is None
