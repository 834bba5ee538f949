"""When the AI answers: always in the direct chat; in groups by mode (mention, off, always)."""

from __future__ import annotations

import pytest

from services.ai.policy import mentions_bot
from tests.ai.conftest import BOT_USERNAME, OwnAppFactory
from tests.ai.helpers import (
    answers_before,
    bot_message,
    bot_user_id,
    follow_reply,
    group_with_ai,
    open_ai_chat,
    set_chat_ai,
    socket_of,
)
from tests.support.api import ApiUser
from tests.support.fake_llm import FakeLLM
from tests.support.server import LiveServer
from tests.support.ws import WsClient, new_message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@test_ai_bot what is 2+2?", True),
        ("what do you think, @test_ai_bot?", True),
        ("@Test_AI_Bot hi", True),
        ("HEY @TEST_AI_BOT!", True),
        ("(@test_ai_bot)", True),
        ("@test_ai_bot, @test_ai_bot: twice", True),
        ("line one\n@test_ai_bot line two", True),
        ("write to x@test_ai_bot please", False),
        ("@test_ai_bot_fan hello", False),
        ("test_ai_bot without the at", False),
        ("/ask what is 2+2?", True),
        ("/ask", True),
        ("/ASK loudly", True),
        ("/ask@test_ai_bot what is 2+2?", True),
        ("/ask@Test_AI_Bot hi", True),
        ("/ask@other_bot what is 2+2?", False),
        ("/asking around", False),
        ("let me /ask later", False),
        ("", False),
        (None, False),
    ],
)
def test_mention_detection(text: str | None, expected: bool) -> None:
    assert mentions_bot(text, BOT_USERNAME) is expected


