"""The fake Bot API itself, through the real aiogram Bot and Dispatcher (and raw HTTP)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
)
from aiogram.types import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    MenuButtonWebApp,
    Message,
    MessageEntity,
    MessageGenerationStopped,
    WebAppInfo,
)

from tests.support.fake_telegram.entities import command_entity, mention_entities
from tests.support.fake_telegram.fake import FakeTelegram
from tests.support.fake_telegram.server import FakeTelegramServer
from tests.support.fake_telegram.updates import (
    bot_added_to_group,
    callback_query,
    group_migrated,
    group_text,
    pre_checkout_query,
    private_text,
    stopped_message_generation,
    successful_payment,
    tg_group,
    tg_user,
)
from tests.support.fake_telegram.wire import NOT_MODIFIED
from tests.support.telegram import TEST_BOT_TOKEN

ALICE = tg_user(1001, "Alice", "alice")
BOB = tg_user(1002, "Bob")
GROUP = tg_group(-4_001_000_001, "Friends")


def keyboard(data: str = "press") -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Press", callback_data=data)]]
    )


async def test_get_me(fake_telegram: FakeTelegram, fake_telegram_bot: Bot) -> None:
    me = await fake_telegram_bot.get_me()
    assert (me.id, me.username, me.first_name) == (123456789, "test_ai_bot", "AI Assistant")
    assert me.is_bot
    assert me.can_join_groups
    [call] = fake_telegram.calls_to("getMe")
    assert call.token == TEST_BOT_TOKEN
    assert call.params == {}


async def test_each_test_has_its_own_fake(
    fake_telegram_server: FakeTelegramServer, fake_telegram: FakeTelegram
) -> None:
    assert fake_telegram_server.current is fake_telegram
    assert fake_telegram.base_url == fake_telegram_server.base_url
    assert fake_telegram.calls == []
    assert fake_telegram.messages == {}


async def test_send_and_edit_round_trip(
    fake_telegram: FakeTelegram, fake_telegram_bot: Bot
) -> None:
    sent = await fake_telegram_bot.send_message(
        ALICE.id, "<b>Hello</b>, <i>world</i>", parse_mode="HTML", reply_markup=keyboard()
    )
    assert sent.text == "Hello, world"
    assert sent.entities is not None
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 5),
        ("italic", 7, 5),
    ]
    assert sent.from_user is not None
    assert sent.from_user.id == fake_telegram.bot_id
    assert sent.chat.type == "private"
    assert isinstance(sent.reply_markup, InlineKeyboardMarkup)
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "press"
    [call] = fake_telegram.calls_to("sendMessage")
    assert call.params["chat_id"] == ALICE.id  # JSON-decoded from the form
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "press"

    edited = await fake_telegram_bot.edit_message_text(
        "Bye", chat_id=ALICE.id, message_id=sent.message_id
    )
    assert isinstance(edited, Message)
    assert edited.text == "Bye"
    assert edited.edit_date is not None
    assert edited.reply_markup is None  # editMessageText without a markup removes it
    stored = fake_telegram.messages[(ALICE.id, sent.message_id)]
    assert stored["text"] == "Bye"
    assert "entities" not in stored
    assert "reply_markup" not in stored

    again = await fake_telegram_bot.send_message(
        ALICE.id, "Again", reply_to_message_id=sent.message_id
    )
    assert again.message_id == sent.message_id + 1
    assert again.reply_to_message is not None
    assert again.reply_to_message.text == "Bye"


async def test_message_ids_follow_the_users_messages(
    fake_telegram: FakeTelegram, fake_telegram_bot: Bot
) -> None:
    update = private_text(ALICE, "hi")
    fake_telegram.push_update(update)
    reply = await fake_telegram_bot.send_message(ALICE.id, "Hello")
    assert reply.message_id == update["message"]["message_id"] + 1
    later = private_text(
        ALICE, "more", reply_to=fake_telegram.messages[(ALICE.id, reply.message_id)]
    )
    assert later["message"]["message_id"] > reply.message_id
    fake_telegram.push_update(later)
    [_, pushed] = await fake_telegram_bot.get_updates()
    assert pushed.message is not None
    assert pushed.message.reply_to_message is not None
    assert pushed.message.reply_to_message.text == "Hello"


async def test_message_is_not_modified(fake_telegram: FakeTelegram, fake_telegram_bot: Bot) -> None:
    sent = await fake_telegram_bot.send_message(ALICE.id, "Same", reply_markup=keyboard())
    with pytest.raises(TelegramBadRequest) as raised:
        await fake_telegram_bot.edit_message_text(
            "Same", chat_id=ALICE.id, message_id=sent.message_id, reply_markup=keyboard()
        )
    assert raised.value.message == NOT_MODIFIED
    # A different markup is a modification.
    await fake_telegram_bot.edit_message_text(
        "Same", chat_id=ALICE.id, message_id=sent.message_id, reply_markup=keyboard("other")
    )


async def test_edit_errors(fake_telegram: FakeTelegram, fake_telegram_bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await fake_telegram_bot.edit_message_text("x", chat_id=ALICE.id, message_id=999_999)
    update = private_text(ALICE, "mine")
    fake_telegram.push_update(update)
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await fake_telegram_bot.edit_message_text(
            "x", chat_id=ALICE.id, message_id=update["message"]["message_id"]
        )


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("line<br>", 'Unsupported start tag "br" at byte offset 4'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ('<span class="bold">s</span>', 'Tag "span" must have class "tg-spoiler"'),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("é<i>", 'start tag "i"'),
    ],
)
async def test_invalid_html(fake_telegram_bot: Bot, html: str, error: str) -> None:
    with pytest.raises(TelegramBadRequest) as raised:
        await fake_telegram_bot.send_message(ALICE.id, html, parse_mode="HTML")
    assert raised.value.message.startswith("Bad Request: can't parse entities: ")
    assert error in raised.value.message


async def test_html_entities_count_utf16(fake_telegram_bot: Bot) -> None:
    html = (
        '😀 <b>bold <i>both</i></b> &lt;tag&gt; <a href="https://example.com">link</a>\n'
        '<pre><code class="language-python">x = 1</code></pre> <tg-spoiler>s</tg-spoiler>'
        "  \n"
    )
    sent = await fake_telegram_bot.send_message(ALICE.id, html, parse_mode="HTML")
    assert sent.text == "😀 bold both <tag> link\nx = 1 s"
    assert sent.entities is not None
    assert [(e.type, e.extract_from(sent.text)) for e in sent.entities] == [
        ("bold", "bold both"),
        ("italic", "both"),
        ("text_link", "link"),
        ("pre", "x = 1"),
        ("spoiler", "s"),
    ]
    assert sent.entities[2].url == "https://example.com"
    assert sent.entities[3].language == "python"


async def test_given_entities_count_utf16(fake_telegram_bot: Bot) -> None:
    text = "😀 bold link"
    entities = [
        MessageEntity(type="bold", offset=3, length=4),
        MessageEntity(type="text_link", offset=8, length=4, url="https://example.com"),
    ]
    sent = await fake_telegram_bot.send_message(ALICE.id, text, entities=entities)
    assert sent.entities is not None
    assert [(e.type, e.extract_from(text)) for e in sent.entities] == [
        ("bold", "bold"),
        ("text_link", "link"),
    ]


@pytest.mark.parametrize(
    ("entity", "error"),
    [
        ({"type": "bold", "offset": 9, "length": 4}, "entity 9+4 is outside the text of 12 units"),
        ({"type": "bold", "offset": 0, "length": 0}, "entity 0+0 is outside"),
        ({"type": "bold", "offset": -1, "length": 2}, "entity -1+2 is outside"),
        ({"type": "bold", "offset": 1, "length": 3}, "entity 1+3 splits a character"),
        ({"type": "blink", "offset": 0, "length": 2}, "Unsupported type specified"),
        ({"type": "text_link", "offset": 3, "length": 4}, 'Field "url" must be of type String'),
        ({"type": "bold", "offset": "3", "length": 4}, 'Field "offset" must be of type Number'),
    ],
)
async def test_invalid_given_entities(
    fake_telegram_bot: Bot, entity: dict[str, Any], error: str
) -> None:
    with pytest.raises(TelegramBadRequest) as raised:
        await fake_telegram_bot.send_message(
            ALICE.id, "😀 bold link", entities=[MessageEntity.model_construct(**entity)]
        )
    assert raised.value.message.startswith("Bad Request: can't parse entities: ")
    assert error in raised.value.message


async def test_text_limits(fake_telegram_bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="Bad Request: message is too long"):
        await fake_telegram_bot.send_message(ALICE.id, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="Bad Request: message text is empty"):
        await fake_telegram_bot.send_message(ALICE.id, " \n ")
    with pytest.raises(TelegramBadRequest, match="Bad Request: message text is empty"):
        await fake_telegram_bot.send_message(ALICE.id, "<b> </b>", parse_mode="HTML")
    # The limit applies after entities parsing.
    sent = await fake_telegram_bot.send_message(ALICE.id, f"<b>{'x' * 4096}</b>", parse_mode="HTML")
    assert sent.text is not None
    assert len(sent.text) == 4096
    # Telegram counts UTF-16 code units: an emoji is two.
    with pytest.raises(TelegramBadRequest, match="Bad Request: message is too long"):
        await fake_telegram_bot.send_message(ALICE.id, "😀" * 2049)


async def test_fail_next_429(fake_telegram: FakeTelegram, fake_telegram_bot: Bot) -> None:
    fake_telegram.fail_next("sendMessage", retry_after=7)
    with pytest.raises(TelegramRetryAfter) as raised:
        await fake_telegram_bot.send_message(ALICE.id, "Hello")
    assert raised.value.retry_after == 7
    assert "Too Many Requests: retry after 7" in raised.value.message
    await fake_telegram_bot.send_message(ALICE.id, "Hello")
    assert len(fake_telegram.calls_to("sendMessage")) == 2
    assert len(fake_telegram.messages) == 1


async def test_other_failures(fake_telegram: FakeTelegram, fake_telegram_bot: Bot) -> None:
    fake_telegram.fail_next(
        "sendChatAction", error_code=403, description="Forbidden: nope", times=2
    )
    for _ in range(2):
        with pytest.raises(TelegramForbiddenError, match="Forbidden: nope"):
            await fake_telegram_bot.send_chat_action(ALICE.id, "typing")
    assert await fake_telegram_bot.send_chat_action(ALICE.id, "typing")
    with pytest.raises(TelegramBadRequest, match="wrong parameter action"):
        await fake_telegram_bot.send_chat_action(ALICE.id, "dancing")

    fake_telegram.set_blocked(BOB.id)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await fake_telegram_bot.send_message(BOB.id, "Hi")

    fake_telegram.push_update(group_migrated(GROUP, -1_009_000_000_001, by_user=ALICE))
    with pytest.raises(TelegramMigrateToChat) as raised:
        await fake_telegram_bot.send_message(GROUP.id, "Hi")
    assert raised.value.migrate_to_chat_id == -1_009_000_000_001
    supergroup = await fake_telegram_bot.get_chat(-1_009_000_000_001)
    assert (supergroup.type, supergroup.title) == ("supergroup", "Friends")


async def test_send_message_draft(fake_telegram: FakeTelegram, fake_telegram_bot: Bot) -> None:
    assert await fake_telegram_bot.send_message_draft(
        chat_id=ALICE.id, draft_id=7, text="Thinking <b>hard</b>", parse_mode="HTML", can_stop=True
    )
    assert fake_telegram.drafts[(ALICE.id, 7)] == {
        "text": "Thinking hard",
        "entities": [{"offset": 9, "length": 4, "type": "bold"}],
    }
    assert fake_telegram.calls_to("sendMessageDraft")[0].params["can_stop"] is True
    assert await fake_telegram_bot.send_message_draft(chat_id=ALICE.id, draft_id=7)  # "Thinking…"
    with pytest.raises(TelegramBadRequest):
        await fake_telegram_bot.send_message_draft(chat_id=GROUP.id, draft_id=7, text="x")
    await fake_telegram_bot.send_message(ALICE.id, "Final answer")
    assert fake_telegram.drafts == {}


async def test_create_invoice_link(fake_telegram: FakeTelegram, fake_telegram_bot: Bot) -> None:
    link = await fake_telegram_bot.create_invoice_link(
        title="100 credits",
        description="Credits for the AI",
        payload="order-42",
        currency="XTR",
        prices=[LabeledPrice(label="Credits", amount=50)],
    )
    assert link.startswith("https://t.me/$")
    assert fake_telegram.invoice_links[link]["prices"] == [{"label": "Credits", "amount": 50}]
    with pytest.raises(TelegramBadRequest, match="STARS_INVOICE_INVALID"):
        await fake_telegram_bot.create_invoice_link(
            title="t",
            description="d",
            payload="p",
            currency="XTR",
            prices=[LabeledPrice(label="a", amount=1), LabeledPrice(label="b", amount=2)],
        )


async def test_payments_and_queries_are_answered_once(
    fake_telegram: FakeTelegram, fake_telegram_bot: Bot
) -> None:
    query = pre_checkout_query(ALICE, "order-42", 50)
    fake_telegram.push_update(query)
    query_id = query["pre_checkout_query"]["id"]
    assert await fake_telegram_bot.answer_pre_checkout_query(query_id, ok=True)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await fake_telegram_bot.answer_pre_checkout_query(query_id, ok=True)

    fake_telegram.push_update(successful_payment(ALICE, "order-42", 50, "charge-1"))
    assert await fake_telegram_bot.refund_star_payment(ALICE.id, "charge-1")
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await fake_telegram_bot.refund_star_payment(ALICE.id, "charge-1")
    assert fake_telegram.refunded_charges == {"charge-1"}

    sent = await fake_telegram_bot.send_message(ALICE.id, "Pick", reply_markup=keyboard())
    press = callback_query(ALICE, "press", fake_telegram.messages[(ALICE.id, sent.message_id)])
    fake_telegram.push_update(press)
    assert await fake_telegram_bot.answer_callback_query(press["callback_query"]["id"], text="Ok")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await fake_telegram_bot.answer_callback_query(press["callback_query"]["id"])


async def test_dispatcher_polling(fake_telegram: FakeTelegram, fake_telegram_bot: Bot) -> None:
    router = Router()
    stopped: list[MessageGenerationStopped] = []

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    @router.stopped_message_generation()
    async def stop(event: MessageGenerationStopped) -> None:
        stopped.append(event)

    dp = Dispatcher()
    dp.include_router(router)
    polling = asyncio.create_task(
        dp.start_polling(fake_telegram_bot, handle_signals=False, close_bot_session=False)
    )
    try:
        update_id = fake_telegram.push_update(private_text(ALICE, "ping"))
        reply = await fake_telegram.wait_for_call("sendMessage")
        assert reply.params == {"chat_id": ALICE.id, "text": "echo: ping"}
        fake_telegram.push_update(stopped_message_generation(ALICE, 7))
        # The next poll confirms the first update.
        await fake_telegram.wait_for_call(
            "getUpdates", lambda call: call.params.get("offset") == update_id + 1
        )
        confirmed = await fake_telegram.wait_for_call("getUpdates", nth=3)
        assert confirmed.params["allowed_updates"] == ["message", "stopped_message_generation"]
    finally:
        await dp.stop_polling()
        await polling
    assert [(event.chat.id, event.draft_id) for event in stopped] == [(ALICE.id, 7)]
    assert fake_telegram.pending_updates == []
    [message] = fake_telegram.messages.values()
    assert message["text"] == "echo: ping"


async def test_long_poll_offset_and_conflict(
    fake_telegram: FakeTelegram, fake_telegram_bot: Bot
) -> None:
    assert await fake_telegram_bot.get_updates(timeout=0) == []
    waiting = asyncio.create_task(fake_telegram_bot.get_updates(timeout=5))
    await fake_telegram.wait_for_call("getUpdates", nth=2)
    first = fake_telegram.push_update(private_text(ALICE, "one"))
    second = fake_telegram.push_update(private_text(BOB, "two"))
    updates = await asyncio.wait_for(waiting, 1)
    assert [update.update_id for update in updates] == [first, second]
    # Not confirmed yet: delivered again, until an offset confirms them.
    assert len(await fake_telegram_bot.get_updates(limit=1)) == 1
    assert [u.update_id for u in await fake_telegram_bot.get_updates(offset=second)] == [second]
    assert await fake_telegram_bot.get_updates(offset=second + 1) == []

    stale = asyncio.create_task(fake_telegram_bot.get_updates(timeout=5))
    await fake_telegram.wait_for_call("getUpdates", nth=6)
    newer = asyncio.create_task(fake_telegram_bot.get_updates(timeout=0))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(stale, 1)
    assert await newer == []


async def test_mention_entities_count_utf16(
    fake_telegram: FakeTelegram, fake_telegram_bot: Bot
) -> None:
    text = "😀 hi @Test_AI_bot, and @test_ai_botx or @test_ai_bot"
    entities = mention_entities(text, fake_telegram.bot_username)
    assert entities == [
        {"offset": 6, "length": 12, "type": "mention"},
        {"offset": 41, "length": 12, "type": "mention"},
    ]
    fake_telegram.push_update(group_text(GROUP, ALICE, text, entities=entities))
    fake_telegram.push_update(group_text(GROUP, BOB, f"👍🏽 /ask@{fake_telegram.bot_username} hi"))
    first, second = await fake_telegram_bot.get_updates()
    assert first.message is not None
    assert first.message.text is not None
    assert first.message.entities is not None
    mentioned = [entity.extract_from(first.message.text) for entity in first.message.entities]
    assert mentioned == ["@Test_AI_bot", "@test_ai_bot"]
    # Without entities, the builders detect them as Telegram does.
    assert second.message is not None
    assert second.message.text is not None
    assert second.message.entities is not None
    [command] = second.message.entities
    assert (command.type, command.extract_from(second.message.text)) == (
        "bot_command",
        "/ask@test_ai_bot",
    )
    assert command_entity("/start now") == {"offset": 0, "length": 6, "type": "bot_command"}


async def test_group_membership(fake_telegram: FakeTelegram, fake_telegram_bot: Bot) -> None:
    fake_telegram.push_update(bot_added_to_group(GROUP, ALICE, fake_telegram.bot_user))
    fake_telegram.set_admins(GROUP.id, [fake_telegram.bot_id], creator=ALICE.id)
    chat = await fake_telegram_bot.get_chat(GROUP.id)
    assert (chat.title, chat.type) == ("Friends", "group")
    admins = await fake_telegram_bot.get_chat_administrators(GROUP.id)
    assert [(member.status, member.user.id) for member in admins] == [
        ("creator", ALICE.id),
        ("administrator", fake_telegram.bot_id),
    ]
    bob = await fake_telegram_bot.get_chat_member(GROUP.id, BOB.id)
    assert bob.status == "member"
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await fake_telegram_bot.get_chat(-4_999)
    fake_telegram.push_update(private_text(ALICE, "hi"))
    with pytest.raises(TelegramBadRequest, match="no administrators in the private chat"):
        await fake_telegram_bot.get_chat_administrators(ALICE.id)


async def test_setup_methods(fake_telegram: FakeTelegram, fake_telegram_bot: Bot) -> None:
    commands = [BotCommand(command="start", description="Start")]
    assert await fake_telegram_bot.set_my_commands(commands)
    assert [c.model_dump() for c in await fake_telegram_bot.get_my_commands()] == [
        c.model_dump() for c in commands
    ]
    assert fake_telegram.my_commands() == [{"command": "start", "description": "Start"}]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await fake_telegram_bot.set_my_commands([BotCommand(command="Start", description="x")])
    assert await fake_telegram_bot.delete_my_commands()
    assert await fake_telegram_bot.get_my_commands() == []

    button = MenuButtonWebApp(text="Open", web_app=WebAppInfo(url="https://app.example"))
    assert (await fake_telegram_bot.get_chat_menu_button()).type == "commands"
    assert await fake_telegram_bot.set_chat_menu_button(menu_button=button)
    got = await fake_telegram_bot.get_chat_menu_button(chat_id=ALICE.id)
    assert got.model_dump() == button.model_dump()

    with pytest.raises(TelegramBadRequest, match="An HTTPS URL must be provided"):
        await fake_telegram_bot.set_webhook("http://example.com/hook")
    assert await fake_telegram_bot.set_webhook("https://example.com/hook", secret_token="s3cret")
    info = await fake_telegram_bot.get_webhook_info()
    assert info.url == "https://example.com/hook"
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await fake_telegram_bot.get_updates()
    assert await fake_telegram_bot.delete_webhook(drop_pending_updates=True)
    assert (await fake_telegram_bot.get_webhook_info()).url == ""

    sent = await fake_telegram_bot.send_message(ALICE.id, "gone soon")
    assert await fake_telegram_bot.delete_message(ALICE.id, sent.message_id)
    assert fake_telegram.messages == {}
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await fake_telegram_bot.delete_message(ALICE.id, sent.message_id)


async def test_raw_http(fake_telegram: FakeTelegram) -> None:
    base = f"{fake_telegram.base_url}/bot{TEST_BOT_TOKEN}"
    async with httpx.AsyncClient() as client:
        sent = await client.post(f"{base}/sendmessage", json={"chat_id": "1001", "text": "123"})
        assert sent.status_code == 200
        assert sent.json()["result"]["text"] == "123"
        assert fake_telegram.calls[-1].method == "sendMessage"
        assert fake_telegram.calls[-1].params == {"chat_id": "1001", "text": "123"}

        form = await client.post(f"{base}/sendMessage", data={"chat_id": "1001", "text": "42"})
        assert form.json()["result"]["text"] == "42"
        assert fake_telegram.calls[-1].params == {"chat_id": 1001, "text": "42"}

        stranger = await client.get(f"{fake_telegram.base_url}/bot42:other-token/getMe")
        assert stranger.status_code == 401
        assert stranger.json()["description"] == "Unauthorized"
        other = fake_telegram.add_bot("42:other-token", "other_bot", "Other")
        me = await client.get(f"{fake_telegram.base_url}/bot42:other-token/getMe")
        assert me.json()["result"]["id"] == 42
        assert me.json()["result"]["username"] == "other_bot"
        assert other.calls[-1].token == "42:other-token"
        assert fake_telegram.calls[-1].method == "sendMessage"  # each bot has its own calls

        unknown = await client.post(f"{base}/sendSticker")
        assert unknown.status_code == 404
        assert unknown.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found: method not found",
        }
        unauthorized = await client.post(f"{fake_telegram.base_url}/botnot-a-token/getMe")
        assert unauthorized.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }


async def test_unknown_method_through_aiogram(fake_telegram_bot: Bot) -> None:
    with pytest.raises(TelegramNotFound, match="method not found"):
        await fake_telegram_bot.send_sticker(ALICE.id, "sticker-file-id")
