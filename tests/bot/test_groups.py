"""The AI in Telegram groups: mirrored history, mentions, replies, /ask, admin settings."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest
from sqlalchemy import select

from models import AiMode, AiReply, Chat, Message
from tests.bot.conftest import GROUP_EDIT_INTERVAL, BotApp
from tests.support.fake_llm import FakeReply
from tests.support.fake_telegram.entities import mention_entities
from tests.support.fake_telegram.fake import RecordedCall
from tests.support.fake_telegram.updates import (
    TgUser,
    bot_added_to_group,
    group_migrated,
    group_text,
    tg_group,
    tg_user,
)

GROUP = tg_group(-100777, "Friends")
ANNA = tg_user(8001, "Anna", "anna")
BORIS = tg_user(8002, "Boris", "boris")


async def _in_group(bot_app: BotApp, nth: int = 1) -> RecordedCall:
    return await bot_app.telegram.wait_for_call(
        "sendMessage", lambda call: call.params.get("chat_id") == GROUP.id, nth=nth
    )


async def _group_chat(bot_app: BotApp, telegram_chat_id: int = GROUP.id) -> Chat:
    async with asyncio.timeout(5):
        while True:
            async with bot_app.sessionmaker() as session:
                chat = await session.scalar(
                    select(Chat).where(Chat.telegram_chat_id == telegram_chat_id)
                )
            if chat is not None:
                return chat
            await asyncio.sleep(0.02)


async def _messages(bot_app: BotApp, chat_id: int, count: int) -> list[Message]:
    async with asyncio.timeout(5):
        while True:
            async with bot_app.sessionmaker() as session:
                found = list(
                    await session.scalars(
                        select(Message).where(Message.chat_id == chat_id).order_by(Message.id)
                    )
                )
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)


async def _reply_jobs(bot_app: BotApp, chat_id: int) -> list[AiReply]:
    """The AI's reply jobs in a chat. A job is written in the transaction of the message it
    answers: none beside the stored messages means none ever, with no wait."""
    async with bot_app.sessionmaker() as session:
        return list(await session.scalars(select(AiReply).where(AiReply.chat_id == chat_id)))


def _mention(user: TgUser, text: str) -> dict[str, object]:
    return group_text(GROUP, user, text, entities=mention_entities(text, "test_ai_bot"))


async def test_being_added_mirrors_the_group_with_the_adder_as_owner(bot_app: BotApp) -> None:
    bot_app.telegram.push_update(bot_added_to_group(GROUP, ANNA, bot_app.telegram.bot_user))
    chat = await _group_chat(bot_app)
    assert chat.title == "Friends"
    anna = await bot_app.sign_up(ANNA.id, "Anna")
    view = await anna.ok("GET", f"/api/v1/chats/{chat.id}")
    roles = {member["telegram_id"]: member["role"] for member in view["members"]}
    assert roles[ANNA.id] == "owner"
    assert bot_app.telegram.bot_id in roles


async def test_group_messages_become_history_and_only_a_mention_gets_an_answer(
    bot_app: BotApp,
) -> None:
    bot_app.telegram.push_update(group_text(GROUP, ANNA, "hello everyone"))
    bot_app.telegram.push_update(group_text(GROUP, BORIS, "hi Anna"))
    chat = await _group_chat(bot_app)
    await _messages(bot_app, chat.id, 2)
    bot_app.llm.script(FakeReply(text="Hello, Anna and Boris!", chunk_size=4, delay=0.01))
    bot_app.telegram.push_update(_mention(ANNA, "👋 @test_ai_bot greet us"))
    answer = await _in_group(bot_app)
    await bot_app.telegram.wait_for_call(
        "editMessageText",
        lambda call: call.params.get("text") == "Hello, Anna and Boris!",
    )
    assert len(bot_app.llm.requests) == 1
    turns = [m["content"] for m in bot_app.llm.requests[0].json["messages"][1:]]
    assert turns == ["Anna: hello everyone", "Boris: hi Anna", "Anna: 👋 @test_ai_bot greet us"]
    assert answer.params["reply_parameters"]["message_id"] is not None


async def test_a_message_that_does_not_address_the_bot_gets_no_answer(bot_app: BotApp) -> None:
    bot_app.telegram.push_update(group_text(GROUP, ANNA, "email me at anna@test_ai_bot.example"))
    bot_app.telegram.push_update(group_text(GROUP, ANNA, "just chatting"))
    chat = await _group_chat(bot_app)
    await _messages(bot_app, chat.id, 2)
    assert await _reply_jobs(bot_app, chat.id) == []


async def test_ask_and_a_reply_to_the_bot_address_it(bot_app: BotApp) -> None:
    bot_app.llm.script(FakeReply(text="Forty-two"), FakeReply(text="Yes, really"))
    bot_app.telegram.push_update(group_text(GROUP, ANNA, "/ask what is the answer?"))
    await _in_group(bot_app)
    await bot_app.telegram.wait_for_call(
        "editMessageText", lambda call: call.params.get("text") == "Forty-two"
    )
    chat = await _group_chat(bot_app)
    await _linked(bot_app, chat.id)
    bot_reply = bot_app.telegram.messages[(GROUP.id, _telegram_id_of_bot_reply(bot_app))]
    bot_app.telegram.push_update(group_text(GROUP, BORIS, "really?", reply_to=bot_reply))
    await bot_app.telegram.wait_for_call(
        "editMessageText", lambda call: call.params.get("text") == "Yes, really"
    )
    assert len(bot_app.llm.requests) == 2


def _telegram_id_of_bot_reply(bot_app: BotApp) -> int:
    ids = [mid for (chat_id, mid) in bot_app.telegram.messages if chat_id == GROUP.id]
    return max(ids)


async def _linked(bot_app: BotApp, chat_id: int) -> None:
    async with asyncio.timeout(5):
        while True:
            async with bot_app.sessionmaker() as session:
                reply = await session.scalar(select(AiReply).where(AiReply.chat_id == chat_id))
                linked = None
                if reply is not None and reply.reply_message_id is not None:
                    linked = await session.scalar(
                        select(Message.telegram_message_id).where(
                            Message.id == reply.reply_message_id
                        )
                    )
            if linked is not None:
                return
            await asyncio.sleep(0.02)


async def test_other_bots_never_trigger_the_ai(bot_app: BotApp) -> None:
    other_bot = TgUser(9001, "Echo", "echo_bot", is_bot=True)
    bot_app.telegram.push_update(_mention(other_bot, "@test_ai_bot hello"))
    chat = await _group_chat(bot_app)
    await _messages(bot_app, chat.id, 1)
    assert await _reply_jobs(bot_app, chat.id) == []


async def test_group_edits_keep_to_the_cadence_and_end_with_the_whole_text(
    bot_app: BotApp,
) -> None:
    text = " ".join(f"word{i}" for i in range(120))
    bot_app.llm.script(FakeReply(text=text, chunk_size=6, delay=0.01))
    bot_app.telegram.push_update(_mention(ANNA, "@test_ai_bot count"))
    await bot_app.telegram.wait_for_call(
        "editMessageText", lambda call: call.params.get("text") == text
    )
    edits = bot_app.telegram.calls_to("editMessageText")
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(edits)]
    streaming_gaps = gaps[:-1]  # the final edit follows the stream's end at once
    assert all(gap >= GROUP_EDIT_INTERVAL * 0.9 for gap in streaming_gaps), gaps


async def test_only_group_admins_change_the_ai_settings(bot_app: BotApp) -> None:
    bot_app.telegram.add_chat(GROUP)
    bot_app.telegram.set_admins(GROUP.id, [ANNA.id])
    bot_app.telegram.push_update(group_text(GROUP, BORIS, "/ai_mode always"))
    refused = await _in_group(bot_app)
    assert "Only the group's admins" in refused.params["text"]
    bot_app.telegram.push_update(group_text(GROUP, ANNA, "/ai_mode always"))
    done = await _in_group(bot_app, nth=2)
    assert "always" in done.params["text"]
    chat = await _group_chat(bot_app)
    assert chat.ai_mode == AiMode.ALWAYS
    bot_app.llm.script(FakeReply(text="I hear you"))
    bot_app.telegram.push_update(group_text(GROUP, BORIS, "no mention needed now"))
    await bot_app.telegram.wait_for_call(
        "editMessageText", lambda call: call.params.get("text") == "I hear you"
    )


async def test_a_refused_admin_command_is_answered_in_the_group(bot_app: BotApp) -> None:
    bot_app.telegram.add_chat(GROUP)
    bot_app.telegram.set_admins(GROUP.id, [ANNA.id])
    bot_app.telegram.push_update(group_text(GROUP, ANNA, "/model no-such-model"))
    refused = await _in_group(bot_app)
    assert refused.params["text"] == "Unknown or unavailable model"


async def test_a_refused_group_message_is_logged_not_answered(
    bot_app: BotApp, caplog: pytest.LogCaptureFixture
) -> None:
    bot_app.telegram.add_chat(GROUP)
    with caplog.at_level(logging.INFO, logger="bot.handlers.errors"):
        # Longer than any message may be (Telegram sends no such text): a refusal to provoke.
        bot_app.telegram.push_update(group_text(GROUP, ANNA, "x" * 4097))
        # Updates are handled in order: the answer to this one comes after the refusal.
        bot_app.telegram.push_update(group_text(GROUP, BORIS, "/ai_mode always"))
        first_answer = await _in_group(bot_app)
    assert "Only the group's admins" in first_answer.params["text"]
    assert "a group message was refused: text_too_long" in caplog.messages


async def test_migration_to_a_supergroup_keeps_the_chat(bot_app: BotApp) -> None:
    bot_app.telegram.push_update(group_text(GROUP, ANNA, "before"))
    chat = await _group_chat(bot_app)
    await _messages(bot_app, chat.id, 1)
    bot_app.telegram.push_update(group_migrated(GROUP, -1009999))
    migrated = await _group_chat(bot_app, -1009999)
    assert migrated.id == chat.id
    supergroup = tg_group(-1009999, "Friends", "supergroup")
    bot_app.telegram.push_update(group_text(supergroup, ANNA, "after"))
    history = await _messages(bot_app, chat.id, 2)
    assert [m.text for m in history] == ["before", "after"]