async def test_the_direct_ai_chat_answers_every_message(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    chat_id = await open_ai_chat(alice)
    async with socket_of(server, alice) as ws:
        for text in ("hello", "and a second question"):
            sent = await alice.send(chat_id, text)
            reply = await follow_reply(ws)
            assert reply.end["type"] == "ai_reply_done"
            assert reply.started["reply_to_message_id"] == sent["id"]
            message = await bot_message(ws)
            assert message["reply_to_message_id"] == sent["id"]
    assert len(fake_llm.requests) == 2


async def expect_reply(ws: WsClient, trigger_id: int) -> None:
    reply = await follow_reply(ws)
    assert reply.end["type"] == "ai_reply_done"
    assert reply.started["reply_to_message_id"] == trigger_id


async def test_a_group_in_mention_mode_answers_when_addressed_only(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    group_id = await group_with_ai(alice, bob)
    assert (await alice.ok("GET", f"/api/v1/chats/{group_id}/ai"))["mode"] == "mention"
    async with socket_of(server, alice) as ws:
        await alice.send(group_id, "good morning, Bob")
        await bob.send(group_id, "morning! mail me at bob@test_ai_bot.example")
        mention = await bob.send(group_id, "@Test_AI_Bot, what day is it?")
        await ws.none_before(
            "ai_reply_started", new_message(mention["id"]), where=answers_before(mention["id"])
        )
        await expect_reply(ws, mention["id"])
        answer = await bot_message(ws)

        reply_to_ai = await alice.send(group_id, "thanks!", reply_to_message_id=answer["id"])
        await expect_reply(ws, reply_to_ai["id"])
        await bot_message(ws)

        reply_to_bob = await alice.send(group_id, "see you", reply_to_message_id=mention["id"])
        ask = await alice.send(group_id, "/ask@test_ai_bot and tomorrow?")
        await expect_reply(ws, ask["id"])  # not the reply to Bob's message before it
        await bot_message(ws)
        assert reply_to_bob["id"] < ask["id"]

        plain_ask = await bob.send(group_id, "/ask one more")
        await expect_reply(ws, plain_ask["id"])
        await bot_message(ws)

        await alice.send(group_id, "/ask@other_bot not for you")
        later = await bob.send(group_id, "and that was not for the AI either")
        await ws.none_before("ai_reply_started", new_message(later["id"]))
    assert len(fake_llm.requests) == 4


async def test_a_group_without_the_bot_never_hears_the_ai(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    group = await alice.create_group("No AI here", bob)
    async with socket_of(server, alice) as ws:
        await alice.send(group["id"], "@test_ai_bot are you there?")
        later = await bob.send(group["id"], "no, it is not")
        await ws.none_before("ai_reply_started", new_message(later["id"]))
    assert fake_llm.requests == []


async def test_turning_the_ai_on_in_a_group_brings_it_in_once(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    group = await alice.create_group("Bring the AI", bob)
    path = f"/api/v1/chats/{group['id']}"
    # Mode off does not bring it in; a member who is not an admin may not turn it on.
    await set_chat_ai(alice, group["id"], mode="off")
    refused = await bob.put(f"{path}/ai", json={"mode": "mention"})
    assert refused.status_code == 403
    assert not [m for m in (await alice.ok("GET", path))["members"] if m["is_bot"]]

    async with socket_of(server, bob) as ws:
        await set_chat_ai(alice, group["id"], mode="mention")
        added = await ws.wait_for("member_added")
        assert added["user_id"] == await bot_user_id(alice)
        await set_chat_ai(alice, group["id"], mode="always")  # already in: no second member
        sent = await bob.send(group["id"], "@test_ai_bot hello?")
        await ws.none_before("member_added", new_message(sent["id"]))
        await expect_reply(ws, sent["id"])
    members = (await alice.ok("GET", path))["members"]
    assert len([m for m in members if m["is_bot"]]) == 1


async def test_mode_off_silences_the_ai_in_a_group(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser, bob: ApiUser
) -> None:
    group_id = await group_with_ai(alice, bob)
    assert (await set_chat_ai(alice, group_id, mode="off"))["mode"] == "off"
    async with socket_of(server, alice) as ws:
        await bob.send(group_id, "@test_ai_bot hello?")
        await alice.send(group_id, "/ask anything")
        later = await bob.send(group_id, "quiet, is it not?")
        await ws.none_before("ai_reply_started", new_message(later["id"]))
    assert fake_llm.requests == []


async def test_mode_always_answers_everything_up_to_the_chat_rate_limit(
    own_app: OwnAppFactory, fake_llm: FakeLLM
) -> None:
    async with own_app(ai_group_always_replies_per_minute=2) as app:
        alice = await app.sign_up(211, "Alice")
        bob = await app.sign_up(212, "Bob")
        group_id = await group_with_ai(alice, bob)
        await set_chat_ai(alice, group_id, mode="always")
        async with socket_of(app.server, alice) as ws:
            first = await alice.send(group_id, "no mention at all")
            await expect_reply(ws, first["id"])
            second = await bob.send(group_id, "nor here")
            await expect_reply(ws, second["id"])
            # A third reply within the minute would exceed the chat's limit: the AI stays quiet,
            # and the message itself is sent all the same.
            third = await alice.send(group_id, "and a third")
            fourth = await bob.send(group_id, "and a fourth")
            await ws.none_before("ai_reply_started", new_message(fourth["id"]))
        assert third["text"] == "and a third"
    assert len(fake_llm.requests) == 2


async def test_the_ai_never_answers_itself(
    server: LiveServer, fake_llm: FakeLLM, alice: ApiUser
) -> None:
    group_id = await group_with_ai(alice)
    await set_chat_ai(alice, group_id, mode="always")
    async with socket_of(server, alice) as ws:
        talk = await alice.send(group_id, "talk to me")
        await follow_reply(ws)
        await bot_message(ws)
        # An edit asks the AI nothing: its event is the marker.
        await alice.ok("PATCH", f"/api/v1/messages/{talk['id']}", json={"text": "talk to me!"})
        await ws.none_before("ai_reply_started", lambda frame: frame["type"] == "message_edited")
    assert len(fake_llm.requests) == 1
