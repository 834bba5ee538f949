"""The private chat with the bot: /start, the shared AI conversation, streaming, commands."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from models import AiReply, AiReplyStatus, Chat, ChatMember, ChatType, Message, User
from tests.bot.conftest import WEBAPP_URL, BotApp
from tests.support.fake_llm import FakeReply
from tests.support.fake_telegram.fake import RecordedCall
from tests.support.fake_telegram.updates import (
    callback_query,
    private_text,
    stopped_message_generation,
    tg_user,
)
from tests.support.server import wait_until
from tests.support.ws import Frame, ws_user

ALICE = tg_user(7001, "Alice", "alice")


def _to(chat_id: int) -> object:
    return lambda call: call.params.get("chat_id") == chat_id


async def _sent_to(bot_app: BotApp, chat_id: int, nth: int = 1) -> RecordedCall:
    return await bot_app.telegram.wait_for_call(
        "sendMessage", lambda call: call.params.get("chat_id") == chat_id, nth=nth
    )


def _button_url(call: RecordedCall) -> str:
    markup = call.params["reply_markup"]
    url: str = markup["inline_keyboard"][0][0]["web_app"]["url"]
    return url


async def test_start_greets_and_offers_the_mini_app(bot_app: BotApp) -> None:
    bot_app.telegram.push_update(private_text(ALICE, "/start"))
    sent = await _sent_to(bot_app, ALICE.id)
    assert "Alice" in sent.params["text"]
    assert _button_url(sent) == WEBAPP_URL


async def test_start_sets_up_commands_and_the_menu_button(bot_app: BotApp) -> None:
    await bot_app.telegram.wait_for_call("setMyCommands")
    menu = await bot_app.telegram.wait_for_call("setChatMenuButton")
    assert menu.params["menu_button"]["web_app"]["url"] == WEBAPP_URL


async def test_start_with_a_chat_payload_opens_that_chat(bot_app: BotApp) -> None:
    bot_app.telegram.push_update(private_text(ALICE, "/start chat_42"))
    sent = await _sent_to(bot_app, ALICE.id)
    assert _button_url(sent) == f"{WEBAPP_URL}?startapp=chat_42"


async def test_start_with_an_invite_joins_the_group(bot_app: BotApp) -> None:
    owner = await bot_app.sign_up(7100, "Olga")
    group = await owner.create_group("Book club")
    link = await owner.ok("POST", f"/api/v1/chats/{group['id']}/invite-link")
    bot_app.telegram.push_update(private_text(ALICE, f"/start {link['start_param']}"))
    sent = await _sent_to(bot_app, ALICE.id)
    assert "Book club" in sent.params["text"]
    assert _button_url(sent) == f"{WEBAPP_URL}?startapp=chat_{group['id']}"
    bot_app.telegram.push_update(private_text(ALICE, "/help"))  # handled after /start commits
    await _sent_to(bot_app, ALICE.id, nth=2)
    async with bot_app.sessionmaker() as session:
        alice = await session.scalar(select(User).where(User.telegram_id == ALICE.id))
        assert alice is not None
        member = await session.scalar(
            select(ChatMember).where(
                ChatMember.chat_id == group["id"], ChatMember.user_id == alice.id
            )
        )
    assert member is not None


async def test_a_bad_invite_payload_says_so(bot_app: BotApp) -> None:
    bot_app.telegram.push_update(private_text(ALICE, "/start join_nope"))
    sent = await _sent_to(bot_app, ALICE.id)
    assert "no longer valid" in sent.params["text"]


async def test_a_reply_streams_as_a_draft_and_is_then_sent(bot_app: BotApp) -> None:
    bot_app.llm.script(FakeReply(text="Hello **world**, nice day", chunk_size=3, delay=0.02))
    bot_app.telegram.push_update(private_text(ALICE, "hi there"))
    final = await _sent_to(bot_app, ALICE.id)
    assert final.params["text"] == "Hello world, nice day"
    assert final.params["entities"] == [{"type": "bold", "offset": 6, "length": 5}]
    assert "parse_mode" not in final.params
    drafts = bot_app.telegram.calls_to("sendMessageDraft")
    assert drafts, "the reply did not stream as a draft"
    assert all(call.at < final.at for call in drafts)
    assert all(
        "Hello world, nice day".startswith(call.params["text"].replace("*", "")) for call in drafts
    )
    async with bot_app.sessionmaker() as session:
        reply = await session.scalar(select(AiReply))
        assert reply is not None
        assert {call.params["draft_id"] for call in drafts} == {reply.id}
        assert reply.status == AiReplyStatus.DONE
        assert reply.surface == "telegram"
    # The bot's message is linked to the Telegram message that shows it (for replies to it).
    async with asyncio.timeout(5):
        while True:
            async with bot_app.sessionmaker() as session:
                linked = await session.scalar(
                    select(Message.telegram_message_id).where(Message.id == reply.reply_message_id)
                )
            if linked is not None:
                break
            await asyncio.sleep(0.02)
    assert (ALICE.id, linked) in bot_app.telegram.messages


async def test_typing_is_shown_while_waiting_for_the_first_token(bot_app: BotApp) -> None:
    gate = asyncio.Event()
    bot_app.llm.script(FakeReply(text="late", gate=gate))
    bot_app.telegram.push_update(private_text(ALICE, "think first"))
    action = await bot_app.telegram.wait_for_call("sendChatAction")
    assert (action.params["chat_id"], action.params["action"]) == (ALICE.id, "typing")
    gate.set()
    await _sent_to(bot_app, ALICE.id)


async def test_telegram_and_the_mini_app_share_the_direct_ai_conversation(
    bot_app: BotApp,
) -> None:
    bot_app.llm.script(FakeReply(text="First answer"))
    bot_app.telegram.push_update(private_text(ALICE, "asked in Telegram"))
    await _sent_to(bot_app, ALICE.id)
    alice = await bot_app.sign_up(ALICE.id, "Alice")
    chat = await alice.ok("POST", "/api/v1/chats/ai")
    history = await alice.ok("GET", f"/api/v1/chats/{chat['id']}/messages")
    assert [m["text"] for m in history["messages"]] == ["asked in Telegram", "First answer"]
    # A Mini App question is answered in the Mini App, not in Telegram...
    bot_app.llm.script(FakeReply(text="Answer in the app"))
    await alice.send(chat["id"], "asked in the app")
    await wait_until(lambda: len(bot_app.llm.requests) == 2)
    async with bot_app.sessionmaker() as session:
        await wait_until_done(bot_app)
        replies = list(await session.scalars(select(AiReply).order_by(AiReply.id)))
    assert [r.surface for r in replies] == ["telegram", "app"]
    assert len(bot_app.telegram.calls_to("sendMessage")) == 1
    # ...and gives context to the next question asked in Telegram.
    bot_app.llm.script(FakeReply(text="Third"))
    bot_app.telegram.push_update(private_text(ALICE, "and now?"))
    await _sent_to(bot_app, ALICE.id, nth=2)
    turns = [m["content"] for m in bot_app.llm.requests[-1].json["messages"][1:]]
    assert turns == [
        "asked in Telegram",
        "First answer",
        "asked in the app",
        "Answer in the app",
        "and now?",
    ]


async def wait_until_done(bot_app: BotApp) -> None:
    async def settled() -> bool:
        async with bot_app.sessionmaker() as session:
            active = await session.scalar(
                select(AiReply.id).where(
                    AiReply.status.in_((AiReplyStatus.QUEUED, AiReplyStatus.RUNNING))
                )
            )
        return active is None

    async with asyncio.timeout(10):
        while not await settled():  # noqa: ASYNC110 (the database has no event to await)
            await asyncio.sleep(0.02)


async def test_a_message_refused_as_ai_busy_sends_no_frame_and_takes_no_seq(
    bot_app: BotApp,
) -> None:
    """The refusal rolls the update's unit of work back with the events it staged: the Mini
    App's socket sees no frame for the refused message, and the next messages' seqs (which a
    phantom frame would have taken first) reach it."""
    gate = asyncio.Event()
    bot_app.llm.script(FakeReply(text="First answer", gate=gate), FakeReply(text="Later"))
    alice = await bot_app.sign_up(ALICE.id, "Alice")
    chat = await alice.ok("POST", "/api/v1/chats/ai")
    start = (await alice.ok("GET", f"/api/v1/chats/{chat['id']}"))["last_seq"]
    async with ws_user(bot_app.server, ALICE.id, "Alice") as app_ws:
        await app_ws.send(type="resume", chats={str(chat["id"]): start})
        await app_ws.wait_for("resumed")
        bot_app.telegram.push_update(private_text(ALICE, "first"))
        frames: list[Frame] = [await app_ws.wait_for("new_message")]
        await app_ws.wait_for("ai_reply_started")
        bot_app.telegram.push_update(private_text(ALICE, "second"))
        refused = await _sent_to(bot_app, ALICE.id)
        assert refused.params["text"].startswith("⚠️ The AI is still answering")
        gate.set()
        await _sent_to(bot_app, ALICE.id, nth=2)  # the first answer, in Telegram
        bot_app.telegram.push_update(private_text(ALICE, "third"))
        async with asyncio.timeout(10):
            while frames[-1].get("message", {}).get("text") != "third":
                frame = await app_ws.recv()
                if frame.get("chat_id") == chat["id"] and "seq" in frame:
                    frames.append(frame)
    assert [f["message"]["text"] for f in frames if f["type"] == "new_message"] == [
        "first",
        "First answer",
        "third",
    ]
    assert [f["seq"] for f in frames] == list(range(start + 1, start + 1 + len(frames)))


async def test_a_refused_button_press_is_answered_with_an_alert(bot_app: BotApp) -> None:
    bot_app.telegram.push_update(private_text(ALICE, "/model"))
    await _sent_to(bot_app, ALICE.id)
    (keyboard,) = [
        m for (chat_id, _), m in bot_app.telegram.messages.items() if chat_id == ALICE.id
    ]
    bot_app.telegram.push_update(callback_query(ALICE, "model:no-such-model", keyboard))
    answer = await bot_app.telegram.wait_for_call("answerCallbackQuery")
    assert answer.params["text"] == "Unknown or unavailable model"
    assert answer.params["show_alert"] is True


async def test_a_long_answer_is_split_at_4096_utf16_units(bot_app: BotApp) -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 150 for i in range(8)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    assert len(text) > 4096
    bot_app.llm.script(FakeReply(text=text, chunk_size=400))
    bot_app.telegram.push_update(private_text(ALICE, "write a lot"))
    first = await _sent_to(bot_app, ALICE.id)
    second = await _sent_to(bot_app, ALICE.id, nth=2)
    assert all(len(call.params["text"]) <= 4096 for call in (first, second))
    # Cut at a paragraph: the first part ends with its blank line, which Telegram trims.
    assert first.params["text"].endswith("word\n\n")
    assert first.params["text"] + second.params["text"] == text


async def test_a_429_on_the_final_message_is_waited_out(bot_app: BotApp) -> None:
    bot_app.llm.script(FakeReply(text="Worth the wait"))
    bot_app.telegram.fail_next("sendMessage", error_code=429, retry_after=1)
    bot_app.telegram.push_update(private_text(ALICE, "hello"))
    delivered = await bot_app.telegram.wait_for_call(
        "sendMessage", lambda call: call.params.get("text") == "Worth the wait", nth=2
    )
    limited = bot_app.telegram.calls_to("sendMessage")[0]
    assert delivered.at - limited.at >= 0.9


async def test_model_and_persona_commands(bot_app: BotApp) -> None:
    bot_app.telegram.push_update(private_text(ALICE, "/persona Speak like a pirate"))
    assert "saved" in (await _sent_to(bot_app, ALICE.id)).params["text"]
    bot_app.telegram.push_update(private_text(ALICE, "/model"))
    menu = await _sent_to(bot_app, ALICE.id, nth=2)
    buttons = [row[0]["callback_data"] for row in menu.params["reply_markup"]["inline_keyboard"]]
    assert "model:gpt-4o-mini" in buttons
    bot_app.llm.script(FakeReply(text="Arr"))
    bot_app.telegram.push_update(private_text(ALICE, "hello"))
    await _sent_to(bot_app, ALICE.id, nth=3)
    assert bot_app.llm.requests[-1].json["messages"][0]["content"].startswith("Speak like a pirate")


async def test_new_starts_a_fresh_context(bot_app: BotApp) -> None:
    bot_app.llm.script(FakeReply(text="one"))
    bot_app.telegram.push_update(private_text(ALICE, "remember me"))
    await _sent_to(bot_app, ALICE.id)
    bot_app.telegram.push_update(private_text(ALICE, "/new"))
    await _sent_to(bot_app, ALICE.id, nth=2)
    bot_app.llm.script(FakeReply(text="two"))
    bot_app.telegram.push_update(private_text(ALICE, "who am I?"))
    await _sent_to(bot_app, ALICE.id, nth=3)
    turns = [m["content"] for m in bot_app.llm.requests[-1].json["messages"][1:]]
    assert turns == ["who am I?"]


async def test_stop_cancels_the_running_reply(bot_app: BotApp) -> None:
    bot_app.llm.script(FakeReply(text="a very long story " * 50, chunk_size=5, delay=0.05))
    bot_app.telegram.push_update(private_text(ALICE, "tell me a story"))
    await bot_app.telegram.wait_for_call("sendMessageDraft")
    bot_app.telegram.push_update(private_text(ALICE, "/stop"))
    await wait_until_done(bot_app)
    async with bot_app.sessionmaker() as session:
        reply = await session.scalar(select(AiReply))
    assert reply is not None
    assert reply.status == AiReplyStatus.CANCELLED
    assert reply.incomplete is True


async def test_telegrams_stop_button_cancels_the_reply(bot_app: BotApp) -> None:
    bot_app.llm.script(FakeReply(text="an endless answer " * 50, chunk_size=5, delay=0.05))
    bot_app.telegram.push_update(private_text(ALICE, "go on"))
    draft = await bot_app.telegram.wait_for_call("sendMessageDraft")
    bot_app.telegram.push_update(stopped_message_generation(ALICE, draft.params["draft_id"]))
    await wait_until_done(bot_app)
    async with bot_app.sessionmaker() as session:
        reply = await session.scalar(select(AiReply))
    assert reply is not None
    assert reply.status == AiReplyStatus.CANCELLED


async def test_the_ai_chat_is_the_one_the_mini_app_shows(bot_app: BotApp) -> None:
    bot_app.telegram.push_update(private_text(ALICE, "/new"))
    await _sent_to(bot_app, ALICE.id)
    # The answer goes out before the update's unit of work commits; the next update is
    # handled after that commit.
    bot_app.telegram.push_update(private_text(ALICE, "/help"))
    await _sent_to(bot_app, ALICE.id, nth=2)
    async with bot_app.sessionmaker() as session:
        chats = list(await session.scalars(select(Chat).where(Chat.type == ChatType.AI)))
    alice = await bot_app.sign_up(ALICE.id, "Alice")
    chat = await alice.ok("POST", "/api/v1/chats/ai")
    assert [c.id for c in chats] == [chat["id"]]


async def test_a_banned_user_gets_nothing_from_the_bot(bot_app: BotApp) -> None:
    admin = await bot_app.sign_up(900001, "Root")  # in ADMIN_TELEGRAM_IDS of the test settings
    alice = await bot_app.sign_up(ALICE.id, "Alice")
    assert (await admin.post(f"/api/v1/admin/users/{alice.id}/ban")).status_code == 200
    bot_app.telegram.push_update(private_text(ALICE, "/start"))
    bot_app.telegram.push_update(private_text(ALICE, "hello?"))
    bob = tg_user(7002, "Bob", "bob")
    bot_app.telegram.push_update(private_text(bob, "/start"))
    await _sent_to(bot_app, bob.id)  # updates are handled in order: Alice's came first
    assert not [call for call in bot_app.telegram.calls if call.params.get("chat_id") == ALICE.id]
    async with bot_app.sessionmaker() as session:
        assert await session.scalar(select(Message).where(Message.text == "hello?")) is None
